import { parseStoreUrl } from '../core/store-url.ts';
import type { Table, TableSpec } from './table.ts';

/** How a table is opened: `signal` ends the wait for a PostgreSQL that is not there yet (the service is stopping). */
export interface OpenTableOptions {
  signal?: AbortSignal;
}

/** Opens a table by store URL: `duckdb:PATH` (the file's one database in this process) or `postgres://…`. */
export async function openTable<T>(
  spec: TableSpec<T>,
  url: string,
  o: OpenTableOptions = {},
): Promise<Table<T> & { kind: 'duckdb' | 'postgres' }> {
  const at = parseStoreUrl(url);
  if (at.kind === 'duckdb') {
    const { DuckDbTable } = await import('./duckdb-table.ts');
    return Object.assign(await DuckDbTable.open(spec, at.path), { kind: 'duckdb' as const });
  }
  const { PostgresTable } = await import('./postgres-table.ts');
  return Object.assign(await PostgresTable.open(spec, at.url, o), { kind: 'postgres' as const });
}
