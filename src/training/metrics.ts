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

/**
 * Probabilistic scores of the p10–p90 forecasts, all on the log return in basis points (scale-free across pairs),
 * all negatively oriented (lower is better), all proper for what they score:
 *
 * - pinball (quantile) loss of a quantile forecast q at level τ: ρ_τ(y − q) = (τ − 1{y < q}) · (y − q);
 * - interval score of the central (1 − α) interval [l, u] (Gneiting & Raftery 2007, eq. 43):
 *   (u − l) + (2/α)(l − y)·1{y < l} + (2/α)(y − u)·1{y > u} — the width, plus a penalty for each miss that grows
 *   with the miss; for α = 0.2 it is 10 × the mean of the two pinball losses at 0.1 and 0.9;
 * - CRPS approximated from the quantiles: the predictive distribution is taken to be the **split normal** through
 *   the three forecast quantiles (p10, the point forecast as the median, p90: a normal of σ_lo = (m − p10)/z₀.₉ below
 *   the median and σ_hi = (p90 − m)/z₀.₉ above it), and CRPS = 2∫₀¹ ρ_τ(y − Q(τ)) dτ is integrated with the midpoint
 *   rule on `CRPS_GRID` levels. A three-quantile forecast does not define a whole distribution: the split normal is
 *   the simplest one through its three points, and the same rule is applied to every forecast compared.
 */
export const Z90 = 1.2815515655446004;
export const CRPS_GRID = 200;

export const pinball = (tau: number, y: number, q: number): number => (tau - (y < q ? 1 : 0)) * (y - q);

export function intervalScore(alpha: number, y: number, lo: number, hi: number): number {
  let s = hi - lo;
  if (y < lo) s += (2 / alpha) * (lo - y);
  else if (y > hi) s += (2 / alpha) * (y - hi);
  return s;
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : Number.NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lowP = 0.02425;
  let x: number;
  if (p < lowP) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - lowP) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  return x;
}

/** The standard normal scores of the CRPS grid's levels τ_k = (k + ½)/K, computed once. */
const GRID_TAU = Float64Array.from({ length: CRPS_GRID }, (_, k) => (k + 0.5) / CRPS_GRID);
const GRID_Z = Float64Array.from(GRID_TAU, (t) => normalQuantile(t));

/**
 * CRPS of the split normal through (p10, median, p90) at the outcome y (see above). The median is clamped into
 * [p10, p90]; a zero-width side is a point mass there.
 */
export function crpsFromQuantiles(y: number, p10: number, median: number, p90: number): number {
  const m = Math.min(Math.max(median, p10), p90);
  const sLo = (m - p10) / Z90;
  const sHi = (p90 - m) / Z90;
  let s = 0;
  for (let k = 0; k < CRPS_GRID; k++) {
    const z = GRID_Z[k]!;
    s += pinball(GRID_TAU[k]!, y, m + z * (z < 0 ? sLo : sHi));
  }
  return (2 * s) / CRPS_GRID;
}

/** Closed-form CRPS of a normal N(μ, σ²) at y (Gneiting & Raftery 2007), to check the approximation against. */
export function crpsNormal(y: number, mu: number, sigma: number): number {
  const z = (y - mu) / sigma;
  const pdf = Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
  return sigma * (z * (2 * normalCdf(z) - 1) + 2 * pdf - 1 / Math.sqrt(Math.PI));
}

export interface IntervalMetrics {
  n: number;
  /** Share of actual returns inside [p10, p90] (nominal 0.8), and below p10 / above p90 (nominal 0.1 each). */
  coverage: number;
  below: number;
  above: number;
  /** Mean p90 − p10, bps. */
  mean_width_bps: number;
  pinball_p10: number;
  pinball_p90: number;
  /** Mean interval score of the central 80 % interval (α = 0.2), bps. */
  interval_score: number;
  /** Mean CRPS (split normal through p10, the point forecast and p90), bps. */
  crps: number;
}

/**
 * Interval metrics of forecasts (point, lo, hi in bps, indexed like `rows`) against the actual returns `y[rows[k]]`.
 */
export function intervalMetrics(
  rows: ArrayLike<number>,
  y: ArrayLike<number>,
  point: ArrayLike<number>,
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
): IntervalMetrics {
  const n = rows.length;
  let inside = 0;
  let below = 0;
  let above = 0;
  let width = 0;
  let pb10 = 0;
  let pb90 = 0;
  let is = 0;
  let crps = 0;
  for (let k = 0; k < n; k++) {
    const v = y[rows[k]!]!;
    const l = lo[k]!;
    const h = hi[k]!;
    if (v < l) below++;
    else if (v > h) above++;
    else inside++;
    width += h - l;
    pb10 += pinball(0.1, v, l);
    pb90 += pinball(0.9, v, h);
    is += intervalScore(0.2, v, l, h);
    crps += crpsFromQuantiles(v, l, point[k]!, h);
  }
  const d = n === 0 ? Number.NaN : n;
  return {
    n,
    coverage: inside / d,
    below: below / d,
    above: above / d,
    mean_width_bps: width / d,
    pinball_p10: pb10 / d,
    pinball_p90: pb90 / d,
    interval_score: is / d,
    crps: crps / d,
  };
}

/**
 * The interval baseline: persistence (return 0) with a normal interval from the empirical volatility known at the
 * close — the realised volatility of the last 60 one-minute returns (`rv_60m`, √Σr²) scaled to the horizon:
 * p10/p90 = ∓ z₀.₉ · rv_60m · √(h / 60 min) · 10⁴ bps.
 */
export const volatilityBand = (rv60: number, horizonMinutes: number): number =>
  Z90 * rv60 * Math.sqrt(horizonMinutes / 60) * 1e4;
