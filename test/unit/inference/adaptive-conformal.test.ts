import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveConformal, applyOnline } from '../../../src/inference/adaptive-conformal.ts';

const near = (got: number, want: number, tol: number, what = '') =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

/** A seeded uniform generator (mulberry32) and standard normals from it (Box–Muller). */
function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

describe('AdaptiveConformal: the update and the adjustment by hand', () => {
  it('publishes the model’s band until an outcome has matured', () => {
    const a = new AdaptiveConformal();
    assert.deepEqual(a.adjust('BTC/USDT', -3, 4), { p10: -3, p90: 4, lo: -3, hi: 4 });
    assert.equal(a.state('BTC/USDT'), undefined);
  });

  it('moves α_t by γ(α − err) per side and shifts each side by its score quantile × the half width', () => {
    // α 0.4 (a 20–80 band): three scores are enough for its quantile (⌈1/α⌉ − 1 = 2).
    const a = new AdaptiveConformal({ alpha: 0.4, gamma: 0.05, window: 10 });
    const band = { p10: -1, p90: 1, lo: -1, hi: 1 };
    // Outcome 2: above the band. Lower side: hit, α 0.4 + 0.05·0.4 = 0.42, score (−1 − 2)/1 = −3.
    // Upper side: miss, α 0.4 + 0.05·(0.4 − 1) = 0.37, score (2 − 1)/1 = 1.
    a.update('K', band, 2);
    near(a.state('K')!.alphaLower, 0.42, 1e-12, 'α lower');
    near(a.state('K')!.alphaUpper, 0.37, 1e-12, 'α upper');
    // Outcome 0: inside. Lower: α 0.44, score −1. Upper: α 0.39, score −1.
    a.update('K', band, 0);
    // Outcome −0.5: inside. Lower: α 0.46, score −0.5. Upper: α 0.41, score −1.5.
    a.update('K', band, -0.5);
    const s = a.state('K')!;
    near(s.alphaLower, 0.46, 1e-12, 'α lower after 3');
    near(s.alphaUpper, 0.41, 1e-12, 'α upper after 3');
    assert.equal(s.updates, 3);
    // Lower scores sorted [−3, −1, −0.5]; level 1 − 0.46 = 0.54: the ⌈0.54·4⌉ = 3rd = −0.5.
    // Upper scores sorted [−1.5, −1, 1]; level 0.59: ⌈2.36⌉ = the 3rd = 1.
    // New raw band [−2, 2], half width 2: lo = −2 − (−0.5)·2 = −1, hi = 2 + 1·2 = 4.
    const out = a.adjust('K', -2, 2);
    near(out.lo, -1, 1e-12, 'lo');
    near(out.hi, 4, 1e-12, 'hi');
    // Keys are independent.
    assert.deepEqual(a.adjust('other', -2, 2), { p10: -2, p90: 2, lo: -2, hi: 2 });
    // For a p10–p90 band (α 0.1) the 0.9 quantile of three scores does not exist (⌈0.9·4⌉ = 4 > 3): the model's band,
    // until ⌈1/α⌉ − 1 = 9 outcomes have matured.
    const b = new AdaptiveConformal({ alpha: 0.1, gamma: 0.05, window: 10 });
    for (let k = 0; k < 8; k++) b.update('K', band, 0);
    assert.deepEqual(b.adjust('K', -2, 2), { p10: -2, p90: 2, lo: -2, hi: 2 });
    b.update('K', band, 0);
    assert.deepEqual(
      b.adjust('K', -2, 2),
      { p10: -2, p90: 2, lo: 0, hi: 0 },
      'every outcome in the middle: no band',
    );
  });

  it('keeps the last `window` scores only, and its quantile is the split-conformal one over them', () => {
    const a = new AdaptiveConformal({ alpha: 0.1, gamma: 1e-9, window: 50 });
    const g = rng(7);
    const ups: number[] = [];
    for (let i = 0; i < 500; i++) {
      const y = 3 * g();
      a.update('K', { p10: -1, p90: 1, lo: -1, hi: 1 }, y);
      ups.push(y - 1);
    }
    const snap = a.snapshot().keys.K!;
    assert.deepEqual(snap.upper.scores, ups.slice(-50));
    // α_t barely moved (γ ≈ 0): level ≈ 0.9, ⌈0.9 · 51⌉ = 46th smallest of the last 50 upper scores.
    const sorted = ups.slice(-50).sort((x, y) => x - y);
    near(a.adjust('K', -1, 1).hi, 1 + sorted[45]!, 1e-6, 'hi');
  });

  it('survives a snapshot and restore exactly', () => {
    const a = new AdaptiveConformal({ window: 20 });
    const g = rng(3);
    for (let i = 0; i < 57; i++) a.update(i % 2 ? 'A' : 'B', { p10: -1, p90: 2, lo: -1.2, hi: 2.1 }, 2 * g());
    const b = AdaptiveConformal.restore(JSON.parse(JSON.stringify(a.snapshot())));
    for (const key of ['A', 'B']) assert.deepEqual(b.adjust(key, -4, 3), a.adjust(key, -4, 3));
    a.update('A', { p10: 0, p90: 1, lo: 0, hi: 1 }, 5);
    b.update('A', { p10: 0, p90: 1, lo: 0, hi: 1 }, 5);
    assert.deepEqual(b.adjust('A', -4, 3), a.adjust('A', -4, 3));
  });

  it('refuses nonsense options', () => {
    assert.throws(() => new AdaptiveConformal({ alpha: 0.6 }), /alpha/);
    assert.throws(() => new AdaptiveConformal({ gamma: 0 }), /gamma/);
    assert.throws(() => new AdaptiveConformal({ window: 0 }), /window/);
  });
});

