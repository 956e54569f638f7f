import pg from 'pg';
import { reportDependency } from '../core/dependency.ts';
import { CryptocastError } from '../core/errors.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { pgConnectError, pgConnectionConfig, plainRefusal } from './pg-connection.ts';

/**
 * How long a connection to PostgreSQL may take (TCP, startup, authentication), and a query may wait for a free one.
 * Without it a server that accepts connections but never answers (a host gone behind a firewall, a hung server) held
 * every caller for ever: a service starting waited silently ("starting", nothing in the log) and an API request never
 * got its 503. With it the attempt fails, the dependency is reported down with the reason, and retried.
 */
export const PG_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long a query (or a COPY) may go without its answer on an open connection. Without it a connection that went
 * silent mid-query (a server host gone, a network partition: no reset ever arrives) held that query, and the service
 * behind it, for ever. With it the query fails ("Query read timeout"), the connection is thrown away, and the caller's
 * retry runs on a new one. Two minutes leaves room for the longest legitimate statement (a year of features read for
 * training, a batch of 2^20 rows copied in); a store URL may set its own with `?query_timeout=MS`.
 */
export const PG_QUERY_TIMEOUT_MS = 120_000;

/**
 * How long closing a pool (`end`) waits for a query still in flight before it cuts that query's connection. A stop that
 * gave up on a write (the monitor's, at its deadline) left the write on a connection gone silent, and the pool's end
 * waited for it until the query timeout (two minutes): `service monitor` outlived the 45 s Kubernetes gives a stopping
 * pod. What is in flight at a close belongs to a batch not committed (given back, or abandoned at the stop's deadline),
 * so cutting it loses nothing: the transaction is rolled back, and the batch is read and written again.
 */
export const PG_CLOSE_WAIT_MS = 5_000;

/**
 * The pool of a store (a URL, or its settings from `pgConnectionConfig`): 4 connections, each connect, each query and
 * its close bounded (above). With `signal` (a service's stop),
 * a connection still being made when it aborts, or begun after, fails at once instead of waiting out the connect
 * timeout: `service api` stopping while its PostgreSQL accepted TCP and never answered took those 10 s to end.
 */
export function pgPool(
  connection: string | pg.ClientConfig,
  o: { connectTimeoutMs?: number; queryTimeoutMs?: number; closeWaitMs?: number; signal?: AbortSignal } = {},
): pg.Pool {
  const config = typeof connection === 'string' ? pgConnectionConfig(connection) : connection;
  const pool = new pg.Pool({
    max: 4,
    connectionTimeoutMillis: o.connectTimeoutMs ?? PG_CONNECT_TIMEOUT_MS,
    query_timeout: o.queryTimeoutMs ?? PG_QUERY_TIMEOUT_MS,
    // the URL's own `query_timeout` parameter, if any, wins over the default; TLS and the password: pg-connection.ts
    ...config,
    ...(o.signal ? { Client: stoppableClient(o.signal) } : {}),
  });
  pool.on('error', () => {}); // idle client errors surface on the next query instead
  endWithin(pool, o.closeWaitMs ?? PG_CLOSE_WAIT_MS);
  nameRefusals(pool, config);
  return pool;
}

/**
 * A connection the pool makes once the store is open (a first query, one after an idle timeout or a server restart)
 * that is refused for a reason waiting does not mend — the server's certificate replaced by one the CA does not sign,
 * the password changed — failed its caller with the driver's words, and each caller retried it as any transient
 * failure, for ever, with nothing on /ready. Now it fails as the catalogued error (`pgConnectError`:
 * CC_ERR_STORE_TLS, CC_ERR_STORE_AUTH; a plain connection refused where TLS is admitted: `plainRefusal`), said once in the log (an error, with the code) and on /ready until a connection
 * succeeds again. (`pool.query` connects through `pool.connect` too.)
 */
