import { runInTurns, runToEnd, type Steps } from '../core/steps.ts';
import { type DayScore, perDaySteps, perPairVolDecileSteps, type VolDecileScore } from './breakdowns.ts';
import { type Dataset, DatasetError } from './dataset.ts';
import type { Fold } from './folds.ts';
import {
  coverage,
  defaultHacLag,
  dieboldMariano,
  type IntervalMetrics,
  pointMetrics,
  volatilityBand,
  wilson,
} from './metrics.ts';
import type { OutOfSample } from './python-trainer.ts';
import type { FoldMetrics } from './registry/registry.ts';
import {
  bandCrps,
  type Comparison,
  compare,
  intervalMeans,
  type Preds,
  perMinute,
  pickRows,
  subset,
} from './scoring.ts';

export type { Comparison, DayScore, VolDecileScore };

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
 * from the realised volatility of the last hour (`volatilityBand`). Both are also broken down by UTC day and, per
 * pair, by decile of that pair's volatility (breakdowns.ts); the shared primitives are in scoring.ts.
 */
export const BASELINES = ['persistence', 'drift', 'linear'] as const;
export type Baseline = (typeof BASELINES)[number];

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

export interface Evaluation extends Scorecard {
  folds: number;
  horizon_minutes: number;
  pairs: string[];
  per_pair: Record<string, Scorecard>;
  per_fold: FoldMetrics[];
  per_day: DayScore[];
  /** Per pair: that pair's rows in deciles of its own rv_60m at the close (calmest first). */
  per_pair_vol_decile: Record<string, VolDecileScore[]>;
}

/** A scorecard of `rows`, a yield between its parts (the pooled one runs over every row: `Steps`). */
function* scorecard(ds: Dataset, rows: Int32Array, p: Preds): Steps<Scorecard> {
  const m = (pred: Float64Array) => pointMetrics(rows, ds.close, ds.targetClose, ds.y, pred);
  const model = m(p.model);
  const persistence = m(p.persistence);
  yield;
  const drift = m(p.drift);
  const linear = m(p.linear);
  const champion = p.champion ? m(p.champion) : null;
  const base: Record<Baseline, { mae: number; pred: Float64Array }> = {
    persistence: { mae: persistence.mae_price, pred: p.persistence },
    drift: { mae: drift.mae_price, pred: p.drift },
    linear: { mae: linear.mae_price, pred: p.linear },
  };
  const best = BASELINES.reduce((a, b) => (base[b].mae < base[a].mae ? b : a));
  yield;
  const vsPersistence = compare(ds, rows, p.model, p.persistence, model.mae_price, persistence.mae_price);
  yield;
  const vsBest = compare(ds, rows, p.model, base[best].pred, model.mae_price, base[best].mae);
  yield;
  const band = intervalMeans(rows, ds.y, p.p10, p.p90, p.crps);
  const baseBand = intervalMeans(rows, ds.y, p.base10, p.base90, p.baseCrps);
  yield;
  const isDiff = band.perRow.map((v, k) => v - baseBand.perRow[k]!);
  // The lag from the length of the per-minute series the test runs on (as `compare` does), not from the rows of every
  // pair: with two pairs that was twice the series' length, and another lag than the point forecast's DM test.
  const isSeries = perMinute(ds, rows, isDiff);
  const isDm = dieboldMariano(isSeries, defaultHacLag(isSeries.length, ds.horizonMs / 60_000));
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
    vs_best_baseline: vsBest,
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

/** The forecasts scored on the out-of-sample rows: the model's, the baselines', the band, the interval baseline's. */
export function scoredPredictions(ds: Dataset, oos: OutOfSample): Preds {
  return runToEnd(scoredPredictionSteps(ds, oos));
}

function* scoredPredictionSteps(ds: Dataset, oos: OutOfSample): Steps<Preds> {
  const m = oos.row.length;
  const persistence = new Float64Array(m);
  const drift = new Float64Array(m);
  const base10 = new Float64Array(m);
  const base90 = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const i = oos.row[k]!;
    drift[k] = ds.drift[i]!;
    base10[k] = -volatilityBand(ds.vol[i]!, ds.horizonMs / 60_000);
    base90[k] = volatilityBand(ds.vol[i]!, ds.horizonMs / 60_000);
  }
  yield;
  return {
    model: oos.model,
    persistence,
    drift,
    linear: oos.linear,
    champion: oos.champion.every((v) => Number.isFinite(v)) ? oos.champion : null,
    p10: oos.p10,
    p90: oos.p90,
    base10,
    base90,
    crps: yield* bandCrps(oos.row, ds.y, oos.p10, oos.model, oos.p90),
    baseCrps: yield* bandCrps(oos.row, ds.y, base10, persistence, base90),
  };
}

