import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { DuckDBConnection } from '@duckdb/node-api';
import { openDuckDb } from '../../../../src/core/duckdb.ts';
import { DuckDbFeatureStore } from '../../../../src/features/store/duckdb.ts';
import {
  type FeatureSetDefinition,
  newFeatureColumns,
  RowsStoredError,
  tableName,
} from '../../../../src/features/store/store.ts';
import type { FeatureVectorRecord } from '../../../../src/schemas/feature.ts';
import { sqlOutsideTheStore } from '../../../support/duckdb-file.ts';
import {
  featureStoreContract,
  otherLayoutFeatureTableContract,
} from '../../../support/feature-store-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('DuckDB feature store (a real DuckDB file)', () => {
  const file = join(scratchDir('fs-'), 'features.duckdb');
  featureStoreContract(() => DuckDbFeatureStore.open(file));

  let n = 0;
  otherLayoutFeatureTableContract(async () => {
    const dir = scratchDir('fs-layout-');
    const at = join(dir, `features-${++n}.duckdb`);
    return {
      sql: (statement: string) => sqlOutsideTheStore(at, statement),
      types: { text: 'VARCHAR', double: 'DOUBLE' },
      open: () => DuckDbFeatureStore.open(at),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});

describe('DuckDB feature store: a write that fails stores none of its rows', () => {
  const set: FeatureSetDefinition = { name: 'atomic', version: 1, columns: ['a'], source: 'test' };
  const T = Date.UTC(2025, 0, 7);
  const vec = (windowEnd: number): FeatureVectorRecord => ({
    v: 1,
    featureSet: set.name,
    featureSetVersion: set.version,
    exchange: 'test',
    pair: 'BTC/USD',
    windowStart: windowEnd - 60_000,
    windowEnd,
    close: 100,
    ready: true,
    values: [1],
  });

  // The fast path (rows newer than the table's) appended straight into the table, and an appender commits on its own
  // when closed: a failure after it — the online row's update, the step a full disk failed in `cryptocast run` —
  // left the rows stored while the write said it failed. Another transaction holding the online row makes that
  // failure certain (a write-write conflict).
  it('the online row failing after the rows were appended: the rows are not there, and a retry stores them', async () => {
    const file = join(scratchDir('fs-atomic-'), 'features.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    const other = await openDuckDb(file);
    try {
      await store.write(set, [vec(T)]);
      const t = tableName(set);
      await other.conn.run('BEGIN TRANSACTION');
      await other.conn.run(`UPDATE ${t}_online SET close = 101 WHERE pair = 'BTC/USD'`);
      const batch = [vec(T + 60_000), vec(T + 120_000)];
      await assert.rejects(store.write(set, batch), /conflict/i);
      await other.conn.run('ROLLBACK');
      const count = async () =>
        Number((await other.conn.runAndReadAll(`SELECT count(*) AS n FROM ${t}`)).getRowObjects()[0]!.n);
      assert.equal(await count(), 1, 'none of the failed batch is stored');
      await store.write(set, batch);
      assert.equal(await count(), 3);
      assert.deepEqual(await store.history(set, 'BTC/USD', 0, T + 180_000), [vec(T), ...batch]);
      assert.equal((await store.online(set, 'BTC/USD'))?.vector.windowEnd, T + 120_000);
    } finally {
      await other.close();
      await store.close();
    }
  });

  // What the store remembers of the table (each pair's latest minute) is dropped when a backfill batch fails, by a
  // handler on that batch's commit, outside the store's queue. `write` read the entry again after its own commit
  // (`maxEnd.get(t)!`): had it been dropped meanwhile, a committed write was reported failed (a TypeError). Today's
  // ordering runs that handler before a queued write starts; this test drops the entry right at the write's COMMIT,
  // as such a handler would, so that a write does not depend on that ordering.
  it('the remembered latest minutes dropped while a write commits: the write is reported stored, the next reads again', async () => {
    const file = join(scratchDir('fs-forget-'), 'features.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    try {
      const t = tableName(set);
      await store.write(set, [vec(T)]);
      const inside = store as unknown as { conn: DuckDBConnection; maxEnd: Map<string, unknown> };
      const run = inside.conn.run.bind(inside.conn);
      let dropped = 0;
      inside.conn.run = async (sql: string, ...rest: unknown[]) => {
        const r = await (run as (sql: string, ...rest: unknown[]) => ReturnType<typeof run>)(sql, ...rest);
        if (sql === 'COMMIT' && inside.maxEnd.delete(t)) dropped++;
        return r;
      };
      await store.write(set, [vec(T + 60_000)]);
      assert.equal(dropped, 1, 'the entry was dropped at the commit');
      // Read again from the table: a minute at or before the latest takes the upsert, not a duplicate append.
      await store.write(set, [vec(T + 60_000), vec(T + 120_000)]);
      assert.equal(await store.count(set), 3);
      assert.equal((await store.online(set, 'BTC/USD'))?.vector.windowEnd, T + 120_000);
    } finally {
      await store.close();
    }
  });

  // A value the column refuses part-way (a fractional time: BigInt refuses it) rolled the transaction back, but left
  // the appender open: when garbage-collected it flushed its full 2,048-row chunks in a commit of its own, straight
  // into the table — rows of a write that had failed, appearing later.
  it('a value refused part-way: none of the batch is stored, not even after the appender is garbage-collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const file = join(scratchDir('fs-atomic-'), 'features.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    const other = await openDuckDb(file);
    try {
      const batch = Array.from({ length: 5_000 }, (_, i) => vec(T + i * 60_000));
      batch.push(vec(T + 5_000 * 60_000 + 0.5));
      await assert.rejects(store.write(set, batch), /BigInt|integer/i);
      const t = tableName(set);
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      const count = Number(
        (await other.conn.runAndReadAll(`SELECT count(*) AS n FROM ${t}`)).getRowObjects()[0]!.n,
      );
      assert.equal(count, 0);
    } finally {
      await other.close();
      await store.close();
    }
  });

  // A backfill's batches into a file (`writeColumns`, DuckDbOverlappingInserts) commit the rows, then move the online
  // vectors in a transaction of their own: when that fails the rows are stored, and the error says so.
  it('a backfill batch whose online move fails after its commit: RowsStoredError, and its rows are in the table', async () => {
    const columns = (from: number, n: number) => {
      const rows = newFeatureColumns('test', 1, n);
      for (let i = 0; i < n; i++) {
        rows.pair[i] = 'BTC/USD';
        rows.windowEnd[i] = T + (from + i) * 60_000;
        rows.windowStart[i] = rows.windowEnd[i]! - 60_000;
        rows.close[i] = 100;
        rows.ready[i] = 1;
        rows.values[i] = 1;
      }
      rows.length = n;
      return rows;
    };
    const file = join(scratchDir('fs-atomic-'), 'features.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    const other = await openDuckDb(file);
    try {
      await store.writeColumns(set, columns(0, 10));
      const t = tableName(set);
      await other.conn.run('BEGIN TRANSACTION');
      await other.conn.run(`UPDATE ${t}_online SET close = 101 WHERE pair = 'BTC/USD'`);
      const failed = await store.writeColumns(set, columns(10, 1_000)).then(
        () => undefined,
        (err: unknown) => err,
      );
      await other.conn.run('ROLLBACK');
      assert.ok(failed instanceof RowsStoredError, String(failed));
      const count = Number(
        (await other.conn.runAndReadAll(`SELECT count(*) AS n FROM ${t}`)).getRowObjects()[0]!.n,
      );
      assert.equal(count, 1_010);
    } finally {
      await other.close();
      await store.close();
    }
  });
});
