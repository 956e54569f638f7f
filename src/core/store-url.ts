import { resolve } from 'node:path';
import { ERR, fail } from './errors.ts';
import { redactSecrets } from './secrets.ts';

/**
 * Store URLs, the same for every store (features, predictions, error records): `duckdb:PATH` (embedded, one file
 * per process; `duckdb::memory:` for tests) or `postgres://user@host:port/db` (distributed). Parsed in one place so
 * that every store refuses a bad URL with the same error (CC_ERR_STORE_URL) before anything starts.
 */
export type StoreLocation = { kind: 'duckdb'; path: string } | { kind: 'postgres'; url: string };

export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('duckdb:')) {
    const path = url.slice('duckdb:'.length);
    if (path === '') throw fail(ERR.STORE_URL, 'duckdb: needs a path, e.g. duckdb:.data/cryptocast.duckdb');
    return { kind: 'duckdb', path: path === ':memory:' ? path : resolve(path) };
  }
  if (/^postgres(ql)?:\/\/[^\s/]+/.test(url)) return { kind: 'postgres', url };
  throw fail(ERR.STORE_URL, `unknown store URL "${redactSecrets(url)}"`);
}
