import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ridgeFit, ridgePredict } from '../../../src/training/ridge.ts';

const near = (got: number, want: number, tol: number, what = '') =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

describe('ridge (the linear baseline)', () => {
  it('one feature, y = 2x + 1: standardised slope shrunk by λn·10⁻⁴ (hand-computed)', () => {
    // x = 1, 2, 3: mean 2, sd √(2/3); z = ∓1.2247, 0; Z'Z = 3; Z'(y − ȳ) = 2·1.2247·2 = 4.899;
    // w = 4.899 / (3 + 3·10⁻⁴); prediction at x = 4 (z = 2.449): 5 + 2.449·w = 8.9996.
    const X = Float32Array.from([1, 2, 3, 4]);
    const y = [3, 5, 7, 0];
    const m = ridgeFit(X, 1, y, [0, 1, 2]);
    near(m.mu[0]!, 2, 1e-12, 'mean');
    near(m.sd[0]!, Math.sqrt(2 / 3), 1e-12, 'sd');
    near(m.intercept, 5, 1e-12, 'intercept');
    const zs = Math.sqrt(1.5);
    const w = (2 * zs * 2) / (3 + 3e-4);
    near(m.w[0]!, w, 1e-12, 'w');
    near(ridgePredict(m, X, 1, [3])[0]!, 5 + 2 * zs * w, 1e-9, 'prediction');
    near(ridgePredict(m, X, 1, [3])[0]!, 8.9996, 1e-3, 'prediction (hand)');
  });

  it('recovers two coefficients, imputes missing values with the mean, ignores an all-missing column', () => {
    const n = 500;
    const k = 3;
    const X = new Float32Array(n * k);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = Math.sin(i * 0.37);
      const b = Math.cos(i * 1.3);
      X[i * k] = a;
      X[i * k + 1] = i % 10 === 0 ? Number.NaN : b;
      X[i * k + 2] = Number.NaN;
      y[i] = 3 * a - 2 * b + 0.5;
    }
    const rows = Array.from({ length: n }, (_, i) => i);
    const m = ridgeFit(X, k, y, rows);
    assert.equal(m.w[2], 0);
    // A row with its second feature missing is predicted as if it were at the mean.
    const test = new Float32Array([0.5, Number.NaN, 7]);
    const at = ridgePredict(m, test, k, [0])[0]!;
    const atMean = ridgePredict(m, new Float32Array([0.5, m.mu[1]!, 7]), k, [0])[0]!;
    near(at, atMean, 1e-9, 'missing = mean');
    const full = new Float32Array([0.5, 0.25, 0]);
    near(ridgePredict(m, full, k, [0])[0]!, 3 * 0.5 - 2 * 0.25 + 0.5, 0.05, 'y = 3a − 2b + 0.5');
  });
});
