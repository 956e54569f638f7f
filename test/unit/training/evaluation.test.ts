import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERR } from '../../../src/core/errors.ts';
import { type Dataset, DatasetBuilder } from '../../../src/training/dataset.ts';
import { evaluate, evaluateInTurns } from '../../../src/training/evaluation.ts';
import type { Fold } from '../../../src/training/folds.ts';
import {
  defaultHacLag,
  dieboldMariano,
  intervalMetrics,
  intervalScore,
  volatilityBand,
} from '../../../src/training/metrics.ts';
import type { OutOfSample } from '../../../src/training/python-trainer.ts';
import { coded } from '../../support/errors.ts';

const MIN = 60_000;
const T0 = Date.UTC(2022, 0, 1);
const PAIRS = ['BTC/USD', 'ETH/USD'];
const MINUTES = 30;

/** Made-up closes and ret_60m values, different at every minute. */
const closeOf = (pair: string, i: number) =>
  pair === 'BTC/USD' ? 100 + 3 * Math.sin(i * 1.7) + 0.1 * i : 10 + 0.4 * Math.cos(i * 2.3);
const ret60Of = (pair: string, i: number) => (pair === 'BTC/USD' ? 0.06 : -0.03) * Math.sin(i * 0.9 + 0.5);

/** 30 minutes of both pairs, horizon 1 minute → 29 rows each, ordered (minute, pair): row 2m = BTC, 2m + 1 = ETH. */
function dataset(): Dataset {
  const b = new DatasetBuilder(['x', 'ret_60m'], { horizonMs: MIN, columns: ['x'] });
  for (const pair of PAIRS)
    for (let i = 0; i < MINUTES; i++)
      b.add({
        pair,
        windowEnd: T0 + i * MIN,
        close: closeOf(pair, i),
        ready: true,
        values: [i, ret60Of(pair, i)],
      });
  return b.build();
}

/** Test rows: minutes 10..18 are fold 0, 19..28 fold 1. */
const folds: Fold[] = [
  { fold: 0, trainFrom: T0, trainTo: T0 + 9 * MIN, testFrom: T0 + 10 * MIN, testTo: T0 + 19 * MIN },
  { fold: 1, trainFrom: T0, trainTo: T0 + 18 * MIN, testFrom: T0 + 19 * MIN, testTo: T0 + 29 * MIN },
];

interface Case {
  ds: Dataset;
  oos: OutOfSample;
  /** Test rows of a pair (and fold), each as (minute, close, target close). */
  rowsOf: (pair: string, fold?: number) => { minute: number; c: number; tc: number }[];
}

/**
 * The model is perfect on BTC (predicts the realised return) and predicts 0 on ETH (= persistence). Linear predicts
 * half the realised return (its price is then √(close·target)). p10/p90 bracket BTC's actual return and miss ETH's.
 */
function makeCase(champion?: (pair: string, y: number) => number): Case {
  const ds = dataset();
  const rows: number[] = [];
  const fold: number[] = [];
  for (let i = 0; i < ds.n; i++) {
    const m = (ds.windowEnd[i]! - T0) / MIN;
    if (m < 10) continue;
    rows.push(i);
    fold.push(m <= 18 ? 0 : 1);
  }
  const isBtc = (i: number) => ds.pairs[ds.pair[i]!] === 'BTC/USD';
  const oos: OutOfSample = {
    row: Int32Array.from(rows),
    fold: Int32Array.from(fold),
    model: Float64Array.from(rows, (i) => (isBtc(i) ? ds.y[i]! : 0)),
    p10: Float64Array.from(rows, (i) => (isBtc(i) ? ds.y[i]! - 1 : 1e3)),
    p90: Float64Array.from(rows, (i) => (isBtc(i) ? ds.y[i]! + 1 : 2e3)),
    linear: Float64Array.from(rows, (i) => ds.y[i]! / 2),
    champion: Float64Array.from(rows, (i) =>
      champion ? champion(ds.pairs[ds.pair[i]!]!, ds.y[i]!) : Number.NaN,
    ),
  };
  const rowsOf = (pair: string, f?: number) => {
    const out: { minute: number; c: number; tc: number }[] = [];
    for (let m = 10; m <= 28; m++)
      if (f === undefined || (m <= 18 ? 0 : 1) === f)
        out.push({ minute: m, c: closeOf(pair, m), tc: closeOf(pair, m + 1) });
    return out;
  };
  return { ds, oos, rowsOf };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const near = (got: number | null | undefined, want: number, tol: number, what: string) =>
  assert.ok(
    typeof got === 'number' && Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)),
    `${what}: got ${got}, want ${want}`,
  );