/** Scores the out-of-sample predictions of a walk-forward run. */
export function evaluate(ds: Dataset, folds: readonly Fold[], oos: OutOfSample): Evaluation {
  return runToEnd(evaluationSteps(ds, folds, oos));
}

/**
 * `evaluate` with turns of the event loop every few tens of ms: a stop signal is heard at the next (it rejects with
 * the signal's reason). A 14-month backtest's evaluation (425 days, 1.2M rows) was one synchronous stretch of 44 s on
 * an idle machine (105 s under load) during which a Ctrl-C was not heard.
 */
export function evaluateInTurns(
  ds: Dataset,
  folds: readonly Fold[],
  oos: OutOfSample,
  signal?: AbortSignal,
): Promise<Evaluation> {
  return runInTurns(evaluationSteps(ds, folds, oos), signal);
}

function* evaluationSteps(ds: Dataset, folds: readonly Fold[], oos: OutOfSample): Steps<Evaluation> {
  const m = oos.row.length;
  if (m === 0) throw new DatasetError('no out-of-sample predictions to evaluate');
  const all = yield* scoredPredictionSteps(ds, oos);
  const pick = (idx: number[]) => ({
    rows: pickRows(oos.row, idx),
    preds: subset(idx, all),
  });
  // The predictions of each pair, fold, and fold and pair, in one pass, in row order: a scan of every row for each
  // of them took 44 s of a 14-month backtest (425 days as folds, 1.2M rows), with the event loop blocked throughout.
  const byPair = new Map<number, number[]>();
  const byFold = new Map<number, number[]>();
  const byFoldPair = new Map<string, number[]>();
  const push = <K>(map: Map<K, number[]>, key: K, k: number) => {
    const list = map.get(key);
    if (list) list.push(k);
    else map.set(key, [k]);
  };
  for (let k = 0; k < m; k++) {
    const pi = ds.pair[oos.row[k]!]!;
    push(byPair, pi, k);
    push(byFold, oos.fold[k]!, k);
    push(byFoldPair, `${oos.fold[k]} ${pi}`, k);
    if ((k + 1) % 50_000 === 0) yield;
  }
  const perPair: Record<string, Scorecard> = {};
  for (const [pi, pair] of ds.pairs.entries()) {
    const s = pick(byPair.get(pi) ?? []);
    if (s.rows.length > 0) perPair[pair] = yield* scorecard(ds, s.rows, s.preds);
  }
  const perFold: FoldMetrics[] = [];
  for (const f of folds) {
    const s = pick(byFold.get(f.fold) ?? []);
    const card = yield* scorecard(ds, s.rows, s.preds);
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
      const sp = pick(byFoldPair.get(`${f.fold} ${pi}`) ?? []);
      if (sp.rows.length === 0) continue;
      const c = yield* scorecard(ds, sp.rows, sp.preds);
      metrics[`model ${pair}`] = {
        mae_price: c.mae_model,
        skill: c.skill,
        direction_accuracy: c.direction_accuracy,
        coverage_p10_p90: c.coverage_p10_p90,
        interval_score: c.intervals.interval_score,
      };
      metrics[`persistence ${pair}`] = { mae_price: c.mae_persistence };
    }
    perFold.push({ ...f, n: s.rows.length, metrics });
  }
  const pooled = yield* scorecard(ds, oos.row, all);
  const perDay = yield* perDaySteps(ds, oos.row, all);
  const perPairVolDecile = yield* perPairVolDecileSteps(ds, oos.row, all);
  return {
    ...pooled,
    folds: folds.length,
    horizon_minutes: ds.horizonMs / 60_000,
    pairs: ds.pairs,
    per_pair: perPair,
    per_fold: perFold,
    per_day: perDay,
    per_pair_vol_decile: perPairVolDecile,
  };
}
