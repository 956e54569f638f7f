import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { readOhlcv } from '../../../src/candles/ohlcv-files.ts';
import type { FeatureStore } from '../../../src/features/store/store.ts';
import { type CandleInput, FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import {
  checkDataset,
  type Dataset,
  DatasetBuilder,
  DatasetError,
  type FeatureRow,
  fingerprint,
  readDataset,
  writeDataset,
} from '../../../src/training/dataset.ts';
import { datasetFromCandles, datasetFromStore } from '../../../src/training/sources.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { scratchDir } from '../../support/scratch.ts';

const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1, 12, 0);
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');

/** A ready row of pair `pair` at minute `i` (windowEnd = T0 + i minutes). */
const row = (pair: string, i: number, close: number, values: (number | null)[] = [i, -i]): FeatureRow => ({
  pair,
  windowEnd: T0 + i * MIN,
  close,
  ready: true,
  values,
});

/** A close that differs at every minute (so a target taken from the wrong minute shows). */
const closeOf = (i: number) => 100 + i * 1.5 + (i % 3) * 0.25;

/** Row index of each (pair, windowEnd) of a dataset. */
function index(ds: Dataset): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < ds.n; i++) m.set(`${ds.pairs[ds.pair[i]!]}|${ds.windowEnd[i]}`, i);
  return m;
}

describe('DatasetBuilder: targets by timestamp', () => {
  it('drops the rows whose target minute falls in a gap, and never pairs a row with another minute', () => {
    // Minutes 0..9 with minute 5 missing, horizon 2 minutes. By hand:
    //   0→2 ok, 1→3 ok, 2→4 ok, 3→5 missing, 4→6 ok, 6→8 ok, 7→9 ok, 8→10 end, 9→11 end
    // so 6 rows are kept (0, 1, 2, 4, 6, 7) and 3 dropped for lack of a target.
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: 2 * MIN });
    const closes = new Map<number, number>();
    for (let i = 0; i < 10; i++) {
      if (i === 5) continue;
      b.add(row('BTC/USD', i, closeOf(i)));
      closes.set(T0 + i * MIN, closeOf(i));
    }
    const ds = b.build();
    assert.equal(ds.n, 6);
    assert.deepEqual(ds.dropped, { notReady: 0, noTarget: 3 });
    assert.deepEqual(
      Array.from(ds.windowEnd, (t) => (t - T0) / MIN),
      [0, 1, 2, 4, 6, 7],
    );
    for (let i = 0; i < ds.n; i++) {
      const want = closes.get(ds.windowEnd[i]! + 2 * MIN);
      assert.equal(ds.targetClose[i], want, `row ${i}`);
      assert.equal(ds.close[i], closes.get(ds.windowEnd[i]!));
      assert.equal(ds.y[i], 1e4 * Math.log(want! / ds.close[i]!));
    }
    // Row 4's target is minute 6 (not minute 7, which would be "two rows later" across the gap).
    const at4 = Array.from(ds.windowEnd).indexOf(T0 + 4 * MIN);
    assert.equal(ds.targetClose[at4], closeOf(6));
  });

  it('finds targets by time on real candles with a minute deleted (datasetFromCandles)', async () => {
    const candles: CandleInput[] = [];
    for await (const b of readOhlcv(join(BINANCE, 'BTCUSDT', 'BTCUSDT-1m-2022-01-01.zip')))
      candles.push(...b.candles);
    assert.equal(candles.length, 1440);
    const gapAt = 300; // delete minute 300 (05:00 UTC)
    const gapEnd = candles[gapAt]!.windowEnd;
    const kept = candles.filter((_, i) => i !== gapAt);
    const dir = scratchDir('cc-ds-gap-');
    writeFileSync(join(dir, 'btc.csv'), toCsv(kept));
    const h = 5 * MIN;
    const { dataset: ds, resets } = await datasetFromCandles(dir, { horizonMs: h });
    assert.equal(resets, 1);
    const closeAt = new Map(kept.map((c) => [c.windowEnd, c.close]));
    for (let i = 0; i < ds.n; i++) {
      const t = ds.windowEnd[i]!;
      assert.notEqual(t + h, gapEnd, 'a row whose target is the deleted minute was kept');
      const want = closeAt.get(t + h);
      assert.ok(want !== undefined);
      assert.equal(ds.targetClose[i], want);
      assert.equal(ds.y[i], 1e4 * Math.log(want / closeAt.get(t)!));
    }
    // Dropped for lack of a target: the (ready) row 5 minutes before the gap, and the last 5 minutes of the day.
    assert.equal(ds.dropped.noTarget, 1 + 5);
    assert.equal(ds.n + ds.dropped.noTarget + ds.dropped.notReady, kept.length);
    // The gap restarts the warm-up (61 candles before the first ready vector), on top of the day's first one.
    assert.equal(ds.dropped.notReady, 60 + 60);
  });
});