/** Independent MAEs from the made-up prices (never from the dataset's arrays). */
const maePersistence = (r: { c: number; tc: number }[]) => mean(r.map(({ c, tc }) => Math.abs(c - tc)));
const maeLinear = (r: { c: number; tc: number }[]) =>
  mean(r.map(({ c, tc }) => Math.abs(Math.sqrt(c * tc) - tc)));
const maeDrift = (pair: string, r: { minute: number; c: number; tc: number }[]) =>
  // drift (bps) = ret_60m·10⁴/60 per minute × 1 minute
  mean(r.map(({ minute, c, tc }) => Math.abs(c * Math.exp((ret60Of(pair, minute) * 1e4) / 60 / 1e4) - tc)));

describe('evaluate: scorecards on the right rows', () => {
  const { ds, oos, rowsOf } = makeCase();
  const ev = evaluate(ds, folds, oos);
  const btc = rowsOf('BTC/USD');
  const eth = rowsOf('ETH/USD');

  it('the dataset is laid out as the test assumes', () => {
    assert.equal(ds.n, 2 * (MINUTES - 1));
    assert.deepEqual(ds.pairs, PAIRS);
    assert.equal(oos.row.length, 2 * 19);
  });

  it('persistence predicts no change: its MAE and RMSE are those of |close − target| per pair', () => {
    near(ev.per_pair['BTC/USD']!.mae_persistence, maePersistence(btc), 1e-12, 'BTC');
    near(ev.per_pair['ETH/USD']!.mae_persistence, maePersistence(eth), 1e-12, 'ETH');
    near(
      ev.per_pair['ETH/USD']!.rmse_persistence,
      Math.sqrt(mean(eth.map(({ c, tc }) => (c - tc) ** 2))),
      1e-12,
      'ETH RMSE',
    );
    near(ev.mae_persistence, maePersistence([...btc, ...eth]), 1e-12, 'pooled');
  });

  it('drift continues the last hour’s mean 1-minute return (the dataset’s drift), linear is scored as given', () => {
    for (const [pair, r] of [
      ['BTC/USD', btc],
      ['ETH/USD', eth],
    ] as const) {
      near(ev.per_pair[pair]!.mae_drift, maeDrift(pair, r), 1e-12, `${pair} drift`);
      near(ev.per_pair[pair]!.mae_linear, maeLinear(r), 1e-9, `${pair} linear`);
      // The best baseline is the one with the lowest MAE.
      const maes = { persistence: maePersistence(r), drift: maeDrift(pair, r), linear: maeLinear(r) };
      const best = (Object.keys(maes) as (keyof typeof maes)[]).reduce((a, b) => (maes[b] < maes[a] ? b : a));
      assert.equal(ev.per_pair[pair]!.best_baseline, best);
    }
    // Sanity: the drift here really differs from persistence (else the check above proves little).
    assert.ok(Math.abs(maeDrift('BTC/USD', btc) - maePersistence(btc)) > 1e-3);
  });

  it('per pair: perfect on BTC (skill 1, significant), persistence on ETH (skill 0, no test)', () => {
    const b = ev.per_pair['BTC/USD']!;
    const e = ev.per_pair['ETH/USD']!;
    assert.equal(b.n, 19);
    assert.equal(e.n, 19);
    near(b.mae_model, 0, 1e-9, 'BTC MAE');
    near(b.skill, 1, 1e-9, 'BTC skill');
    assert.ok(b.dm_stat !== null && b.dm_stat < 0 && b.dm_pvalue !== null && b.dm_pvalue < 0.01);
    assert.equal(b.direction_accuracy, 1);
    assert.equal(b.direction_n, 19);
    assert.equal(b.coverage_p10_p90, 1);
    assert.equal(e.mae_model, e.mae_persistence);
    assert.equal(e.skill, 0);
    assert.equal(e.dm_pvalue, null); // the loss differential is identically 0
    assert.equal(e.direction_accuracy, null); // predicting 0 is never a direction
    assert.equal(e.coverage_p10_p90, 0);
    assert.equal(b.mae_champion, null);
    assert.equal(b.vs_champion, null);
  });

  it('pooled: both pairs’ rows, and the DM series sums the pairs per minute', () => {
    assert.equal(ev.n, 38);
    near(
      ev.mae_model,
      (19 * ev.per_pair['BTC/USD']!.mae_model + 19 * maePersistence(eth)) / 38,
      1e-12,
      'MAE',
    );
    near(ev.skill, 1 - ev.mae_model / ev.mae_persistence, 1e-12, 'skill');
    assert.equal(ev.coverage_p10_p90, 0.5);
    // ETH adds 0 to every minute's differential, so the pooled test is BTC's.
    assert.equal(ev.dm_stat, ev.per_pair['BTC/USD']!.dm_stat);
    assert.equal(ev.dm_lag, ev.per_pair['BTC/USD']!.dm_lag);
    assert.equal(ev.folds, 2);
    assert.equal(ev.horizon_minutes, 1);
    assert.deepEqual(ev.pairs, PAIRS);
  });

  it('per fold: the fold’s rows only, and each pair within it', () => {
    assert.equal(ev.per_fold.length, 2);
    for (const [f, count] of [
      [0, 9],
      [1, 10],
    ] as const) {
      const pf = ev.per_fold[f]!;
      assert.equal(pf.fold, f);
      assert.equal(pf.testFrom, folds[f]!.testFrom);
      assert.equal(pf.n, 2 * count);
      const fb = rowsOf('BTC/USD', f);
      const fe = rowsOf('ETH/USD', f);
      assert.equal(fb.length, count);
      near(pf.metrics.persistence!.mae_price, maePersistence([...fb, ...fe]), 1e-12, `fold ${f} persistence`);
      near(pf.metrics.linear!.mae_price, maeLinear([...fb, ...fe]), 1e-9, `fold ${f} linear`);
      near(pf.metrics['model BTC/USD']!.skill as number, 1, 1e-9, `fold ${f} BTC skill`);
      assert.equal(pf.metrics['model ETH/USD']!.skill, 0);
      near(
        pf.metrics['persistence ETH/USD']!.mae_price,
        maePersistence(fe),
        1e-12,
        `fold ${f} ETH persistence`,
      );
      near(pf.metrics['model ETH/USD']!.mae_price, maePersistence(fe), 1e-12, `fold ${f} ETH model`);
      assert.equal(pf.metrics.champion, undefined);
    }
  });
});

