import { parseStoreUrl } from '../../core/store-url.ts';
import type { FeatureStore } from './store.ts';

/** Opens a store by URL: `duckdb:PATH` (embedded default, one file) or `postgres://user@host:port/db`. */
export async function openFeatureStore(url: string): Promise<FeatureStore> {
  const at = parseStoreUrl(url);
  if (at.kind === 'duckdb') {
    const { DuckDbFeatureStore } = await import('./duckdb.ts');
    return DuckDbFeatureStore.open(at.path);
  }
  const { PostgresFeatureStore } = await import('./postgres.ts');
  return PostgresFeatureStore.open(at.url);
}

export const DEFAULT_STORE = 'duckdb:.data/cryptocast.duckdb';
