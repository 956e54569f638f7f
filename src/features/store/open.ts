import { CryptocastError, ERR, fail } from '../../core/errors.ts';
import { parseStoreUrl } from '../../core/store-url.ts';
import type { FeatureStore } from './store.ts';

/**
 * Opens a store by URL: `duckdb:PATH` (embedded default, one file) or `postgres://user@host:port/db`. A PostgreSQL
 * that does not answer is waited for (a service, until `signal` aborts: its stop), or for `giveUpAfterMs` at most (a
 * one-shot command).
 */
export async function openFeatureStore(
  url: string,
  o: { giveUpAfterMs?: number; signal?: AbortSignal } = {},
): Promise<FeatureStore> {
  const at = parseStoreUrl(url);
  if (at.kind === 'duckdb') {
    const { DuckDbFeatureStore } = await import('./duckdb.ts');
    return DuckDbFeatureStore.open(at.path);
  }
  const { PostgresFeatureStore } = await import('./postgres.ts');
  return PostgresFeatureStore.open(at.url, o);
}

/** How long a one-shot command (`features --store`, `train --store`) waits for a feature store that does not answer. */
export const ONE_SHOT_STORE_WAIT_MS = 15_000;

/**
 * A one-shot command's feature store: opened with a bounded wait, and any failure of it (open, migrate, write, read)
 * as one catalogued line naming the store, not a stack trace. `use` runs with the store and closes it.
 */
export async function withFeatureStore<T>(
  url: string,
  use: (store: FeatureStore) => Promise<T>,
  waitMs = ONE_SHOT_STORE_WAIT_MS,
): Promise<T> {
  const failed = (err: unknown) =>
    err instanceof CryptocastError
      ? err
      : fail(
          ERR.STORE,
          `the feature store ${url} failed: ${err instanceof Error ? err.message : String(err)}`,
          {
            hint: 'check that the store is reachable and writable (duckdb:PATH, or postgres://user@host:port/db of a running server)',
            cause: err,
          },
        );
  const store = await openFeatureStore(url, { giveUpAfterMs: waitMs }).catch((err: unknown) => {
    throw err instanceof CryptocastError
      ? err
      : fail(
          ERR.STORE,
          `the feature store ${url} did not answer within ${waitMs / 1000} s: ${err instanceof Error ? err.message : String(err)}`,
          { hint: 'start the database, or check the host, port, user and password of the URL', cause: err },
        );
  });
  try {
    return await use(store).catch((err: unknown) => {
      throw failed(err);
    });
  } finally {
    await store.close().catch(() => {});
  }
}

export const DEFAULT_STORE = 'duckdb:.data/cryptocast.duckdb';