describe('evaluate: champion and errors', () => {
  it('scores a refitted champion when its predictions are all finite', () => {
    // Champion: persistence on BTC, perfect on ETH.
    const { ds, oos, rowsOf } = makeCase((pair, y) => (pair === 'ETH/USD' ? y : 0));
    const ev = evaluate(ds, folds, oos);
    near(ev.per_pair['BTC/USD']!.mae_champion!, maePersistence(rowsOf('BTC/USD')), 1e-12, 'BTC champion');
    near(ev.per_pair['ETH/USD']!.mae_champion!, 0, 1e-9, 'ETH champion');
    // On ETH the model (persistence) is worse than the (perfect) champion; on BTC it is the other way round.
    assert.ok(ev.per_pair['ETH/USD']!.vs_champion!.skill < 0);
    near(ev.per_pair['BTC/USD']!.vs_champion!.skill, 1, 1e-9, 'BTC vs champion');
    assert.ok(ev.per_fold[0]!.metrics.champion !== undefined);
  });

  it('refuses to evaluate without out-of-sample rows', () => {
    const { ds } = makeCase();
    const empty: OutOfSample = {
      row: new Int32Array(0),
      fold: new Int32Array(0),
      model: new Float64Array(0),
      p10: new Float64Array(0),
      p90: new Float64Array(0),
      linear: new Float64Array(0),
      champion: new Float64Array(0),
    };
    assert.throws(() => evaluate(ds, folds, empty), coded(ERR.DATASET));
  });
});

