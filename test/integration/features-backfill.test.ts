import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
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
import { runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

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
  const file = join(scratchDir('feat-backfill-'), 'f.duckdb');
  const store = await DuckDbFeatureStore.open(file);
  try {
    const s = bulk === undefined ? store : withBulk(store, bulk);
    const stats = await backfillFeatures({ files, store: s, exchange: 'binance' });
    assert.equal(stats.rows, files.length * 1440);
  } finally {
    await store.close();
  }
  return dumped(file);
}

/** Every row and online vector of the file's technical table, in key order (pair, then time: the order written). */
async function dumped(file: string): Promise<{ rows: unknown[][]; online: unknown[][] }> {
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
    const file = join(scratchDir('feat-backfill-'), 'f.duckdb');
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

  it('kill -9 after a batch is stored: the file holds a prefix of the rows, no gap; a rerun completes it as if uninterrupted', {
    timeout: 600_000,
  }, async (t) => {
    // 150 days of each pair (432,000 rows: three and a half row groups, so several batches and a change of pair).
    const dir = scratchDir('feat-backfill-crash-');
    const zips = join(dir, 'zips');
    mkdirSync(zips);
    for (const s of ['BTCUSDT', 'ETHUSDT'])
      for (const f of readdirSync(join(KLINES, s)).sort().slice(0, 150))
        symlinkSync(join(KLINES, s, f), join(zips, f));
    const backfill = (file: string) =>
      runCli(['features', '--candles', zips, '--store', `duckdb:${file}`, '--exchange', 'binance', '--json']);
    const reference = join(dir, 'uninterrupted.duckdb');
    const whole = backfill(reference);
    assert.equal(await whole.exited, 0, whole.stderr());
    const expected = await dumped(reference);
    assert.equal(expected.rows.length, 2 * 150 * 1440);
    // Every batch's commit was reported, in order, the last with every row.
    const reported = whole.events.map((e) => e.rows as number);
    assert.ok(reported.length > 2, `several batches (${reported.join(', ')})`);
    assert.ok(reported.every((n, i) => i === 0 || n > reported[i - 1]!));
    assert.equal(reported.at(-1), expected.rows.length);

    // Killed as soon as the first batch is reported committed, while the others are being computed and written.
    const crashed = join(dir, 'crashed.duckdb');
    const run = backfill(crashed);
    const first = await run.waitFor((e) => e.event === 'stored');
    run.child.kill('SIGKILL');
    assert.equal(await run.exited, 'SIGKILL', 'the backfill was killed before it ended');
    const after = await dumped(crashed);
    t.diagnostic(`killed with ${after.rows.length} of ${expected.rows.length} rows committed`);
    assert.ok(after.rows.length >= (first.rows as number), 'what was reported stored is in the file');
    assert.ok(after.rows.length < expected.rows.length);
    // Batches commit in order and none after a failure: the committed rows are the first N of the stream, bit for
    // bit (a gap would leave a resumed writer, which continues after the latest row, with a hole).
    assert.deepEqual(after.rows, expected.rows.slice(0, after.rows.length));
    // The online vectors move after each commit: never ahead of the table (at most one batch behind).
    for (const o of after.online)
      assert.deepEqual(
        o,
        after.rows.find((r) => r[0] === o[0] && r[1] === o[1]),
        `the online vector of ${o[0]} is a row of the table`,
      );

    const rerun = backfill(crashed);
    assert.equal(await rerun.exited, 0, rerun.stderr());
    assert.deepEqual(await dumped(crashed), expected);
  });
});
