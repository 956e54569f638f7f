import pg from 'pg';

/**
 * How long a connection to PostgreSQL may take (TCP, startup, authentication), and a query may wait for a free one.
 * Without it a server that accepts connections but never answers (a host gone behind a firewall, a hung server) held
 * every caller for ever: a service starting waited silently ("starting", nothing in the log) and an API request never
 * got its 503. With it the attempt fails, the dependency is reported down with the reason, and retried.
 */
export const PG_CONNECT_TIMEOUT_MS = 10_000;

/** The pool of a store: 4 connections, each connect bounded by `connectTimeoutMs`. */
export function pgPool(url: string, connectTimeoutMs = PG_CONNECT_TIMEOUT_MS): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: connectTimeoutMs });
  pool.on('error', () => {}); // idle client errors surface on the next query instead
  return pool;
}
