import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { KlineReadAhead } from '../../../src/candles/kline-read-ahead.ts';
import { klineColumnsOfZip } from '../../../src/candles/ohlcv-files.ts';
import { backfillFeatures } from '../../../src/features/backfill.ts';
import type { BulkWrite, FeatureColumns, FeatureStore } from '../../../src/features/store/store.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * Kline zips are read on a thread of their own (src/candles/kline-read-ahead.ts) and reach the backfill as columns;
 * any other file is read by `readOhlcv` on the main thread. Both give the same rows, rejects (reasons, line numbers,
 * order) and errors: here the same klines as zips (the thread) and as plain CSV files (`readOhlcv`'s general path).
 */
const dir = scratchDir('backfill-read-ahead-');
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const T0 = Date.UTC(2022, 0, 1);

/** Headerless Binance kline lines, `n` minutes from `from`; `bad` line indexes get an unreadable open_time. */
function klineText(from: number, n: number, bad: ReadonlySet<number> = new Set()): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = from + i * 60_000;
    const p = 100 + Math.sin(i / 10) * 5;
    const count = i % 997 === 0 ? '' : String(5 + (i % 3)); // an empty trade count now and then
    lines.push(
      `${bad.has(i) ? 'soon' : t},${p},${p + 1},${p - 1},${p + 0.5},${i % 13 === 0 ? 0 : 10 + (i % 7)},${t + 59_999},1000,${count},5,500,0`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The same text as NAME.zip and as NAME.csv. */
function both(name: string, text: string): { zip: string; csv: string } {
  const zip = join(dir, 'zip', `${name}.zip`);
  const csv = join(dir, 'csv', `${name}.csv`);
  writeFileSync(zip, zipSync({ [`${name}.csv`]: new Uint8Array(Buffer.from(text)) }));
  writeFileSync(csv, text);
  return { zip, csv };
}

class CapturingStore {
  readonly kind = 'duckdb' as const;
  readonly bulk: BulkWrite = { rows: 3_000, inFlight: 2, mergeTail: false };
  readonly rows: string[] = [];
  async writeColumns(_set: unknown, b: FeatureColumns): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < b.length; i++) {
      const values = FEATURE_COLUMNS.map((_, k) => b.values[k * b.capacity + i]);
      this.rows.push(
        JSON.stringify([b.pair[i], b.windowStart[i], b.windowEnd[i], b.close[i], b.ready[i], values]),
      );
    }
  }
}

async function backfill(files: string[], pair?: string) {
  const store = new CapturingStore();
  const rejects: string[] = [];
  const stats = await backfillFeatures({
    files,
    store: store as unknown as FeatureStore,
    exchange: 'binance',
    pair,
    onReject: (where, reason) => rejects.push(`${where}: ${reason}`),
  });
  return { stats, rejects, rows: store.rows };
}

/** The reject lines without the file's extension (zip and csv name the same file). */
const plain = (rejects: string[]) => rejects.map((r) => r.replace(/\.(zip|csv) line/, ' line'));

describe('backfill: kline zips read on a thread, the same as readOhlcv', () => {
  it('rows, rejects and their order: bad lines across readOhlcv batches of 5,000, empty counts, zero volumes', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'zip'), { recursive: true });
    mkdirSync(join(dir, 'csv'), { recursive: true });
    // A month-long file (more than one batch of 5,000 candles): bad lines before, at and after a batch's end, and
    // last (a gap after each: the engine resets); then a day whose minutes are not after the month's.
    const month = both(
      'BTCUSDT-1m-2022-01',
      klineText(T0, 12_000, new Set([1, 4_999, 5_000, 5_001, 9_000, 11_999])),
    );
    const day = both('BTCUSDT-1m-2022-01-10', klineText(T0 + 8_000 * 60_000, 100));
    const viaThread = await backfill([month.zip, day.zip]);
    const viaReadOhlcv = await backfill([month.csv, day.csv]);
    // 6 bad lines, every 997th minute's empty trade count refused by the engine, the second file's 100 minutes
    // refused as not after the first's; between the gaps these make, the windows fill and vectors are ready.
    const emptyCounts = Math.ceil(12_000 / 997);
    assert.equal(viaThread.stats.rows, 12_000 - 6 - emptyCounts);
    assert.equal(viaThread.stats.rejects, 6 + emptyCounts + 100);
    assert.ok(viaThread.stats.ready > 11_000, `${viaThread.stats.ready} ready`);
    assert.deepEqual(viaThread.stats, viaReadOhlcv.stats);
    assert.deepEqual(plain(viaThread.rejects), plain(viaReadOhlcv.rejects));
    assert.deepEqual(viaThread.rows, viaReadOhlcv.rows);
    assert.match(viaThread.rejects[0]!, /BTCUSDT-1m-2022-01\.zip line 2: bad open_time "soon"/);
  });

  it('--pair: the rows carry it; a zip named without a pair, and a broken one, as readOhlcv reads them', async () => {
    const named = both('BTCUSDT-1m-2022-02-01', klineText(Date.UTC(2022, 1, 1), 300));
    const a = await backfill([named.zip], 'ETH/USDT');
    const b = await backfill([named.csv], 'ETH/USDT');
    assert.deepEqual(a.rows, b.rows);
    assert.equal(JSON.parse(a.rows[0]!)[0], 'ETH/USDT');
    const unnamed = both('klines', klineText(Date.UTC(2022, 1, 1), 10));
    const c = await backfill([unnamed.zip]);
    const d = await backfill([unnamed.csv]);
    assert.equal(c.stats.rejects, 10);
    assert.deepEqual(plain(c.rejects), plain(d.rejects));
    const good = readFileSync(named.zip);
    const broken = join(dir, 'BTCUSDT-1m-2022-02-02.zip');
    writeFileSync(broken, good.subarray(0, good.length >> 1));
    await assert.rejects(
      backfill([named.zip, broken]),
      /BTCUSDT-1m-2022-02-02\.zip: not a readable zip archive/,
    );
  });

  it('the thread reads a real daily zip into the columns readOhlcv would give, and says nothing of other files', async () => {
    const file = join(BINANCE, 'BTCUSDT/BTCUSDT-1m-2022-03-01.zip');
    const reader = new KlineReadAhead();
    try {
      const [got, csv] = await Promise.all([
        reader.read(file, undefined, 60_000),
        reader.read(join(dir, 'csv', 'BTCUSDT-1m-2022-01.csv'), undefined, 60_000),
      ]);
      assert.equal(csv, undefined);
      assert.ok(got !== undefined);
      assert.deepEqual(got, klineColumnsOfZip(file, undefined, 60_000));
      assert.equal(got.count, 1440);
      assert.equal(got.pair, 'BTC/USDT');
      assert.equal(got.fields[0], Date.UTC(2022, 2, 1));
    } finally {
      await reader.close();
    }
  });
});
