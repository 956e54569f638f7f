import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PostgresFeatureStore } from '../../../src/features/store/postgres.ts';
import { PREDICTIONS_SPEC } from '../../../src/inference/store/rows.ts';
import { PG_CONNECT_TIMEOUT_MS, PG_QUERY_TIMEOUT_MS, pgPool } from '../../../src/stores/pg-pool.ts';
import { PostgresTable } from '../../../src/stores/postgres-table.ts';
import { SilentServer } from '../../support/silent-server.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

/** A "PostgreSQL" that accepts TCP connections and never says a word: a hung server, a host behind a firewall. */
let silent: SilentServer;
let url: string;
before(async () => {
  silent = await SilentServer.listen();
  url = `postgres://x@127.0.0.1:${silent.port}/x`;
});
after(() => silent.close());

test('a query to a server that never answers fails with a timeout instead of waiting for ever', async () => {
  const pool = pgPool(url, { connectTimeoutMs: 300 });
  try {
    await assert.rejects(settlesWithin(pool.query('SELECT 1'), 5_000, 'the query to fail'), /timeout/);
  } finally {
    // Not awaited: with a connect still pending, end() waits for it (the after hook closes the sockets).
    void pool.end().catch(() => {});
  }
});

test('a store opened on such a server gives up with the reason (by default after PG_CONNECT_TIMEOUT_MS)', async () => {
  const started = Date.now();
  await assert.rejects(
    settlesWithin(
      PostgresFeatureStore.open(url, { giveUpAfterMs: 0 }),
      PG_CONNECT_TIMEOUT_MS + 5_000,
      'the store to give up',
    ),
    /connection timeout/,
  );
  assert.ok(Date.now() - started >= PG_CONNECT_TIMEOUT_MS - 100);
});

test('a stop ends the opening of a table on such a server at once, not after the connect timeout', async () => {
  // `service api` opens its stores in the background with its stop signal: a SIGTERM while a connection waited for
  // the server's first word took the whole PG_CONNECT_TIMEOUT_MS (10 s) to end the service.
  const stop = new AbortController();
  const accepted = silent.connections;
  const opening = PostgresTable.open(PREDICTIONS_SPEC, url, { signal: stop.signal });
  await waitFor('the server to accept the connection', () => silent.connections > accepted, Boolean, {
    timeoutMs: 5_000,
    everyMs: 10,
  });
  const stopped = Date.now();
  stop.abort();
  await assert.rejects(settlesWithin(opening, 2_000, 'the opening to end'), (err: Error) => {
    assert.doesNotMatch(err.message, /still waiting/);
    return true;
  });
  assert.ok(Date.now() - stopped < 2_000);
  assert.ok(PG_CONNECT_TIMEOUT_MS > 2_000, 'the connect timeout alone would not have ended it in time');
});

test('every query is bounded too, by default PG_QUERY_TIMEOUT_MS; a store URL may set its own', () => {
  const pools = [pgPool(url), pgPool(`${url}?query_timeout=1500`)];
  try {
    // The parameters a connection of each pool is made with (pg resolves the URL's own over the pool's).
    const params = (p: pg.Pool) =>
      (new pg.Client(p.options) as unknown as { connectionParameters: { query_timeout: unknown } })
        .connectionParameters;
    const [byDefault, fromUrl] = pools.map((p) => params(p).query_timeout);
    assert.equal(byDefault, PG_QUERY_TIMEOUT_MS);
    assert.equal(Number(fromUrl), 1500);
  } finally {
    for (const p of pools) void p.end();
  }
});