describe('DatasetBuilder: rows, order, missing values, errors', () => {
  it('excludes and counts rows that are not ready (which still serve as targets)', () => {
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: MIN });
    for (let i = 0; i < 6; i++) b.add({ ...row('BTC/USD', i, closeOf(i)), ready: i >= 2 && i !== 3 });
    const ds = b.build();
    // ready: 2, 4, 5; 5 has no target → rows 2 and 4. Row 2's target is minute 3, which is not ready itself.
    assert.deepEqual(ds.dropped, { notReady: 3, noTarget: 1 });
    assert.deepEqual(
      Array.from(ds.windowEnd, (t) => (t - T0) / MIN),
      [2, 4],
    );
    assert.equal(ds.targetClose[0], closeOf(3));
  });

  it('sorts rows by time, then pair (pairs in alphabetical order)', () => {
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: MIN });
    for (const i of [3, 1, 0, 2]) b.add(row('ETH/USD', i, closeOf(i) / 10));
    for (const i of [2, 0, 3, 1]) b.add(row('BTC/USD', i, closeOf(i)));
    const ds = b.build();
    assert.deepEqual(ds.pairs, ['BTC/USD', 'ETH/USD']);
    assert.deepEqual(
      Array.from({ length: ds.n }, (_, i) => `${(ds.windowEnd[i]! - T0) / MIN}${ds.pairs[ds.pair[i]!]}`),
      ['0BTC/USD', '0ETH/USD', '1BTC/USD', '1ETH/USD', '2BTC/USD', '2ETH/USD'],
    );
    // The features travel with their row: a = minute, b = −minute.
    for (let i = 0; i < ds.n; i++) {
      const m = (ds.windowEnd[i]! - T0) / MIN;
      assert.equal(ds.X[i * 2], m);
      assert.equal(ds.X[i * 2 + 1], -m);
    }
  });

  it('turns null and non-finite features into NaN, keeps the rest as float32, and picks model columns', () => {
    const b = new DatasetBuilder(['a', 'b', 'c', 'd'], { horizonMs: MIN, columns: ['d', 'a', 'b', 'c'] });
    b.add(row('BTC/USD', 0, 100, [0.1, null, Number.POSITIVE_INFINITY, Number.NaN]));
    b.add(row('BTC/USD', 1, 101, [1, 2, 3, 4]));
    const ds = b.build();
    assert.equal(ds.n, 1);
    assert.deepEqual(ds.columns, ['d', 'a', 'b', 'c']);
    assert.ok(Number.isNaN(ds.X[0]!));
    assert.equal(ds.X[1], Math.fround(0.1));
    assert.ok(Number.isNaN(ds.X[2]!));
    assert.ok(Number.isNaN(ds.X[3]!));
  });

  it('computes the drift baseline from ret_60m (mean 1-minute return × horizon minutes, bps), 0 without it', () => {
    const withRet = new DatasetBuilder(['x', 'ret_60m'], { horizonMs: 5 * MIN, columns: ['x'] });
    // ret_60m = 0.006 → 60 bps in an hour → 1 bps a minute → 5 bps over 5 minutes.
    for (let i = 0; i < 6; i++) withRet.add(row('BTC/USD', i, closeOf(i), [1, 0.006]));
    const ds = withRet.build();
    assert.equal(ds.n, 1);
    assert.ok(Math.abs(ds.drift[0]! - 5) < 1e-12, `drift ${ds.drift[0]}`);
    const without = new DatasetBuilder(['x'], { horizonMs: 5 * MIN });
    for (let i = 0; i < 6; i++) without.add(row('BTC/USD', i, closeOf(i), [1]));
    assert.equal(without.build().drift[0], 0);
  });

  it('refuses an unknown model column, a bad horizon and a duplicate (pair, windowEnd)', () => {
    assert.throws(
      () => new DatasetBuilder(['a'], { horizonMs: MIN, columns: ['a', 'zz'] }),
      (e: Error) => e instanceof DatasetError && /"zz"/.test(e.message),
    );
    assert.throws(() => new DatasetBuilder(['a'], { horizonMs: 0 }), DatasetError);
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: MIN });
    b.add(row('BTC/USD', 0, 100));
    b.add(row('ETH/USD', 0, 10)); // same minute, other pair: fine
    b.add(row('BTC/USD', 0, 101));
    assert.throws(
      () => b.build(),
      (e: Error) => e instanceof DatasetError && /BTC\/USD has two rows/.test(e.message),
    );
  });
});

