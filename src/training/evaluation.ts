import { type Dataset, DatasetError } from './dataset.ts';
import type { Fold } from './folds.ts';
import {
  absPriceErrors,
  coverage,
  crpsFromQuantiles,
  type DmResult,
  defaultHacLag,
  dieboldMariano,
  type IntervalMetrics,
  intervalScore,
  pinball,
  pointMetrics,
  volatilityBand,
  wilson,
} from './metrics.ts';
import type { OutOfSample } from './python-trainer.ts';
import type { FoldMetrics } from './registry/registry.ts';

/**
 * Out-of-sample predictions → the honest scorecard. Every predictor is scored on the very same test rows:
 *
 *   model        XGBoost, refitted on each fold's training window
 *   persistence  the price does not move (return 0)
 *   drift        the last hour's mean 1-minute return, continued over the horizon
 *   linear       ridge regression on the same features, refitted per fold
 *   champion     the current champion's configuration refitted on the same folds (when there is one)
 *
 * Pooled numbers mix pairs whose prices differ 15-fold (a dollar of BTC error weighs as much as a dollar of ETH
 * error), so each pair is also scored on its own, and the promotion gate looks at every pair.
 *
 * The p10–p90 band is scored as a forecast of its own (metrics.ts: coverage, width, pinball loss, interval score,
 * CRPS from the quantiles, all on the return in bps) against the interval baseline: persistence with a normal band
 * from the realised volatility of the last hour (`volatilityBand`). Coverage is also broken down by UTC day and by
 * decile of that volatility (the regime, as known when the forecast was made), since a band that is right on average
 * can be too wide on calm days and too narrow in a shock.
 */
export const BASELINES = ['persistence', 'drift', 'linear'] as const;
export type Baseline = (typeof BASELINES)[number];

export interface Comparison {
  skill: number;
  dm_stat: number | null;
  dm_pvalue: number | null;
  dm_lag: number | null;
}

export interface Scorecard {
  n: number;
  mae_model: number;
  rmse_model: number;
  mae_return_bps_model: number;
  direction_accuracy: number | null;
  direction_ci95: [number, number] | null;
  direction_n: number;
  coverage_p10_p90: number;
  mae_persistence: number;
  rmse_persistence: number;
  mae_drift: number;
  mae_linear: number;
  mae_champion: number | null;
  /** 1 − MAE(model)/MAE(persistence), and the DM test of model vs persistence. */
  skill: number;
  dm_stat: number | null;
  dm_pvalue: number | null;
  dm_lag: number | null;
  best_baseline: Baseline;
  vs_best_baseline: Comparison;
  vs_champion: Comparison | null;
  /** The p10–p90 band as a probabilistic forecast (bps), and the interval baseline's on the same rows. */
  intervals: IntervalMetrics;
  intervals_baseline: IntervalMetrics;
  /** 1 − IS(model)/IS(baseline) for the 80 % interval score, with the DM test on the interval-score differential. */
  interval_skill: number;
  interval_dm_pvalue: number | null;
  /** 1 − CRPS(model)/CRPS(baseline). */
  crps_skill: number;
}

/** One UTC day of test rows: the point and interval scores of the model and persistence. */
export interface DayScore {
  day: string;
  n: number;
  mae_model: number;
  mae_persistence: number;
  skill: number;
  dm_pvalue: number | null;
  direction_accuracy: number | null;
  coverage: number;
  mean_width_bps: number;
  interval_score: number;
  interval_score_baseline: number;
  /** rv_60m averaged over the day's rows (how turbulent the day was). */
  mean_rv_60m: number;
  per_pair: Record<string, { n: number; skill: number; coverage: number }>;
}

/** Test rows grouped by decile of rv_60m at the close (pooled over pairs and folds). */
export interface VolDecileScore {
  decile: number;
  rv_from: number;
  rv_to: number;
  n: number;
  coverage: number;
  below: number;
  above: number;
  mean_width_bps: number;
  interval_score: number;
  interval_score_baseline: number;
  skill: number;
}

