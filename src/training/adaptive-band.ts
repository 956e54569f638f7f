import { type AciOptions, applyOnline, DEFAULT_ACI } from '../inference/adaptive-conformal.ts';
import { applyShrinkage, DEFAULT_SHRINKAGE, type ShrinkageOptions } from '../inference/shrinkage.ts';
import type { Dataset } from './dataset.ts';
import type { OutOfSample } from './python-trainer.ts';

/**
 * The out-of-sample band as the live predictor would publish it with online adaptive conformal inference
 * (src/inference/adaptive-conformal.ts): the predictions in time order, one ACI state per pair, each outcome learnt
 * `horizon` after its forecast. p10 and p90 change, and a point forecast the new band leaves outside moves to its edge.
 */
export function adaptBand(ds: Dataset, oos: OutOfSample, options: Partial<AciOptions> = {}): OutOfSample {
  const m = oos.row.length;
  const order = Array.from({ length: m }, (_, k) => k);
  // Walk-forward folds and backtest days are already in time order; sort anyway (stable) to not depend on it.
  order.sort((a, b) => ds.windowEnd[oos.row[a]!]! - ds.windowEnd[oos.row[b]!]!);
  const pick = (f: (i: number, k: number) => number) => Float64Array.from(order, (k) => f(oos.row[k]!, k));
  const { lo, hi } = applyOnline(
    {
      key: pick((i) => ds.pair[i]!),
      windowEnd: pick((i) => ds.windowEnd[i]!),
      horizonMs: ds.horizonMs,
      p10: pick((_, k) => oos.p10[k]!),
      p90: pick((_, k) => oos.p90[k]!),
      actual: pick((i) => ds.y[i]!),
    },
    { ...DEFAULT_ACI, ...options },
  );
  const p10 = new Float64Array(m);
  const p90 = new Float64Array(m);
  for (const [j, k] of order.entries()) {
    p10[k] = lo[j]!;
    p90[k] = hi[j]!;
  }
  return { ...oos, model: pointInBandBps(oos.model, p10, p90), p10, p90 };
}

/**
 * The point forecasts (bps) kept inside their bands, as the predictor publishes them (`pointInBand` in
 * src/inference/online-adjustments.ts): a point outside is moved to the nearer edge.
 */
export function pointInBandBps(model: Float64Array, p10: Float64Array, p90: Float64Array): Float64Array {
  return model.map((x, k) => Math.min(Math.max(x, p10[k]!), p90[k]!));
}

/**
 * The out-of-sample point forecasts after the shrinkage gate (src/inference/shrinkage.ts), as published live: kept
 * inside their band.
 */
export function shrinkPoint(
  ds: Dataset,
  oos: OutOfSample,
  options: Partial<ShrinkageOptions> = {},
): { oos: OutOfSample; meanLambda: number } {
  const m = oos.row.length;
  const order = Array.from({ length: m }, (_, k) => k);
  order.sort((a, b) => ds.windowEnd[oos.row[a]!]! - ds.windowEnd[oos.row[b]!]!);
  const pick = (f: (i: number, k: number) => number) => Float64Array.from(order, (k) => f(oos.row[k]!, k));
  const r = applyShrinkage(
    {
      key: pick((i) => ds.pair[i]!),
      windowEnd: pick((i) => ds.windowEnd[i]!),
      horizonMs: ds.horizonMs,
      predicted: pick((_, k) => oos.model[k]!),
      actual: pick((i) => ds.y[i]!),
    },
    { ...DEFAULT_SHRINKAGE, ...options },
  );
  const model = new Float64Array(m);
  let sum = 0;
  for (const [j, k] of order.entries()) {
    model[k] = r.published[j]!;
    sum += r.lambda[j]!;
  }
  return {
    oos: { ...oos, model: pointInBandBps(model, oos.p10, oos.p90) },
    meanLambda: m === 0 ? 1 : sum / m,
  };
}