describe('checkDataset', () => {
  const build = (closes: number[], values: (i: number) => (number | null)[] = (i) => [i, -i]) => {
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: MIN });
    closes.forEach((c, i) => {
      b.add(row('BTC/USD', i, c, values(i)));
    });
    return b.build();
  };

  it('refuses too few rows, saying how many and why', () => {
    const ds = build([1, 2, 3, 4]); // 3 rows
    assert.throws(
      () => checkDataset(ds, 10),
      (e: Error) => e instanceof DatasetError && /only 3 usable rows \(need at least 10\)/.test(e.message),
    );
    assert.deepEqual(checkDataset(ds, 3), []);
  });

  it('refuses constant prices', () => {
    assert.throws(
      () => checkDataset(build([5, 5, 5, 5, 5]), 1),
      (e: Error) => e instanceof DatasetError && /price never changes/.test(e.message),
    );
  });

  it('warns about a column missing everywhere, and one missing in most rows', () => {
    const ds = build([1, 2, 3, 4, 5], (i) => [i === 0 ? i : null, null]);
    // 4 rows: a is present in 1 (missing 75%), b in none.
    const w = checkDataset(ds, 1);
    assert.equal(w.length, 2);
    assert.match(w[0]!, /column a is missing in 75% of rows/);
    assert.match(w[1]!, /column b is missing in every row/);
  });
});

describe('fingerprint', () => {
  const build = (tweak?: (rows: FeatureRow[]) => void) => {
    const rows = [0, 1, 2, 3].map((i) => row('BTC/USD', i, closeOf(i), [i * 0.5, 1 - i]));
    tweak?.(rows);
    const b = new DatasetBuilder(['a', 'b'], { horizonMs: MIN });
    for (const r of rows) b.add(r);
    return b.build();
  };
  it('is stable for the same content and changes when one feature or price changes', () => {
    const f = fingerprint(build());
    assert.match(f, /^sha256:[0-9a-f]{64}$/);
    assert.equal(fingerprint(build()), f);
    assert.notEqual(
      fingerprint(
        build((r) => {
          r[1] = { ...r[1]!, values: [0.5, 7] };
        }),
      ),
      f,
    );
    assert.notEqual(
      fingerprint(
        build((r) => {
          r[3] = { ...r[3]!, close: r[3]!.close + 0.01 }; // only a target changes
        }),
      ),
      f,
    );
  });
});