export interface Evaluation extends Scorecard {
  folds: number;
  horizon_minutes: number;
  pairs: string[];
  per_pair: Record<string, Scorecard>;
  per_fold: FoldMetrics[];
  per_day: DayScore[];
  per_vol_decile: VolDecileScore[];
}

interface Preds {
  model: Float64Array;
  persistence: Float64Array;
  drift: Float64Array;
  linear: Float64Array;
  champion: Float64Array | null;
  p10: Float64Array;
  p90: Float64Array;
  /** The interval baseline's band (bps): persistence ∓ volatilityBand. */
  base10: Float64Array;
  base90: Float64Array;
}

function subset(idx: number[], p: Preds): Preds {
  const pick = (a: Float64Array) => Float64Array.from(idx, (k) => a[k]!);
  return {
    model: pick(p.model),
    persistence: pick(p.persistence),
    drift: pick(p.drift),
    linear: pick(p.linear),
    champion: p.champion ? pick(p.champion) : null,
    p10: pick(p.p10),
    p90: pick(p.p90),
    base10: pick(p.base10),
    base90: pick(p.base90),
  };
}

/** Interval metrics over `rows` (forecasts indexed like rows), and each row's interval score (for the DM test). */
function intervalMeans(
  rows: Int32Array,
  y: Float64Array,
  point: Float64Array,
  lo: Float64Array,
  hi: Float64Array,
) {
  const n = rows.length;
  const out: IntervalMetrics = {
    n,
    coverage: 0,
    below: 0,
    above: 0,
    mean_width_bps: 0,
    pinball_p10: 0,
    pinball_p90: 0,
    interval_score: 0,
    crps: 0,
  };
  const is = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const v = y[rows[k]!]!;
    const l = lo[k]!;
    const h = hi[k]!;
    if (v < l) out.below++;
    else if (v > h) out.above++;
    else out.coverage++;
    out.mean_width_bps += h - l;
    out.pinball_p10 += pinball(0.1, v, l);
    out.pinball_p90 += pinball(0.9, v, h);
    is[k] = intervalScore(0.2, v, l, h);
    out.interval_score += is[k]!;
    out.crps += crpsFromQuantiles(v, l, point[k]!, h);
  }
  const d = n === 0 ? Number.NaN : n;
  for (const key of [
    'coverage',
    'below',
    'above',
    'mean_width_bps',
    'pinball_p10',
    'pinball_p90',
    'interval_score',
    'crps',
  ] as const)
    out[key] /= d;
  return { metrics: out, perRow: is };
}

/** Per-minute sums of a per-row series (rows of several pairs at one windowEnd), in time order. */
function perMinute(ds: Dataset, rows: Int32Array, d: Float64Array): Float64Array {
  const out: number[] = [];
  let lastT = Number.NaN;
  for (let k = 0; k < rows.length; k++) {
    const t = ds.windowEnd[rows[k]!]!;
    if (t === lastT) out[out.length - 1]! += d[k]!;
    else out.push(d[k]!);
    lastT = t;
  }
  return Float64Array.from(out);
}

/**
 * Loss differentials |e_a| − |e_b| per time step: rows of the same windowEnd (several pairs) are summed, so the
 * series has one value per minute, in time order, as the DM test wants.
 */
function differentials(ds: Dataset, rows: Int32Array, a: Float64Array, b: Float64Array): Float64Array {
  const ea = absPriceErrors(rows, ds.close, ds.targetClose, a);
  const eb = absPriceErrors(rows, ds.close, ds.targetClose, b);
  for (let k = 0; k < rows.length; k++) ea[k]! -= eb[k]!;
  return perMinute(ds, rows, ea);
}