function nameRefusals(pool: pg.Pool, config: pg.ClientConfig, log: Logger = rootLog): void {
  type Done = (err: Error | undefined, client: pg.PoolClient | undefined, release: () => void) => void;
  const connect = pool.connect.bind(pool) as unknown as (cb: Done) => void;
  let refused = false;
  const named = async (err: Error): Promise<Error> => {
    const n = pgConnectError(await plainRefusal(err, config), config);
    if (!(n instanceof CryptocastError)) return err;
    if (!refused) log.error({ code: n.code, reason: n.message }, 'PostgreSQL refused the connection');
    refused = true;
    reportDependency('postgresql', n, log);
    return n;
  };
  const connected = () => {
    if (!refused) return;
    refused = false;
    reportDependency('postgresql', undefined, log);
  };
  pool.connect = ((cb?: Done) => {
    if (cb !== undefined)
      return connect((err, client, release) => {
        if (err) return void named(err).then((n) => cb(n, client, release));
        connected();
        cb(err, client, release);
      });
    return new Promise<pg.PoolClient>((resolve, reject) =>
      connect((err, client) => {
        if (err) return void named(err).then(reject);
        connected();
        resolve(client!);
      }),
    );
  }) as typeof pool.connect;
}

/** `pool.end()` waits for the connections in use at most `waitMs`, then cuts them (see PG_CLOSE_WAIT_MS). */
function endWithin(pool: pg.Pool, waitMs: number): void {
  const inUse = new Set<pg.PoolClient>();
  pool.on('acquire', (client) => inUse.add(client));
  pool.on('release', (_err, client) => inUse.delete(client));
  pool.on('remove', (client) => inUse.delete(client as pg.PoolClient));
  const end = pool.end.bind(pool);
  pool.end = (() => {
    const ended = end();
    const cut = setTimeout(() => {
      for (const client of inUse)
        (
          client as unknown as { connection: { stream: { destroy(err: Error): void } } }
        ).connection.stream.destroy(
          new Error(`closing: a query still in flight after ${waitMs} ms was abandoned`),
        );
    }, waitMs);
    cut.unref();
    return ended.finally(() => clearTimeout(cut));
  }) as typeof pool.end;
}

/** A client whose connection attempt `stop` cuts short (its socket destroyed, as the pool's own connect timeout does). */
function stoppableClient(stop: AbortSignal): typeof pg.Client {
  return class StoppableClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      let settled = false;
      // Deferred: the pool calls connect() right after constructing, and a socket destroyed before it connects is
      // revived by that call.
      const cut = () =>
        setImmediate(() => {
          if (!settled)
            this.connection.stream.destroy(new Error('stopping: the connection to PostgreSQL was abandoned'));
        });
      const settle = () => {
        settled = true;
        stop.removeEventListener('abort', cut);
      };
      this.once('connect', settle);
      this.once('end', settle);
      if (stop.aborted) cut();
      else stop.addEventListener('abort', cut, { once: true });
    }
  };
}

/**
 * Runs `work` in a transaction on one pooled connection. After an error the server reported (a constraint, a type),
 * the connection is rolled back and reused. After any other failure (a query timed out, the connection broke) it is
 * thrown away, which makes the server roll back: a ROLLBACK queued behind a statement that never answered would wait
 * out its own timeout, and a connection with a statement still in flight must not reach the next caller.
 *
 * While the connection is out of the pool it has a listener for its 'error' event: when the server ends the session
 * (a restart, a failover, pg_terminate_backend: FATAL 57P01, then the socket closes) pg's client emits 'error' besides
 * failing the query, and a checked-out client has none of the pool's: the process died of an unhandled 'error' event
 * instead of the write failing for its caller to retry. The connection is then thrown away.
 */
export async function inTransaction<R>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<R>,
): Promise<R> {
  const client = await pool.connect();
  let discard: Error | undefined;
  const broken = (err: Error) => {
    discard ??= err;
  };
  client.on('error', broken);
  try {
    await client.query('BEGIN');
    const r = await work(client);
    await client.query('COMMIT');
    return r;
  } catch (err) {
    if (err instanceof pg.DatabaseError)
      await client.query('ROLLBACK').catch((e: unknown) => {
        discard = e instanceof Error ? e : new Error(String(e));
      });
    else discard = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.removeListener('error', broken);
    client.release(discard);
  }
}