describe('evaluate: the band as a probabilistic forecast, per day and per volatility decile', () => {
  // 3,000 minutes of one pair from 2022-01-01 22:00 (three UTC days), rv_60m rising with time.
  const start = Date.UTC(2022, 0, 1, 22);
  const b = new DatasetBuilder(['x', 'ret_60m', 'rv_60m'], { horizonMs: MIN, columns: ['x'] });
  for (let i = 0; i < 3000; i++)
    b.add({
      pair: 'BTC/USD',
      windowEnd: start + i * MIN,
      close: 100 + Math.sin(i * 1.3) + 0.2 * Math.cos(i * 0.7),
      ready: true,
      values: [i, 0, 0.001 + i * 1e-6],
    });
  const ds = b.build();
  const rows = Array.from({ length: ds.n }, (_, i) => i);
  const twoFolds: Fold[] = [
    { fold: 0, trainFrom: 0, trainTo: 0, testFrom: start, testTo: start + 1500 * MIN },
    { fold: 1, trainFrom: 0, trainTo: 0, testFrom: start + 1500 * MIN, testTo: start + 3000 * MIN },
  ];
  const oos: OutOfSample = {
    row: Int32Array.from(rows),
    fold: Int32Array.from(rows, (i) => (i < 1500 ? 0 : 1)),
    model: new Float64Array(ds.n).fill(0.5),
    p10: new Float64Array(ds.n).fill(-20),
    p90: new Float64Array(ds.n).fill(25),
    linear: new Float64Array(ds.n),
    champion: new Float64Array(ds.n).fill(Number.NaN),
  };
  const ev = evaluate(ds, twoFolds, oos);

  it('scores the band with the metrics of metrics.ts, and the baseline as persistence ∓ z·rv·√(h/60)', () => {
    const m = intervalMetrics(rows, ds.y, oos.model, oos.p10, oos.p90);
    assert.deepEqual(ev.intervals, m);
    const band = rows.map((i) => volatilityBand(ds.vol[i]!, 1));
    const base = intervalMetrics(
      rows,
      ds.y,
      new Float64Array(ds.n),
      band.map((x) => -x),
      band,
    );
    assert.deepEqual(ev.intervals_baseline, base);
    near(ev.interval_skill, 1 - m.interval_score / base.interval_score, 1e-12, 'interval skill');
    near(ev.crps_skill, 1 - m.crps / base.crps, 1e-12, 'CRPS skill');
    assert.ok(ev.interval_dm_pvalue !== null);
    assert.equal(
      ev.per_fold[0]!.metrics.model!.interval_score,
      ev.per_fold[0]!.metrics.model!.interval_score,
    );
    assert.ok(typeof ev.per_fold[1]!.metrics.interval_baseline!.crps === 'number');
  });

  it('per UTC day: the day’s rows only', () => {
    assert.deepEqual(
      ev.per_day.map((d) => [d.day, d.n]),
      [
        ['2022-01-01', 120],
        ['2022-01-02', 1440],
        ['2022-01-03', ds.n - 1560],
      ],
    );
    const day2 = rows.slice(120, 1560);
    const m = intervalMetrics(
      day2,
      ds.y,
      oos.model.subarray(120, 1560),
      oos.p10.subarray(120, 1560),
      oos.p90.subarray(120, 1560),
    );
    near(ev.per_day[1]!.coverage, m.coverage, 1e-12, 'coverage');
    near(ev.per_day[1]!.interval_score, m.interval_score, 1e-12, 'interval score');
    assert.equal(ev.per_day[1]!.per_pair['BTC/USD']!.n, 1440);
  });

  it('per decile of rv_60m: ten groups of a tenth of the rows, calmest first', () => {
    assert.deepEqual(Object.keys(ev.per_pair_vol_decile), ['BTC/USD']);
    const deciles = ev.per_pair_vol_decile['BTC/USD']!;
    assert.equal(deciles.length, 10);
    for (const [k, d] of deciles.entries()) {
      assert.equal(d.decile, k + 1);
      assert.ok(Math.abs(d.n - ds.n / 10) <= 1, `decile ${k + 1}: ${d.n} rows`);
      if (k > 0) assert.ok(d.rv_from >= deciles[k - 1]!.rv_to - 1e-15);
    }
    // rv rises with time here, so the first decile is the first tenth of the rows.
    const first = rows.slice(0, deciles[0]!.n);
    near(
      deciles[0]!.coverage,
      intervalMetrics(first, ds.y, oos.model, oos.p10, oos.p90).coverage,
      1e-12,
      'decile 1 coverage',
    );
  });
});