function compare(
  ds: Dataset,
  rows: Int32Array,
  a: Float64Array,
  b: Float64Array,
  maeA: number,
  maeB: number,
): Comparison {
  const d = differentials(ds, rows, a, b);
  const dm: DmResult | null = dieboldMariano(d, defaultHacLag(d.length, ds.horizonMs / 60_000));
  return {
    skill: 1 - maeA / maeB,
    dm_stat: dm?.stat ?? null,
    dm_pvalue: dm?.pvalue ?? null,
    dm_lag: dm?.lag ?? null,
  };
}

function scorecard(ds: Dataset, rows: Int32Array, p: Preds): Scorecard {
  const m = (pred: Float64Array) => pointMetrics(rows, ds.close, ds.targetClose, ds.y, pred);
  const model = m(p.model);
  const persistence = m(p.persistence);
  const drift = m(p.drift);
  const linear = m(p.linear);
  const champion = p.champion ? m(p.champion) : null;
  const base: Record<Baseline, { mae: number; pred: Float64Array }> = {
    persistence: { mae: persistence.mae_price, pred: p.persistence },
    drift: { mae: drift.mae_price, pred: p.drift },
    linear: { mae: linear.mae_price, pred: p.linear },
  };
  const best = BASELINES.reduce((a, b) => (base[b].mae < base[a].mae ? b : a));
  const vsPersistence = compare(ds, rows, p.model, p.persistence, model.mae_price, persistence.mae_price);
  const band = intervalMeans(rows, ds.y, p.model, p.p10, p.p90);
  const baseBand = intervalMeans(rows, ds.y, p.persistence, p.base10, p.base90);
  const isDiff = band.perRow.map((v, k) => v - baseBand.perRow[k]!);
  const isDm = dieboldMariano(perMinute(ds, rows, isDiff), defaultHacLag(rows.length, ds.horizonMs / 60_000));
  const dirCi =
    model.direction_accuracy === null
      ? null
      : wilson(Math.round(model.direction_accuracy * model.direction_n), model.direction_n);
  return {
    n: rows.length,
    mae_model: model.mae_price,
    rmse_model: model.rmse_price,
    mae_return_bps_model: model.mae_return_bps,
    direction_accuracy: model.direction_accuracy,
    direction_ci95: dirCi,
    direction_n: model.direction_n,
    coverage_p10_p90: coverage(rows, ds.y, p.p10, p.p90),
    mae_persistence: persistence.mae_price,
    rmse_persistence: persistence.rmse_price,
    mae_drift: drift.mae_price,
    mae_linear: linear.mae_price,
    mae_champion: champion?.mae_price ?? null,
    skill: vsPersistence.skill,
    dm_stat: vsPersistence.dm_stat,
    dm_pvalue: vsPersistence.dm_pvalue,
    dm_lag: vsPersistence.dm_lag,
    best_baseline: best,
    vs_best_baseline: compare(ds, rows, p.model, base[best].pred, model.mae_price, base[best].mae),
    vs_champion:
      champion && p.champion
        ? compare(ds, rows, p.model, p.champion, model.mae_price, champion.mae_price)
        : null,
    intervals: band.metrics,
    intervals_baseline: baseBand.metrics,
    interval_skill: 1 - band.metrics.interval_score / baseBand.metrics.interval_score,
    interval_dm_pvalue: isDm?.pvalue ?? null,
    crps_skill: 1 - band.metrics.crps / baseBand.metrics.crps,
  };
}

