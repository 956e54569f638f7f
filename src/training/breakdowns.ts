import { runToEnd, type Steps } from '../core/steps.ts';
import type { Dataset } from './dataset.ts';
import { coverage, pointMetrics } from './metrics.ts';
import { compare, intervalMeans, type Preds, pickRows, subset } from './scoring.ts';

/**
 * The walk-forward's test rows broken down by UTC day and by decile of rv_60m (the regime as known when each forecast
 * was made): a band right on average can be too wide on calm days and too narrow in a shock, and a skill positive
 * overall can hide the days that lose.
 *
 * The deciles are per pair, each pair's rows split by that pair's own rv_60m edges: ETH is more volatile than BTC, so
 * deciles pooled over pairs fill with BTC at the calm end and ETH at the turbulent end (on the 14 months of Binance
 * ETH is 26 % of the pooled first decile and 68 % of the tenth, `./bench/run quality`), and "coverage per regime"
 * would partly measure "coverage per pair".
 */

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

/** Test rows of one pair grouped by decile of rv_60m at the close, edges from that pair's rows (folds pooled). */
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

export function perDay(ds: Dataset, rows: Int32Array, all: Preds): DayScore[] {
  return runToEnd(perDaySteps(ds, rows, all));
}

/** `perDay`, a yield after each day (`Steps`). */
export function* perDaySteps(ds: Dataset, rows: Int32Array, all: Preds): Steps<DayScore[]> {
  const out: DayScore[] = [];
  for (const [day, idx] of groupBy(rows.length, (k) => Math.floor(ds.windowEnd[rows[k]!]! / DAY_MS))) {
    yield;
    const r = pickRows(rows, idx);
    const p = subset(idx, all);
    const model = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.model);
    const pers = pointMetrics(r, ds.close, ds.targetClose, ds.y, p.persistence);
    const cmp = compare(ds, r, p.model, p.persistence, model.mae_price, pers.mae_price);
    const band = intervalMeans(r, ds.y, p.p10, p.p90, p.crps).metrics;
    const base = intervalMeans(r, ds.y, p.base10, p.base90, p.baseCrps).metrics;
    let rv = 0;
    for (const i of r) rv += ds.vol[i]!;
    const perPair: DayScore['per_pair'] = {};
    for (const [pi, pidx] of groupBy(idx.length, (j) => ds.pair[r[j]!]!)) {
      const pr = pickRows(r, pidx);
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

/**
 * Deciles of rv_60m over the given rows, edges from those rows' own values (rows without rv_60m are left out; fewer
 * than 10 with it give no deciles). Given the rows of one pair this is that pair's breakdown; given every pair's it is
 * the pooled breakdown, which mixes the pairs' volatility levels (kept for comparisons with figures measured that way).
 */
export function volDeciles(ds: Dataset, rows: Int32Array, all: Preds): VolDecileScore[] {
  return runToEnd(volDecileSteps(ds, rows, all));
}

/** `volDeciles`, a yield after the edges and after each decile (`Steps`). */
function* volDecileSteps(ds: Dataset, rows: Int32Array, all: Preds): Steps<VolDecileScore[]> {
  const known: number[] = [];
  for (let k = 0; k < rows.length; k++) if (Number.isFinite(ds.vol[rows[k]!]!)) known.push(k);
  if (known.length < 10) return [];
  const sorted = new Float64Array(known.length);
  for (let j = 0; j < known.length; j++) sorted[j] = ds.vol[rows[known[j]!]!]!;
  sorted.sort();
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
    yield;
    const js = groups.get(d);
    if (js === undefined) continue;
    const idx = js.map((j) => known[j]!);
    const r = pickRows(rows, idx);
    const p = subset(idx, all);
    const band = intervalMeans(r, ds.y, p.p10, p.p90, p.crps).metrics;
    const base = intervalMeans(r, ds.y, p.base10, p.base90, p.baseCrps).metrics;
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

/** Each pair's rows in deciles of its own rv_60m, keyed by pair name (pairs in the dataset's order). */
export function perPairVolDecile(
  ds: Dataset,
  rows: Int32Array,
  all: Preds,
): Record<string, VolDecileScore[]> {
  return runToEnd(perPairVolDecileSteps(ds, rows, all));
}

/** `perPairVolDecile`, yields within each pair's deciles (`Steps`). */
export function* perPairVolDecileSteps(
  ds: Dataset,
  rows: Int32Array,
  all: Preds,
): Steps<Record<string, VolDecileScore[]>> {
  const out: Record<string, VolDecileScore[]> = {};
  const byPair = groupBy(rows.length, (k) => ds.pair[rows[k]!]!);
  for (const [pi, pair] of ds.pairs.entries()) {
    const idx = byPair.get(pi);
    if (idx === undefined) continue;
    yield;
    out[pair] = yield* volDecileSteps(ds, pickRows(rows, idx), subset(idx, all));
  }
  return out;
}
