import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  crpsFromQuantiles,
  crpsNormal,
  intervalMetrics,
  intervalScore,
  normalQuantile,
  pinball,
  volatilityBand,
  Z90,
} from '../../../src/training/metrics.ts';

const near = (got: number, want: number, tol: number, what = '') =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

describe('pinball loss', () => {
  it('weighs misses by τ above the quantile and by 1 − τ below it (hand-computed)', () => {
    near(pinball(0.1, 5, -2), 0.7, 1e-12, 'τ 0.1, y above q: 0.1 × 7');
    near(pinball(0.1, -5, -2), 2.7, 1e-12, 'τ 0.1, y below q: 0.9 × 3');
    near(pinball(0.9, 5, 3), 1.8, 1e-12, 'τ 0.9, y above q: 0.9 × 2');
    near(pinball(0.9, 1, 3), 0.2, 1e-12, 'τ 0.9, y below q: 0.1 × 2');
    assert.equal(pinball(0.5, 4, 4), 0);
  });
});

describe('interval score (Gneiting & Raftery 2007)', () => {
  it('is the width inside, plus 2/α times the miss outside (hand-computed)', () => {
    near(intervalScore(0.2, 0, -2, 3), 5, 1e-12, 'inside');
    near(intervalScore(0.2, -5, -2, 3), 5 + 10 * 3, 1e-12, 'below');
    near(intervalScore(0.2, 7, -2, 3), 5 + 10 * 4, 1e-12, 'above');
    near(intervalScore(0.1, 7, -2, 3), 5 + 20 * 4, 1e-12, 'α 0.1');
  });
  it('equals (2/α) × the sum of the two pinball losses at α/2 and 1 − α/2', () => {
    for (const y of [-9, -2, 0.3, 3, 11])
      near(intervalScore(0.2, y, -2, 3), 10 * (pinball(0.1, y, -2) + pinball(0.9, y, 3)), 1e-12, `y ${y}`);
  });
});

describe('normalQuantile', () => {
  it('matches the table', () => {
    near(normalQuantile(0.9), 1.2815516, 1e-6, 'z 0.9');
    near(normalQuantile(0.975), 1.959964, 1e-6, 'z 0.975');
    near(normalQuantile(0.001), -3.090232, 1e-6, 'z 0.001');
    assert.equal(normalQuantile(0.5), 0);
    near(Z90, 1.2815516, 1e-6, 'Z90');
  });
});

describe('CRPS from quantiles', () => {
  it('of a point mass (p10 = median = p90 = c) is |y − c|', () => {
    near(crpsFromQuantiles(3, 1, 1, 1), 2, 1e-12, 'y 3, c 1');
    near(crpsFromQuantiles(-4, 1, 1, 1), 5, 1e-12, 'y −4, c 1');
  });
  it('of the symmetric split normal is the normal CRPS (closed form 2φ(0) − 1/√π = 0.233695 at the median)', () => {
    near(crpsNormal(0, 0, 1), 2 / Math.sqrt(2 * Math.PI) - 1 / Math.sqrt(Math.PI), 1e-7, 'closed form');
    near(crpsNormal(0, 0, 1), 0.233695, 1e-6, 'table');
    for (const [y, s] of [
      [0, 1],
      [0.5, 1],
      [2, 1],
      [-3, 2.5],
    ] as const)
      near(crpsFromQuantiles(y, -Z90 * s, 0, Z90 * s), crpsNormal(y, 0, s), 2e-4 * s, `y ${y}, σ ${s}`);
  });
  it('punishes a too-wide and a too-narrow band, and a missed centre', () => {
    const good = crpsFromQuantiles(0, -Z90, 0, Z90);
    assert.ok(crpsFromQuantiles(0, -5 * Z90, 0, 5 * Z90) > good);
    assert.ok(crpsFromQuantiles(3, -0.1, 0, 0.1) > crpsFromQuantiles(3, -Z90 * 2, 0, Z90 * 2));
    assert.ok(crpsFromQuantiles(0, 1, 2, 3) > good);
  });
});

describe('intervalMetrics', () => {
  it('scores a small set by hand', () => {
    // Rows 0..3 of y; forecasts indexed like rows. Interval [-2, 3] for all, point 0.
    const y = [0, -5, 7, 1];
    const rows = [0, 1, 2, 3];
    const lo = [-2, -2, -2, -2];
    const hi = [3, 3, 3, 3];
    const m = intervalMetrics(rows, y, [0, 0, 0, 0], lo, hi);
    assert.equal(m.n, 4);
    near(m.coverage, 0.5, 1e-12, 'coverage');
    near(m.below, 0.25, 1e-12, 'below');
    near(m.above, 0.25, 1e-12, 'above');
    near(m.mean_width_bps, 5, 1e-12, 'width');
    // pinball at 0.1 on lo = -2: y 0 → 0.2, y −5 → 2.7, y 7 → 0.9, y 1 → 0.3; mean 1.025
    near(m.pinball_p10, (0.2 + 2.7 + 0.9 + 0.3) / 4, 1e-12, 'pinball p10');
    // pinball at 0.9 on hi = 3: y 0 → 0.3, y −5 → 0.8, y 7 → 3.6, y 1 → 0.2; mean 1.225
    near(m.pinball_p90, (0.3 + 0.8 + 3.6 + 0.2) / 4, 1e-12, 'pinball p90');
    near(m.interval_score, (5 + 35 + 45 + 5) / 4, 1e-12, 'interval score');
    assert.ok(m.crps > 0);
  });
});

describe('volatilityBand', () => {
  it('is z₀.₉ · rv_60m · √(h/60) in bps', () => {
    // rv_60m 0.006 (0.6 % over the hour), 5 minutes: 1.28155 × 0.006 × √(1/12) × 10⁴ = 22.197 bps
    near(volatilityBand(0.006, 5), 1.2815516 * 0.006 * Math.sqrt(5 / 60) * 1e4, 1e-6, 'band');
    near(volatilityBand(0.006, 5), 22.197, 1e-3, 'band (hand)');
  });
});
