import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  absPriceErrors,
  coverage,
  defaultHacLag,
  dieboldMariano,
  normalCdf,
  pointMetrics,
  wilson,
} from '../../../src/training/metrics.ts';

const near = (got: number, want: number, tol: number, what = '') =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

/** Φ(x) by Simpson's rule on the normal density (an independent check of the erfc fit). */
function simpsonCdf(x: number): number {
  const steps = 2000;
  const hs = x / steps;
  const phi = (t: number) => Math.exp((-t * t) / 2) / Math.sqrt(2 * Math.PI);
  let s = phi(0) + phi(x);
  for (let i = 1; i < steps; i++) s += (i % 2 ? 4 : 2) * phi(i * hs);
  return 0.5 + (s * hs) / 3;
}

describe('normalCdf', () => {
  it('matches the table at known points', () => {
    near(normalCdf(0), 0.5, 1e-7, 'Φ(0)');
    near(normalCdf(1.959964), 0.975, 1e-6, 'Φ(1.959964)');
    near(normalCdf(-1.959964), 0.025, 1e-6, 'Φ(−1.959964)');
    near(normalCdf(-3), 0.0013499, 1e-6, 'Φ(−3)');
    near(normalCdf(1), 0.8413447, 1e-6, 'Φ(1)');
  });
  it('agrees with a numerical integral of the density and is symmetric', () => {
    for (const x of [-4, -2.5, -0.3, 0.7, 1.5, 3.2]) {
      near(normalCdf(x), simpsonCdf(x), 2e-7, `Φ(${x})`);
      near(normalCdf(x) + normalCdf(-x), 1, 1e-12, `symmetry at ${x}`);
    }
  });
});

describe('wilson', () => {
  it('50 of 100 → [0.4038, 0.5962]', () => {
    const [lo, hi] = wilson(50, 100)!;
    near(lo, 0.4038, 1e-4, 'lower');
    near(hi, 0.5962, 1e-4, 'upper');
  });
  it('0 of 10 → [0, z²/n / (1 + z²/n)] = [0, 0.2775]', () => {
    // With p = 0 the centre (z²/2n)/(1 + z²/n) equals the half-width, so the lower bound is exactly 0.
    const z2 = 1.959964 ** 2;
    const [lo, hi] = wilson(0, 10)!;
    near(lo, 0, 1e-12, 'lower');
    near(hi, z2 / 10 / (1 + z2 / 10), 1e-12, 'upper');
    near(hi, 0.2775, 1e-4, 'upper (table)');
  });
  it('is null without observations', () => {
    assert.equal(wilson(0, 0), null);
  });
});

describe('Diebold–Mariano with Newey–West variance', () => {
  it('on a 4-value series, by hand', () => {
    // d = [1, −1, 2, 0]: mean 0.5, deviations 0.5, −1.5, 1.5, −0.5.
    //   γ0 = (0.25 + 2.25 + 2.25 + 0.25) / 4 = 1.25
    //   γ1 = (−1.5·0.5 + 1.5·(−1.5) + (−0.5)·1.5) / 4 = −3.75 / 4 = −0.9375
    //   lag 1: Bartlett weight 1 − 1/2 = 0.5; HAC variance = γ0 + 2·0.5·γ1 = 0.3125
    //   DM = 0.5 / √(0.3125 / 4) = 0.5 / √0.078125 = 1.788854…
    const d = [1, -1, 2, 0];
    const r = dieboldMariano(d, 1)!;
    const stat = 0.5 / Math.sqrt(0.3125 / 4);
    near(stat, 1.788854, 1e-6, 'hand value');
    assert.equal(r.n, 4);
    assert.equal(r.lag, 1);
    near(r.meanDiff, 0.5, 1e-15, 'mean');
    near(r.stat, stat, 1e-12, 'stat');
    near(r.pvalue, 2 * (1 - simpsonCdf(stat)), 1e-6, 'p');
    // Lag 0: plain variance γ0 → 0.5 / √(1.25 / 4) = 0.894427…
    near(dieboldMariano(d, 0)!.stat, 0.5 / Math.sqrt(1.25 / 4), 1e-12, 'lag 0');
  });

  it('lag 2 on the same series, and the lag is capped at n − 1', () => {
    // γ2 = (1.5·0.5 + (−0.5)·(−1.5)) / 4 = 1.5 / 4 = 0.375; weights 1 − 1/3 and 1 − 2/3:
    // HAC = 1.25 + 2·(2/3)·(−0.9375) + 2·(1/3)·0.375 = 1.25 − 1.25 + 0.25 = 0.25 → DM = 0.5 / √(0.25/4) = 2
    const r = dieboldMariano([1, -1, 2, 0], 2)!;
    near(r.stat, 2, 1e-12, 'stat');
    // lag 9 on 4 values → 3: γ3 = (−0.5·0.5)/4 = −0.0625; weights 3/4, 2/4, 1/4:
    // HAC = 1.25 + 2(0.75·(−0.9375) + 0.5·0.375 + 0.25·(−0.0625)) = 1.25 + 2(−0.703125 + 0.1875 − 0.015625) = 0.1875
    const capped = dieboldMariano([1, -1, 2, 0], 9)!;
    assert.equal(capped.lag, 3);
    near(capped.stat, 0.5 / Math.sqrt(0.1875 / 4), 1e-12, 'capped');
  });

  it('a negative mean gives a negative statistic with the same p-value', () => {
    const a = dieboldMariano([1, -1, 2, 0], 1)!;
    const b = dieboldMariano([-1, 1, -2, 0], 1)!;
    near(b.stat, -a.stat, 1e-12);
    near(b.pvalue, a.pvalue, 1e-12);
  });

  it('is null for zero variance and for fewer than 2 values', () => {
    assert.equal(dieboldMariano([0.3, 0.3, 0.3, 0.3], 1), null);
    assert.equal(dieboldMariano([0, 0, 0], 0), null);
    assert.equal(dieboldMariano([1], 0), null);
    assert.equal(dieboldMariano([], 0), null);
  });

  it('default HAC lag: at least h − 1, else 4·(n/100)^(2/9)', () => {
    assert.equal(defaultHacLag(100, 5), 4); // max(4, 4)
    assert.equal(defaultHacLag(1000, 5), 6); // 4·10^(2/9) = 6.67
    assert.equal(defaultHacLag(1000, 15), 14);
    assert.equal(defaultHacLag(10, 1), 2); // 4·0.1^(2/9) = 2.39
  });
});

