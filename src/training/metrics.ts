import { erfc } from './erfc.ts';

/**
 * Forecast metrics and tests, written out so that anyone can check them against the formulas:
 *
 * - MAE / RMSE of the price, MAE of the return (basis points);
 * - directional accuracy: share of rows where the predicted and the actual return have the same sign, over the rows
 *   where neither is zero (ties excluded), with a Wilson 95% interval;
 * - skill = 1 − MAE(model) / MAE(reference);
 * - Diebold–Mariano: is the mean loss differential d_t = |e_model,t| − |e_ref,t| zero? Its variance is estimated
 *   with Newey–West (Bartlett weights), because h-step-ahead errors overlap and are autocorrelated up to h − 1 lags
 *   at least (and volatility clusters beyond); statistic DM = mean(d) / sqrt(HAC variance / n), two-sided p-value
 *   from the standard normal (n is in the thousands here).
 * - interval coverage: share of actual values inside [p10, p90] (nominal 80%).
 */

export const normalCdf = (x: number): number => 0.5 * erfc(-x / Math.SQRT2);

/**
 * Two-sided p-value of a standard normal statistic: P(|Z| ≥ |z|) = erfc(|z| / √2), exact in the far tail where
 * 2·(1 − Φ(|z|)) has lost every digit (it reads 0 beyond |z| ≈ 8.3).
 */
export const twoSidedP = (z: number): number => erfc(Math.abs(z) / Math.SQRT2);

/** Wilson score interval of a proportion (95% by default). */
export function wilson(successes: number, n: number, z = 1.959964): [number, number] | null {
  if (n === 0) return null;
  const p = successes / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [c - h, c + h];
}

/** The Newey–West lag used by default: at least h − 1, and the usual 4·(n/100)^(2/9) rule when that is larger. */
export function defaultHacLag(n: number, horizonSteps: number): number {
  return Math.max(horizonSteps - 1, Math.floor(4 * (n / 100) ** (2 / 9)));
}

export interface DmResult {
  /** Mean loss differential (negative: the first forecast has the smaller loss). */
  meanDiff: number;
  stat: number;
  /** Two-sided p-value. */
  pvalue: number;
  lag: number;
  n: number;
}

/** Diebold–Mariano test on a loss differential series in time order. Null when it is undefined (n < 2, zero variance). */
export function dieboldMariano(d: ArrayLike<number>, lag: number): DmResult | null {
  const n = d.length;
  if (n < 2) return null;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += d[i]!;
  mean /= n;
  const L = Math.min(lag, n - 1);
  let v = 0;
  for (let k = 0; k <= L; k++) {
    let g = 0;
    for (let i = k; i < n; i++) g += (d[i]! - mean) * (d[i - k]! - mean);
    g /= n;
    v += k === 0 ? g : 2 * (1 - k / (L + 1)) * g;
  }
  if (!(v > 0)) return null;
  const stat = mean / Math.sqrt(v / n);
  return { meanDiff: mean, stat, pvalue: twoSidedP(stat), lag: L, n };
}

export interface PointMetrics {
  n: number;
  mae_price: number;
  rmse_price: number;
  mae_return_bps: number;
  /** Null when every row is a tie (e.g. persistence, which never predicts a direction). */
  direction_accuracy: number | null;
  direction_n: number;
}

/** Metrics of predicted returns `pred` (bps) against rows `rows` of the actual (close, target close, return bps). */
export function pointMetrics(
  rows: ArrayLike<number>,
  close: ArrayLike<number>,
  targetClose: ArrayLike<number>,
  y: ArrayLike<number>,
  pred: ArrayLike<number>,
): PointMetrics {
  const n = rows.length;
  let ae = 0;
  let se = 0;
  let aer = 0;
  let hits = 0;
  let dn = 0;
  for (let k = 0; k < n; k++) {
    const i = rows[k]!;
    const p = pred[k]!;
    const e = close[i]! * Math.exp(p / 1e4) - targetClose[i]!;
    ae += Math.abs(e);
    se += e * e;
    aer += Math.abs(p - y[i]!);
    if (p !== 0 && y[i] !== 0) {
      dn++;
      if (p > 0 === y[i]! > 0) hits++;
    }
  }
  return {
    n,
    mae_price: ae / n,
    rmse_price: Math.sqrt(se / n),
    mae_return_bps: aer / n,
    direction_accuracy: dn === 0 ? null : hits / dn,
    direction_n: dn,
  };
}

/** Absolute price errors of predicted returns, in row order (the losses the DM test compares). */
export function absPriceErrors(
  rows: ArrayLike<number>,
  close: ArrayLike<number>,
  targetClose: ArrayLike<number>,
  pred: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k]!;
    out[k] = Math.abs(close[i]! * Math.exp(pred[k]! / 1e4) - targetClose[i]!);
  }
  return out;
}

/** Share of actual returns inside [lo, hi]. */
export function coverage(
  rows: ArrayLike<number>,
  y: ArrayLike<number>,
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
): number {
  let inside = 0;
  for (let k = 0; k < rows.length; k++) {
    const v = y[rows[k]!]!;
    if (v >= lo[k]! && v <= hi[k]!) inside++;
  }
  return rows.length === 0 ? Number.NaN : inside / rows.length;
}