/** Scores the out-of-sample predictions of a walk-forward run. */
export function evaluate(ds: Dataset, folds: readonly Fold[], oos: OutOfSample): Evaluation {
  const m = oos.row.length;
  if (m === 0) throw new DatasetError('no out-of-sample predictions to evaluate');
  const all: Preds = {
    model: oos.model,
    persistence: new Float64Array(m),
    drift: Float64Array.from(oos.row, (i) => ds.drift[i]!),
    linear: oos.linear,
    champion: oos.champion.every((v) => Number.isFinite(v)) ? oos.champion : null,
    p10: oos.p10,
    p90: oos.p90,
    base10: Float64Array.from(oos.row, (i) => -volatilityBand(ds.vol[i]!, ds.horizonMs / 60_000)),
    base90: Float64Array.from(oos.row, (i) => volatilityBand(ds.vol[i]!, ds.horizonMs / 60_000)),
  };
  const pick = (keep: (k: number) => boolean) => {
    const idx: number[] = [];
    for (let k = 0; k < m; k++) if (keep(k)) idx.push(k);
    return { rows: Int32Array.from(idx, (k) => oos.row[k]!), preds: subset(idx, all) };
  };
  const perPair: Record<string, Scorecard> = {};
  for (const [pi, pair] of ds.pairs.entries()) {
    const s = pick((k) => ds.pair[oos.row[k]!] === pi);
    if (s.rows.length > 0) perPair[pair] = scorecard(ds, s.rows, s.preds);
  }
  const perFold: FoldMetrics[] = folds.map((f) => {
    const s = pick((k) => oos.fold[k] === f.fold);
    const card = scorecard(ds, s.rows, s.preds);
    const metrics: FoldMetrics['metrics'] = {
      model: {
        mae_price: card.mae_model,
        rmse_price: card.rmse_model,
        mae_return_bps: card.mae_return_bps_model,
        direction_accuracy: card.direction_accuracy,
        coverage_p10_p90: card.coverage_p10_p90,
        skill: card.skill,
        dm_pvalue: card.dm_pvalue,
        mean_width_bps: card.intervals.mean_width_bps,
        pinball_p10: card.intervals.pinball_p10,
        pinball_p90: card.intervals.pinball_p90,
        interval_score: card.intervals.interval_score,
        crps: card.intervals.crps,
      },
      interval_baseline: {
        coverage_p10_p90: card.intervals_baseline.coverage,
        mean_width_bps: card.intervals_baseline.mean_width_bps,
        interval_score: card.intervals_baseline.interval_score,
        crps: card.intervals_baseline.crps,
      },
      persistence: { mae_price: card.mae_persistence, rmse_price: card.rmse_persistence },
      drift: { mae_price: card.mae_drift },
      linear: { mae_price: card.mae_linear },
    };
    if (card.mae_champion !== null) metrics.champion = { mae_price: card.mae_champion };
    // Per pair within the fold, so a fold's pooled number cannot hide one pair getting worse.
    for (const [pi, pair] of ds.pairs.entries()) {
      const sp = pick((k) => oos.fold[k] === f.fold && ds.pair[oos.row[k]!] === pi);
      if (sp.rows.length === 0) continue;
      const c = scorecard(ds, sp.rows, sp.preds);
      metrics[`model ${pair}`] = {
        mae_price: c.mae_model,
        skill: c.skill,
        direction_accuracy: c.direction_accuracy,
        coverage_p10_p90: c.coverage_p10_p90,
        interval_score: c.intervals.interval_score,
      };
      metrics[`persistence ${pair}`] = { mae_price: c.mae_persistence };
    }
    return { ...f, n: s.rows.length, metrics };
  });
  return {
    ...scorecard(ds, oos.row, all),
    folds: folds.length,
    horizon_minutes: ds.horizonMs / 60_000,
    pairs: ds.pairs,
    per_pair: perPair,
    per_fold: perFold,
    per_day: perDay(ds, oos.row, all),
    per_vol_decile: perVolDecile(ds, oos.row, all),
  };
}

/** Indices 0..m−1 grouped by a key, groups in the order of their first index (time order for time keys). */
function groupBy<K>(m: number, key: (k: number) => K): Map<K, number[]> {
  const g = new Map<K, number[]>();
  for (let k = 0; k < m; k++) {
    const v = key(k);
    const list = g.get(v);
    if (list === undefined) g.set(v, [k]);
    else list.push(k);
  }
  return g;
}

const DAY_MS = 86_400_000;