describe('pointMetrics', () => {
  // Three rows: close → target close; y = 10⁴·ln(target/close).
  const close = [100, 200, 50];
  const targetClose = [101, 198, 50];
  const y = close.map((c, i) => 1e4 * Math.log(targetClose[i]! / c));
  const rows = [0, 1, 2];
  const bpsFor = (prices: number[]) => prices.map((p, i) => 1e4 * Math.log(p / close[i]!));

  it('persistence: price errors −1, 2, 0 → MAE 1, RMSE √(5/3); no direction (all ties)', () => {
    const m = pointMetrics(rows, close, targetClose, y, [0, 0, 0]);
    assert.equal(m.n, 3);
    near(m.mae_price, 1, 1e-12, 'MAE');
    near(m.rmse_price, Math.sqrt(5 / 3), 1e-12, 'RMSE');
    near(m.mae_return_bps, (Math.abs(y[0]!) + Math.abs(y[1]!) + 0) / 3, 1e-12, 'MAE bps');
    assert.equal(m.direction_accuracy, null);
    assert.equal(m.direction_n, 0);
  });

  it('a forecast of prices 102, 201, 49: errors 1, 3, −1; one hit, one miss, one tie', () => {
    // MAE = 5/3, RMSE = √(11/3). Directions: row 0 up/up (hit), row 1 up/down (miss), row 2 actual 0 (tie,
    // excluded) → 1/2 on 2 rows.
    const pred = bpsFor([102, 201, 49]);
    const m = pointMetrics(rows, close, targetClose, y, pred);
    near(m.mae_price, 5 / 3, 1e-9, 'MAE');
    near(m.rmse_price, Math.sqrt(11 / 3), 1e-9, 'RMSE');
    near(
      m.mae_return_bps,
      (1e4 * (Math.log(102 / 101) + Math.log(201 / 198) + Math.log(50 / 49))) / 3,
      1e-9,
      'MAE bps',
    );
    assert.equal(m.direction_accuracy, 0.5);
    assert.equal(m.direction_n, 2);
  });

  it('uses the row indices given, with predictions in the order of those rows', () => {
    // Rows [2, 0] with predictions for 49 and 102: errors −1 and 1.
    const m = pointMetrics([2, 0], close, targetClose, y, [
      1e4 * Math.log(49 / 50),
      1e4 * Math.log(102 / 100),
    ]);
    assert.equal(m.n, 2);
    near(m.mae_price, 1, 1e-9, 'MAE');
    assert.equal(m.direction_accuracy, 1); // row 2 is a tie; row 0 up/up
    assert.equal(m.direction_n, 1);
    assert.deepEqual(Array.from(absPriceErrors([2, 0], close, targetClose, [0, 0])), [0, 1]);
  });
});

describe('coverage', () => {
  it('counts actual returns inside [lo, hi], bounds included', () => {
    const y = [1, 5, -3, 0];
    // rows 0..3: 1 ∈ [0, 2] yes; 5 ∈ [5, 6] yes (bound); −3 ∈ [−2, 2] no; 0 ∈ [1, 2] no → 2/4
    assert.equal(coverage([0, 1, 2, 3], y, [0, 5, -2, 1], [2, 6, 2, 2]), 0.5);
    // Subset rows [2, 1] with their own intervals: −3 ∈ [−3, −3] yes, 5 ∈ [0, 4.9] no.
    assert.equal(coverage([2, 1], y, [-3, 0], [-3, 4.9]), 0.5);
    assert.ok(Number.isNaN(coverage([], y, [], [])));
  });
});
