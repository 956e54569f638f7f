import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { backfillFeatures } from '../../src/features/backfill.ts';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../src/features/store/duckdb.ts';
import { type BulkWrite, type FeatureStore, tableName } from '../../src/features/store/store.ts';
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
  it('stores the same rows and online vectors in batches of 5,000 (overlapping), of one row group, and in one', async () => {
    const one = await backfilled({ rows: 1 << 20, overlap: false });
    assert.equal(one.rows.length, files.length * 1440);
    assert.equal(one.online.length, 2);
    for (const bulk of [{ rows: 5_000, overlap: true }, undefined]) {
      const other = await backfilled(bulk);
      assert.deepEqual(other.rows, one.rows, `rows with ${JSON.stringify(bulk ?? 'the store default')}`);
      assert.deepEqual(other.online, one.online);
    }
  });
});
