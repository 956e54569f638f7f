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

/**
 * Opens several stores in turn (`opens`, by name): all of them, or none left open — when one fails (a database that
 * does not answer, a stop while it is waited for), those already open are closed before the error goes on.
 */
export async function openAll<T extends Record<string, () => Promise<{ close(): Promise<void> }>>>(
  opens: T,
): Promise<{ [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  const opened: Partial<Record<keyof T, { close(): Promise<void> }>> = {};
  try {
    for (const name of Object.keys(opens) as (keyof T)[]) opened[name] = await opens[name]!();
    return opened as { [K in keyof T]: Awaited<ReturnType<T[K]>> };
  } catch (err) {
    for (const s of Object.values(opened).reverse()) await s!.close().catch(() => {});
    throw err;
  }
}
