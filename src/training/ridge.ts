/**
 * Ridge regression on standardised features, the linear baseline — the same estimator as the Python trainer's
 * `ridge_fit_predict`: mean/std of the fitting rows (missing values ignored), missing values imputed with the mean
 * (a z-score of 0), penalty λ·n·10⁻⁴ on the standardised weights, intercept the mean target. Used where no Python
 * fit runs: the backtest of a registered model refits it on the candles it has already seen.
 */
export interface RidgeModel {
  mu: Float64Array;
  sd: Float64Array;
  w: Float64Array;
  intercept: number;
}

export function ridgeFit(
  X: Float32Array,
  k: number,
  y: ArrayLike<number>,
  rows: ArrayLike<number>,
  lambda = 1,
): RidgeModel {
  const n = rows.length;
  const mu = new Float64Array(k);
  const sd = new Float64Array(k);
  const cnt = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    const at = rows[r]! * k;
    for (let j = 0; j < k; j++) {
      const v = X[at + j]!;
      if (!Number.isNaN(v)) {
        mu[j]! += v;
        cnt[j]!++;
      }
    }
  }
  for (let j = 0; j < k; j++) mu[j] = cnt[j]! > 0 ? mu[j]! / cnt[j]! : 0;
  for (let r = 0; r < n; r++) {
    const at = rows[r]! * k;
    for (let j = 0; j < k; j++) {
      const v = X[at + j]!;
      if (!Number.isNaN(v)) sd[j]! += (v - mu[j]!) ** 2;
    }
  }
  for (let j = 0; j < k; j++) {
    const s = cnt[j]! > 0 ? Math.sqrt(sd[j]! / cnt[j]!) : 0;
    sd[j] = s > 0 ? s : 1;
  }
  let ym = 0;
  for (let r = 0; r < n; r++) ym += y[rows[r]!]!;
  ym /= n;
  // Normal equations (Z'Z + λ n 10⁻⁴ I) w = Z'(y − ȳ).
  const A = new Float64Array(k * k);
  const b = new Float64Array(k);
  const z = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    const i = rows[r]!;
    standardise(X, i * k, k, mu, sd, z);
    const t = y[i]! - ym;
    for (let a = 0; a < k; a++) {
      const za = z[a]!;
      if (za === 0) continue;
      b[a]! += za * t;
      for (let c = a; c < k; c++) A[a * k + c]! += za * z[c]!;
    }
  }
  for (let a = 0; a < k; a++) {
    for (let c = 0; c < a; c++) A[a * k + c] = A[c * k + a]!;
    A[a * k + a]! += lambda * n * 1e-4;
  }
  return { mu, sd, w: solve(A, b, k), intercept: ym };
}

export function ridgePredict(
  m: RidgeModel,
  X: Float32Array,
  k: number,
  rows: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(rows.length);
  const z = new Float64Array(k);
  for (let r = 0; r < rows.length; r++) {
    standardise(X, rows[r]! * k, k, m.mu, m.sd, z);
    let s = m.intercept;
    for (let j = 0; j < k; j++) s += z[j]! * m.w[j]!;
    out[r] = s;
  }
  return out;
}

function standardise(
  X: Float32Array,
  at: number,
  k: number,
  mu: Float64Array,
  sd: Float64Array,
  z: Float64Array,
): void {
  for (let j = 0; j < k; j++) {
    const v = X[at + j]!;
    z[j] = Number.isNaN(v) ? 0 : (v - mu[j]!) / sd[j]!;
  }
}

/** Solves the symmetric positive definite system A x = b (Cholesky). */
function solve(A: Float64Array, b: Float64Array, k: number): Float64Array {
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * k + j]!;
      for (let p = 0; p < j; p++) s -= L[i * k + p]! * L[j * k + p]!;
      L[i * k + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / L[j * k + j]!;
    }
  const x = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[i]!;
    for (let p = 0; p < i; p++) s -= L[i * k + p]! * x[p]!;
    x[i] = s / L[i * k + i]!;
  }
  for (let i = k - 1; i >= 0; i--) {
    let s = x[i]!;
    for (let p = i + 1; p < k; p++) s -= L[p * k + i]! * x[p]!;
    x[i] = s / L[i * k + i]!;
  }
  return x;
}