describe('evaluate: volatility deciles are per pair, each by its own rv_60m', () => {
  // Two pairs of 100 rows (101 minutes, horizon 1 minute). The calm pair's rv_60m is 0.00100–0.00199 and the
  // volatile pair's 0.01000–0.01099: pooled deciles would put all of the calm pair in deciles 1–5 and all of the
  // volatile one in 6–10. The rv rank of minute i within its pair is (37 i) mod 100 (37 is prime to 100, so every rank
  // once), so a pair's decile d is the minutes whose rank is in [10d, 10d + 10), spread over time.
  const PAIR_CALM = 'BTC/USD';
  const PAIR_VOLATILE = 'ETH/USD';
  const start = Date.UTC(2022, 0, 1);
  const rankOf = (i: number) => (i * 37) % 100;
  const rvOf = (pair: string, i: number) => (pair === PAIR_CALM ? 0.001 : 0.01) + rankOf(i) * 1e-5;
  const b = new DatasetBuilder(['x', 'ret_60m', 'rv_60m'], { horizonMs: MIN, columns: ['x'] });
  for (const pair of [PAIR_CALM, PAIR_VOLATILE])
    for (let i = 0; i <= 100; i++)
      b.add({
        pair,
        windowEnd: start + i * MIN,
        close: 100 + Math.sin(i * 1.3 + (pair === PAIR_CALM ? 0 : 2)),
        ready: true,
        values: [i, 0, rvOf(pair, i)],
      });
  const ds = b.build();
  const minuteOf = (row: number) => (ds.windowEnd[row]! - start) / MIN;
  // Which rows the band covers, set per (pair, rank): the calm pair 8 of 10 in every decile; the volatile pair all 10
  // in its calmest decile and 7 of 10 in the others.
  const covered = (row: number) => {
    const rank = rankOf(minuteOf(row));
    if (ds.pairs[ds.pair[row]!] === PAIR_CALM) return rank % 10 < 8;
    return rank < 10 || rank % 10 < 7;
  };
  const rows = Array.from({ length: ds.n }, (_, i) => i);
  const y = (row: number) => ds.y[row]!;
  const oos: OutOfSample = {
    row: Int32Array.from(rows),
    fold: new Int32Array(ds.n),
    model: Float64Array.from(rows, y),
    // A covered row's band holds its outcome; a missed one's lies just above it (the outcome falls below p10).
    p10: Float64Array.from(rows, (i) => (covered(i) ? y(i) - 1 : y(i) + 1)),
    p90: Float64Array.from(rows, (i) => (covered(i) ? y(i) + 1 : y(i) + 2)),
    linear: new Float64Array(ds.n),
    champion: new Float64Array(ds.n).fill(Number.NaN),
  };
  const fold: Fold[] = [{ fold: 0, trainFrom: 0, trainTo: 0, testFrom: start, testTo: start + 101 * MIN }];
  const ev = evaluate(ds, fold, oos);

  it('splits each pair into ten deciles of its own 100 rows, with its own rv edges', () => {
    assert.equal(ds.n, 200);
    assert.deepEqual(Object.keys(ev.per_pair_vol_decile), [PAIR_CALM, PAIR_VOLATILE]);
    for (const [pair, base] of [
      [PAIR_CALM, 0.001],
      [PAIR_VOLATILE, 0.01],
    ] as const) {
      const deciles = ev.per_pair_vol_decile[pair]!;
      assert.deepEqual(
        deciles.map((d) => [d.decile, d.n]),
        Array.from({ length: 10 }, (_, d) => [d + 1, 10]),
        pair,
      );
      // Decile d spans ranks 10d … 10d + 10: from its calmest row to the next decile's calmest (the edge).
      for (const [d, s] of deciles.entries()) {
        near(s.rv_from, base + 10 * d * 1e-5, 1e-15, `${pair} decile ${d + 1} from`);
        near(s.rv_to, base + (d === 9 ? 99 : 10 * d + 10) * 1e-5, 1e-15, `${pair} decile ${d + 1} to`);
      }
    }
  });

  it('coverage per pair and decile, as set: the calm pair 80 % in all, the volatile 100 % then 70 %', () => {
    assert.deepEqual(
      ev.per_pair_vol_decile[PAIR_CALM]!.map((d) => d.coverage),
      Array(10).fill(0.8),
    );
    assert.deepEqual(
      ev.per_pair_vol_decile[PAIR_VOLATILE]!.map((d) => d.coverage),
      [1, ...Array(9).fill(0.7)],
    );
    // Every miss is below p10, none above p90.
    assert.deepEqual(
      ev.per_pair_vol_decile[PAIR_VOLATILE]!.map((d) => [d.below, d.above]),
      [[0, 0], ...Array(9).fill([0.3, 0])],
    );
    // Deciles pooled over the two pairs would read 80 % five times (the calm pair), then 85 % (the volatile pair's
    // deciles 1–2 together) and 70 % four times: the volatile pair's calmest decile, at 100 %, would not show.
  });
});

