import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { backfillFeatures } from '../../src/features/backfill.ts';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../src/features/store/duckdb.ts';
import {
  type BulkWrite,
  type FeatureStore,
  newFeatureColumns,
  tableName,
} from '../../src/features/store/store.ts';
import { SHARED_DATA } from '../support/data.ts';

/**
 * The DuckDB backfill in overlapping batches (each written while the next is computed) stores exactly what one batch
 * written after the computation stores: every row bit for bit, and the same online vectors. Real kline zips of two
 * pairs, so batches also start and end inside a pair's run and across the change of pair.
 */
const KLINES = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const days = ['01', '02', '03', '04', '05', '06', '07'];
const files = ['BTCUSDT', 'ETHUSDT'].flatMap((s) =>
  days.map((d) => join(KLINES, s, `${s}-1m-2022-01-${d}.zip`)),
);

/** The store with another batch layout (everything else is the store's own). */
const withBulk = (store: FeatureStore, bulk: BulkWrite): FeatureStore =>
  new Proxy(store, { get: (t, p) => (p === 'bulk' ? bulk : Reflect.get(t, p, t)) });

async function backfilled(bulk: BulkWrite | undefined): Promise<{ rows: unknown[][]; online: unknown[][] }> {
  const file = join(mkdtempSync(join(tmpdir(), 'feat-backfill-')), 'f.duckdb');
  const store = await DuckDbFeatureStore.open(file);
  try {
    const s = bulk === undefined ? store : withBulk(store, bulk);
    const stats = await backfillFeatures({ files, store: s, exchange: 'binance' });
    assert.equal(stats.rows, files.length * 1440);
  } finally {
    await store.close();
  }
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    const t = tableName(TECHNICAL_SET);
    // Doubles come back as JavaScript numbers, which deepEqual compares with Object.is: bit for bit but for NaN's
    // payload (and NULL stays null).
    const dump = async (table: string) =>
      (await conn.runAndReadAll(`SELECT * FROM ${table} ORDER BY pair, window_end`)).getRows();
    return { rows: await dump(t), online: await dump(`${t}_online`) };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('features backfill into DuckDB: overlapping batches = one batch', () => {
  it('stores the same rows and online vectors in batches of 5,000 (two or one in flight), of one row group, and in one', async () => {
    const one = await backfilled({ rows: 1 << 20, inFlight: 0, mergeTail: false });
    assert.equal(one.rows.length, files.length * 1440);
    assert.equal(one.online.length, 2);
    for (const bulk of [
      { rows: 5_000, inFlight: 2, mergeTail: true },
      { rows: 5_000, inFlight: 1, mergeTail: false },
      undefined,
    ]) {
      const other = await backfilled(bulk);
      assert.deepEqual(other.rows, one.rows, `rows with ${JSON.stringify(bulk ?? 'the store default')}`);
      assert.deepEqual(other.online, one.online);
    }
  });

  it('takes no batch after a failed one (no gap in the table), each refused with the first error', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'feat-backfill-')), 'f.duckdb');
    const store = await DuckDbFeatureStore.open(file);
    const k = TECHNICAL_SET.columns.length;
    const minutes = (from: number, n: number) => {
      const rows = newFeatureColumns('binance', k, n);
      for (let i = 0; i < n; i++) {
        const end = Date.UTC(2022, 0, 1) + (from + i + 1) * 60_000;
        rows.pair[i] = 'BTC/USDT';
        rows.windowStart[i] = end - 60_000;
        rows.windowEnd[i] = end;
        rows.close[i] = 100 + i;
        rows.ready[i] = 1;
        for (let c = 0; c < k; c++) rows.values[c * n + i] = i + c / 100;
      }
      rows.length = n;
      return rows;
    };
    try {
      const bad = minutes(3_000, 3_000);
      bad.windowEnd[1_500] = Number.NaN; // not a BIGINT: the INSERT of this batch fails
      // As the backfill hands them over: the next batch before the one before it has settled.
      const [first, second, third] = await Promise.allSettled([
        store.writeColumns(TECHNICAL_SET, minutes(0, 3_000)),
        store.writeColumns(TECHNICAL_SET, bad),
        store.writeColumns(TECHNICAL_SET, minutes(6_000, 3_000)),
      ]);
      assert.equal(first.status, 'fulfilled');
      assert.equal(second.status, 'rejected');
      assert.equal(third.status, 'rejected');
      assert.match(String((third as PromiseRejectedResult).reason), /an earlier batch failed/);
      assert.equal(await store.count(TECHNICAL_SET), 3_000);
      const online = await store.online(TECHNICAL_SET, 'BTC/USDT');
      assert.equal(online!.vector.windowEnd, Date.UTC(2022, 0, 1) + 3_000 * 60_000);
    } finally {
      await store.close();
    }
  });
});
