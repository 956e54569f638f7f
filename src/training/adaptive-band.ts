import { type AciOptions, applyOnline, DEFAULT_ACI } from '../inference/adaptive-conformal.ts';
import type { Dataset } from './dataset.ts';
import type { OutOfSample } from './python-trainer.ts';

/**
 * The out-of-sample band as the live predictor would publish it with online adaptive conformal inference
 * (src/inference/adaptive-conformal.ts): the predictions in time order, one ACI state per pair, each outcome learnt
 * `horizon` after its forecast. Only p10 and p90 change.
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
  return { ...oos, p10, p90 };
}