describe('applyOnline: as the live predictor applies it', () => {
  const MIN = 60_000;
  /** A stream of one key, one forecast a minute; the model's band is right for σ = 1 but σ changes. */
  function stream(sigma: (i: number) => number, n: number, seed = 1) {
    const g = rng(seed);
    const actual = Float64Array.from({ length: n }, (_, i) => sigma(i) * g());
    return {
      key: new Float64Array(n),
      windowEnd: Float64Array.from({ length: n }, (_, i) => i * MIN),
      horizonMs: 5 * MIN,
      p10: new Float64Array(n).fill(-1.2815516),
      p90: new Float64Array(n).fill(1.2815516),
      actual,
    };
  }
  const coverage = (
    s: ReturnType<typeof stream>,
    lo: ArrayLike<number>,
    hi: ArrayLike<number>,
    from: number,
  ) => {
    let inside = 0;
    for (let i = from; i < s.actual.length; i++)
      if (s.actual[i]! >= lo[i]! && s.actual[i]! <= hi[i]!) inside++;
    return inside / (s.actual.length - from);
  };

  it('never learns from an outcome before its target time (a 5-minute delay)', () => {
    const a = stream(() => 1, 300);
    const b = stream(() => 1, 300);
    b.actual[100] = 50; // a huge miss at minute 100, known at minute 105
    const ra = applyOnline(a, { gamma: 0.05 });
    const rb = applyOnline(b, { gamma: 0.05 });
    for (let i = 0; i < 105; i++) assert.equal(rb.hi[i], ra.hi[i], `minute ${i}: before the outcome matured`);
    assert.notEqual(rb.hi[105], ra.hi[105], 'minute 105: the outcome of minute 100 has matured');
  });

  it('brings coverage back to 80 % after a volatility shock that the model’s band ignores', () => {
    // σ = 1 for 3,000 minutes, then 3 (the raw band covers ~33 %), then 0.4 (the raw band covers ~100 %).
    const s = stream((i) => (i < 3000 ? 1 : i < 9000 ? 3 : 0.4), 15_000);
    const { lo, hi } = applyOnline(s, { gamma: 0.005, window: 1440 });
    const rawShock = coverage({ ...s, actual: s.actual.slice(4000, 9000) }, s.p10, s.p90, 0);
    assert.ok(rawShock < 0.4, `raw band in the shock: ${rawShock}`);
    const shock = coverage({ ...s, actual: s.actual.slice(0, 9000) }, lo, hi, 4500);
    const calm = coverage(s, lo, hi, 10_500);
    near(shock, 0.8, 0.03, 'ACI in the shock');
    near(calm, 0.8, 0.03, 'ACI after it calms down');
  });

  it('refuses a stream out of time order', () => {
    const s = stream(() => 1, 10);
    s.windowEnd[5] = 0;
    assert.throws(() => applyOnline(s), /time order/);
  });
});
