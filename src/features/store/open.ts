import { resolve } from 'node:path';
import type { FeatureStore } from './store.ts';

/** Opens a store by URL: `duckdb:PATH` (embedded default, one file) or `postgres://user@host:port/db`. */
export async function openFeatureStore(url: string): Promise<FeatureStore> {
  if (url.startsWith('duckdb:')) {
    const { DuckDbFeatureStore } = await import('./duckdb.ts');
    const path = url.slice('duckdb:'.length);
    return DuckDbFeatureStore.open(path === ':memory:' ? path : resolve(path));
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresFeatureStore } = await import('./postgres.ts');
    return PostgresFeatureStore.open(url);
  }
  throw new Error(
    `unknown store URL "${url.replace(/:[^:@/]+@/, ':[redacted]@')}": use duckdb:PATH or postgres://user@host:port/db`,
  );
}

export const DEFAULT_STORE = 'duckdb:.data/cryptocast.duckdb';