function perDay(ds: Dataset, rows: Int32Array, all: Preds): DayScore[] {
  const out: DayScore[] = [];
  for (const [day, idx] of groupBy(rows.length, (k) => Math.floor(ds.windowEnd[rows[k]!]! / DAY_MS))) {
    const r = Int32Array.from(idx, (k) => rows[k]!);
    const p = subset(idx, all);
    const model = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.model);
    const pers = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.persistence);
    const cmp = compare(ds, r, p.model, p.persistence, model.mae_price, pers.mae_price);
    const band = intervalMeans(r, ds.y, p.model, p.p10, p.p90).metrics;
    const base = intervalMeans(r, ds.y, p.persistence, p.base10, p.base90).metrics;
    let rv = 0;
    for (const i of r) rv += ds.vol[i]!;
    const perPair: DayScore['per_pair'] = {};
    for (const [pi, pidx] of groupBy(idx.length, (j) => ds.pair[r[j]!]!)) {
      const pr = Int32Array.from(pidx, (j) => r[j]!);
      const pp = subset(
        pidx.map((j) => idx[j]!),
        all,
      );
      const pm = pointMetrics(pr, ds.close, ds.targetClose, ds.y, pp.model);
      const ppers = pointMetrics(pr, ds.close, ds.targetClose, ds.y, pp.persistence);
      perPair[ds.pairs[pi]!] = {
        n: pr.length,
        skill: 1 - pm.mae_price / ppers.mae_price,
        coverage: coverage(pr, ds.y, pp.p10, pp.p90),
      };
    }
    out.push({
      day: new Date(day * DAY_MS).toISOString().slice(0, 10),
      n: r.length,
      mae_model: model.mae_price,
      mae_persistence: pers.mae_price,
      skill: cmp.skill,
      dm_pvalue: cmp.dm_pvalue,
      direction_accuracy: model.direction_accuracy,
      coverage: band.coverage,
      mean_width_bps: band.mean_width_bps,
      interval_score: band.interval_score,
      interval_score_baseline: base.interval_score,
      mean_rv_60m: rv / r.length,
      per_pair: perPair,
    });
  }
  return out;
}

/** Deciles of rv_60m over the test rows (rows without it are left out). */
function perVolDecile(ds: Dataset, rows: Int32Array, all: Preds): VolDecileScore[] {
  const known: number[] = [];
  for (let k = 0; k < rows.length; k++) if (Number.isFinite(ds.vol[rows[k]!]!)) known.push(k);
  if (known.length < 10) return [];
  const sorted = Float64Array.from(known, (k) => ds.vol[rows[k]!]!).sort();
  const edge = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const edges = Array.from({ length: 9 }, (_, d) => edge((d + 1) / 10));
  const decileOf = (v: number) => {
    let d = 0;
    while (d < 9 && v >= edges[d]!) d++;
    return d;
  };
  const groups = groupBy(known.length, (j) => decileOf(ds.vol[rows[known[j]!]!]!));
  const out: VolDecileScore[] = [];
  for (let d = 0; d < 10; d++) {
    const js = groups.get(d);
    if (js === undefined) continue;
    const idx = js.map((j) => known[j]!);
    const r = Int32Array.from(idx, (k) => rows[k]!);
    const p = subset(idx, all);
    const band = intervalMeans(r, ds.y, p.model, p.p10, p.p90).metrics;
    const base = intervalMeans(r, ds.y, p.persistence, p.base10, p.base90).metrics;
    const model = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.model);
    const pers = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.persistence);
    out.push({
      decile: d + 1,
      rv_from: d === 0 ? sorted[0]! : edges[d - 1]!,
      rv_to: d === 9 ? sorted[sorted.length - 1]! : edges[d]!,
      n: r.length,
      coverage: band.coverage,
      below: band.below,
      above: band.above,
      mean_width_bps: band.mean_width_bps,
      interval_score: band.interval_score,
      interval_score_baseline: base.interval_score,
      skill: 1 - model.mae_price / pers.mae_price,
    });
  }
  return out;
}