describe('evaluate: the interval-score DM test of two pairs', () => {
  // Two pairs × 1,000 rows (1,005 minutes each, horizon 5 minutes): the DM series has one value per minute (1,000),
  // the rows number 2,000 — and the Newey–West lag of 4·(n/100)^(2/9) differs between the two (6 and 7).
  const b = new DatasetBuilder(['x', 'ret_60m', 'rv_60m'], { horizonMs: 5 * MIN, columns: ['x'] });
  for (const pair of PAIRS)
    for (let i = 0; i < 1005; i++)
      b.add({
        pair,
        windowEnd: T0 + i * MIN,
        close: closeOf(pair, i) * (1 + 0.002 * Math.sin(i * 0.37)),
        ready: true,
        values: [i, 0, 0.002 + 0.001 * Math.sin(i * 0.05)],
      });
  const ds = b.build();
  const rows = Array.from({ length: ds.n }, (_, i) => i);
  const oos: OutOfSample = {
    row: Int32Array.from(rows),
    fold: new Int32Array(ds.n),
    model: Float64Array.from(rows, (i) => 3 * Math.sin(i * 0.11)),
    // the baseline's band, a little wider or narrower by the minute: interval scores close to the baseline's
    p10: Float64Array.from(rows, (i) => -volatilityBand(ds.vol[i]!, 5) * (1 + 0.3 * Math.sin(i * 0.013))),
    p90: Float64Array.from(rows, (i) => volatilityBand(ds.vol[i]!, 5) * (1 + 0.3 * Math.cos(i * 0.017))),
    linear: new Float64Array(ds.n),
    champion: new Float64Array(ds.n).fill(Number.NaN),
  };
  const fold: Fold = { fold: 0, trainFrom: 0, trainTo: 0, testFrom: T0, testTo: T0 + 1005 * MIN };

  it('takes its Newey–West lag from the per-minute series, as the point DM test does (docs/training.md)', () => {
    assert.equal(ds.n, 2000);
    const ev = evaluate(ds, [fold], oos);
    const h = 5;
    const is = (i: number, lo: number, hi: number) => intervalScore(0.2, ds.y[i]!, lo, hi);
    const diff = Float64Array.from(rows, (i) => {
      const band = volatilityBand(ds.vol[i]!, h);
      return is(i, oos.p10[i]!, oos.p90[i]!) - is(i, -band, band);
    });
    const perMinute = Float64Array.from({ length: 1000 }, (_, m) => diff[2 * m]! + diff[2 * m + 1]!);
    assert.equal(defaultHacLag(perMinute.length, h), 6);
    assert.equal(defaultHacLag(ds.n, h), 7);
    const want = dieboldMariano(perMinute, defaultHacLag(perMinute.length, h))!;
    const wrongLag = dieboldMariano(perMinute, defaultHacLag(ds.n, h))!;
    assert.ok(
      want.pvalue > 1e-4 && Math.abs(want.pvalue - wrongLag.pvalue) > 1e-3,
      `${want.pvalue} ${wrongLag.pvalue}`,
    );
    near(ev.interval_dm_pvalue, want.pvalue, 1e-12, 'interval DM p-value');
    // the point DM test of the same rows already used the series' own length
    assert.equal(ev.dm_lag, 6);
  });
});

describe('evaluateInTurns: the same evaluation, in slices a stop is heard between', () => {
  it('gives exactly what evaluate gives', async () => {
    const { ds, oos } = makeCase();
    assert.deepEqual(await evaluateInTurns(ds, folds, oos), evaluate(ds, folds, oos));
  });

  it('stopped: rejects with the signal’s reason, at once when stopped before', async () => {
    const { ds, oos } = makeCase();
    const stop = new AbortController();
    stop.abort();
    await assert.rejects(evaluateInTurns(ds, folds, oos, stop.signal), { name: 'AbortError' });
  });
});