describe('writeDataset', () => {
  it('writes X (n × columns float32) and meta (n × 4 float64) that decode back to the dataset', async () => {
    const b = new DatasetBuilder(['a', 'b', 'c'], { horizonMs: MIN });
    for (let i = 0; i < 7; i++) b.add(row('ETH/USD', i, closeOf(i) / 3, [i / 7, null, i * 1e-3]));
    for (let i = 0; i < 7; i++) b.add(row('BTC/USD', i, closeOf(i), [i / 3, 2, Number.NaN]));
    const ds = b.build();
    assert.equal(ds.n, 12);
    const dir = scratchDir('cc-ds-write-');
    await writeDataset(ds, dir);
    assert.equal(statSync(join(dir, 'X.f32')).size, ds.n * 3 * 4);
    assert.equal(statSync(join(dir, 'meta.f64')).size, ds.n * 4 * 8);
    const xb = readFileSync(join(dir, 'X.f32'));
    const mb = readFileSync(join(dir, 'meta.f64'));
    const dv = new DataView(xb.buffer, xb.byteOffset, xb.byteLength);
    const mv = new DataView(mb.buffer, mb.byteOffset, mb.byteLength);
    for (let i = 0; i < ds.n; i++) {
      for (let j = 0; j < 3; j++) {
        const got = dv.getFloat32((i * 3 + j) * 4, true);
        assert.ok(Object.is(got, ds.X[i * 3 + j]) || (Number.isNaN(got) && Number.isNaN(ds.X[i * 3 + j]!)));
      }
      assert.equal(mv.getFloat64(i * 32, true), ds.windowEnd[i]);
      assert.equal(mv.getFloat64(i * 32 + 8, true), ds.pair[i]);
      assert.equal(mv.getFloat64(i * 32 + 16, true), ds.close[i]);
      assert.equal(mv.getFloat64(i * 32 + 24, true), ds.y[i]);
    }
    const meta = JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8'));
    assert.deepEqual(meta.columns, ['a', 'b', 'c']);
    assert.deepEqual(meta.pairs, ['BTC/USD', 'ETH/USD']);
    assert.equal(meta.n, 12);
    assert.equal(meta.horizonMs, MIN);
  });

  it('readDataset reads it back (the study and benchmark cache): the same rows, targets, drift and volatility', async () => {
    const b = new DatasetBuilder(['ret_60m', 'rv_60m', 'c'], { horizonMs: 5 * MIN });
    for (let i = 0; i < 20; i++) b.add(row('BTC/USD', i, closeOf(i), [0.001 * i, 0.002 + i * 1e-4, i]));
    const ds = b.build();
    const dir = scratchDir('cc-ds-read-');
    await writeDataset(ds, dir);
    const back = await readDataset(dir);
    assert.deepEqual(back.columns, ds.columns);
    assert.deepEqual(back.pairs, ds.pairs);
    assert.equal(back.n, ds.n);
    assert.deepEqual(back.X, ds.X);
    assert.deepEqual(back.windowEnd, ds.windowEnd);
    assert.deepEqual(back.y, ds.y);
    assert.deepEqual(back.vol, ds.vol);
    for (let i = 0; i < ds.n; i++) {
      assert.ok(Math.abs(back.targetClose[i]! / ds.targetClose[i]! - 1) < 1e-14, `target close ${i}`);
      // drift from the float32 ret_60m column: equal to float32 precision.
      assert.ok(
        Math.abs(back.drift[i]! - ds.drift[i]!) < 1e-6 * Math.max(1, Math.abs(ds.drift[i]!)),
        `drift ${i}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Leakage: shuffling or deleting all future rows cannot change any feature of a past row.

function toCsv(candles: readonly CandleInput[]): string {
  const lines = ['timestamp,pair,open,high,low,close,volume,trades,vwap'];
  for (const c of candles)
    lines.push(
      [c.windowStart, c.pair, c.open, c.high, c.low, c.close, c.volume, c.trades ?? '', c.vwap ?? ''].join(
        ',',
      ),
    );
  return `${lines.join('\n')}\n`;
}

/** A seeded PRNG (mulberry32), so a failing shuffle can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Candles after `cut` (windowEnd > cut) get the prices, volumes and counts of another one after `cut`. */
function shuffleAfter(candles: readonly CandleInput[], cut: number, seed: number): CandleInput[] {
  const out = candles.map((c) => ({ ...c }));
  const random = rng(seed);
  const byPair = new Map<string, number[]>();
  for (const [i, c] of out.entries())
    if (c.windowEnd > cut) byPair.set(c.pair, [...(byPair.get(c.pair) ?? []), i]);
  for (const idx of byPair.values()) {
    const perm = [...idx];
    for (let i = perm.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    for (const [k, i] of idx.entries()) {
      const src = candles[perm[k]!]!;
      out[i] = {
        ...out[i]!,
        open: src.open,
        high: src.high,
        low: src.low,
        close: src.close,
        volume: src.volume,
        trades: src.trades,
        vwap: src.vwap,
      };
    }
  }
  return out;
}

async function build(candles: readonly CandleInput[], horizonMs: number): Promise<Dataset> {
  const dir = scratchDir('cc-ds-leak-');
  writeFileSync(join(dir, 'candles.csv'), toCsv(candles));
  const r = await datasetFromCandles(dir, { horizonMs });
  assert.equal(r.rejects.length, 0, JSON.stringify(r.rejects.slice(0, 3)));
  return r.dataset;
}

/** Bitwise (so NaN-aware) comparison of row i of a with row j of b. */
function sameFeatures(a: Dataset, i: number, b: Dataset, j: number): boolean {
  const k = a.columns.length;
  const ab = new Uint32Array(a.X.buffer, a.X.byteOffset, a.X.length);
  const bb = new Uint32Array(b.X.buffer, b.X.byteOffset, b.X.length);
  for (let c = 0; c < k; c++) if (ab[i * k + c] !== bb[j * k + c]) return false;
  return Object.is(a.drift[i], b.drift[j]) && a.close[i] === b.close[j];
}

/**
 * The full dataset vs the one built without the candles after `cut` and the one built with them shuffled: every row
 * up to `cut` has the same features in all three; targets may differ only for rows within the horizon of `cut`.
 */
function assertNoLeak(full: Dataset, cut: Dataset, shuffled: Dataset, T: number, h: number): void {
  const iCut = index(cut);
  const iShuf = index(shuffled);
  let past = 0;
  for (let i = 0; i < full.n; i++) {
    const t = full.windowEnd[i]!;
    if (t > T) continue;
    past++;
    const key = `${full.pairs[full.pair[i]!]}|${t}`;
    const s = iShuf.get(key);
    assert.ok(s !== undefined, `${key} missing from the shuffled dataset`);
    assert.ok(sameFeatures(full, i, shuffled, s), `features of ${key} changed when the future was shuffled`);
    const c = iCut.get(key);
    if (t + h <= T) {
      assert.ok(c !== undefined, `${key} missing from the truncated dataset`);
      assert.ok(sameFeatures(full, i, cut, c), `features of ${key} changed when the future was deleted`);
      for (const [ds, j] of [
        [cut, c],
        [shuffled, s],
      ] as const) {
        assert.equal(ds.targetClose[j], full.targetClose[i]);
        assert.equal(ds.y[j], full.y[i]);
      }
    } else {
      assert.equal(
        c,
        undefined,
        `${key}: its target is after the cut, it cannot be in the truncated dataset`,
      );
    }
  }
  assert.ok(past > 0);
  // The truncated dataset holds nothing after the cut.
  for (let i = 0; i < cut.n; i++) assert.ok(cut.windowEnd[i]! + h <= T);
}

describe('leakage: the future cannot change a past row (real Binance minutes)', () => {
  const h = 5 * MIN;
  let candles: CandleInput[];
  let full: Dataset;
  before(async () => {
    candles = [];
    for (const f of [
      'BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
      'BTCUSDT/BTCUSDT-1m-2022-01-02.zip',
      'ETHUSDT/ETHUSDT-1m-2022-01-01.zip',
      'ETHUSDT/ETHUSDT-1m-2022-01-02.zip',
    ])
      for await (const b of readOhlcv(join(BINANCE, f))) candles.push(...b.candles);
    full = await build(candles, h);
  });

  it('the CSV the test writes yields the same dataset as the original zips', async () => {
    const dir = scratchDir('cc-ds-zip-');
    const { copyFileSync } = await import('node:fs');
    for (const f of ['BTCUSDT-1m-2022-01-01.zip', 'BTCUSDT-1m-2022-01-02.zip'])
      copyFileSync(join(BINANCE, 'BTCUSDT', f), join(dir, f));
    for (const f of ['ETHUSDT-1m-2022-01-01.zip', 'ETHUSDT-1m-2022-01-02.zip'])
      copyFileSync(join(BINANCE, 'ETHUSDT', f), join(dir, f));
    const fromZip = (await datasetFromCandles(dir, { horizonMs: h })).dataset;
    assert.equal(fingerprint(fromZip), fingerprint(full));
    assert.equal(full.n, 2 * (2880 - 60 - 5));
  });

  it('deleting or shuffling every candle after T leaves every feature up to T unchanged', async () => {
    const T = Date.UTC(2022, 0, 2, 7, 13); // a windowEnd on day 2
    const shuffledCandles = shuffleAfter(candles, T, 42);
    // The shuffle really moved the future: closes after T differ, and so do the features after T.
    const moved = shuffledCandles.filter((c, i) => c.windowEnd > T && c.close !== candles[i]!.close).length;
    assert.ok(moved > 1000, `only ${moved} candles moved`);
    const cut = await build(
      candles.filter((c) => c.windowEnd <= T),
      h,
    );
    const shuffled = await build(shuffledCandles, h);
    assertNoLeak(full, cut, shuffled, T, h);
    const iShuf = index(shuffled);
    let changed = 0;
    for (let i = 0; i < full.n; i++) {
      if (full.windowEnd[i]! <= T + 60 * MIN) continue;
      const s = iShuf.get(`${full.pairs[full.pair[i]!]}|${full.windowEnd[i]}`);
      if (s !== undefined && !sameFeatures(full, i, shuffled, s)) changed++;
    }
    assert.ok(
      changed > 1000,
      'the shuffle should change the features after T (else this test proves nothing)',
    );
    // Rows within the horizon of T: targets now come from shuffled candles, found by their time.
    const shuffledClose = new Map(shuffledCandles.map((c) => [`${c.pair}|${c.windowEnd}`, c.close]));
    for (let i = 0; i < shuffled.n; i++) {
      const t = shuffled.windowEnd[i]!;
      if (t > T || t + h <= T) continue;
      assert.equal(
        shuffled.targetClose[i],
        shuffledClose.get(`${shuffled.pairs[shuffled.pair[i]!]}|${t + h}`),
      );
    }
  });

  it('holds for random cut points and shuffles (property)', async () => {
    const first = candles.filter((c) => c.pair === candles[0]!.pair).slice(0, 1440);
    const fullDay = await build(first, h);
    const t0 = first[0]!.windowEnd;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 70, max: 1439 }), fc.integer(), async (m, seed) => {
        const T = t0 + m * MIN;
        const cut = await build(
          first.filter((c) => c.windowEnd <= T),
          h,
        );
        const shuffled = await build(shuffleAfter(first, T, seed), h);
        assertNoLeak(fullDay, cut, shuffled, T, h);
      }),
      { numRuns: 10 },
    );
  });
});

describe('datasetFromStore: the window [from, to)', () => {
  /** A store holding ready technical vectors of BTC/USD at minutes 0–9 (only what datasetFromStore calls). */
  const tenMinutes = {
    migrate: async () => {},
    history: async (_set: unknown, pair: string, fromTs: number, toTs: number) =>
      Array.from({ length: 10 }, (_, i) => ({
        pair,
        windowEnd: T0 + i * MIN,
        close: closeOf(i),
        ready: true,
        values: FEATURE_COLUMNS.map(() => i),
      })).filter((r) => r.windowEnd >= fromTs && r.windowEnd < toTs),
  } as unknown as FeatureStore;

  it('reads up to a horizon past `to` for targets only: those closes are no rows and not counted as warming up', async () => {
    const h = 2 * MIN;
    const { dataset: ds } = await datasetFromStore(tenMinutes, {
      horizonMs: h,
      pairs: ['BTC/USD'],
      from: T0,
      to: T0 + 6 * MIN,
    });
    // Rows: minutes 0–5, each with its target 2 minutes later (minutes 6 and 7 read as targets only).
    assert.deepEqual(
      Array.from(ds.windowEnd, (t) => (t - T0) / MIN),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(ds.targetClose[5], closeOf(7));
    assert.deepEqual(ds.dropped, { notReady: 0, noTarget: 0 });
  });
});
