import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import type { FeatureSetDefinition } from '../../src/features/store/store.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import { sampleScored } from '../support/errors-store-contract.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { ensurePostgres, testSchema } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A PostgreSQL restart (or failover, or an operator's pg_terminate_backend) ends each session's backend: the server
 * sends FATAL 57P01 and closes the socket, and pg's client emits 'error'. A client a store had checked out for a
 * transaction had no listener for it, so the process died of an unhandled 'error' event instead of failing the write
 * for its caller to retry. Made deterministic here: the store's write waits on a lock, and its backend is terminated
 * while it waits.
 */
describe("PostgreSQL ends a store's session in the middle of a write", () => {
  const schema = testSchema(uniquePrefix('pg-terminated'));
  const admin = new pg.Client({ connectionString: schema.url });
  let errors: ErrorsStore;
  let features: PostgresFeatureStore;
  const set: FeatureSetDefinition = { name: 'terminated', version: 1, columns: ['a'], source: 'test' };
  const T = Date.UTC(2025, 0, 7);
  const vec = (windowEnd: number, a: number): FeatureVectorRecord => ({
    v: 1,
    featureSet: set.name,
    featureSetVersion: set.version,
    exchange: 'test',
    pair: 'BTC/USDT',
    windowStart: windowEnd - 60_000,
    windowEnd,
    close: 100,
    ready: true,
    values: [a],
  });

  before(async () => {
    ensurePostgres();
    await schema.create();
    await admin.connect();
    errors = await openErrorsStore(schema.url);
    features = await PostgresFeatureStore.open(schema.url);
    await features.migrate(set);
  });
  after(async () => {
    await errors?.close();
    await features?.close();
    await admin.end();
    await schema.drop();
  });

  /** Runs `write` while `table` is locked, terminates the backend it waits on, and returns how the write ended. */
  async function terminatedDuring(table: string, write: () => Promise<void>): Promise<unknown> {
    await admin.query('BEGIN');
    await admin.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const writing = write().then(
      () => undefined,
      (err: unknown) => err,
    );
    try {
      const pid = await waitFor(
        "the store's write to wait on the lock",
        async () =>
          // The only session waiting on a lock: the write's (its INSERT blocks while parsed, so pg_stat_activity
          // may still show its BEGIN).
          (
            await admin.query(
              `SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() AND wait_event_type = 'Lock'`,
            )
          ).rows[0]?.pid as number | undefined,
        (p) => p !== undefined,
        { timeoutMs: 20_000 },
      );
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.query('ROLLBACK');
    }
    return writing;
  }

  it('an errors store write fails (for its caller to retry), the process lives, and the retry lands once', async () => {
    const e = sampleScored('BTC/USDT', T);
    const err = await terminatedDuring('prediction_errors_v1', () => errors.write([e]));
    assert.match(String(err), /terminat/i);
    await errors.write([e]);
    assert.deepEqual(await errors.history('BTC/USDT', 0, T + 1), [e]);
  });

  it('a feature store write: the same', async () => {
    const err = await terminatedDuring('fs_terminated_v1', () => features.write(set, [vec(T, 1)]));
    assert.match(String(err), /terminat/i);
    await features.write(set, [vec(T, 1)]);
    assert.deepEqual(
      (await features.history(set, 'BTC/USDT', 0, T + 1)).map((v) => [v.windowEnd, v.values[0]]),
      [[T, 1]],
    );
  });
});
