import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { erfc } from '../../../src/training/erfc.ts';
import { dieboldMariano, normalCdf, twoSidedP } from '../../../src/training/metrics.ts';

/** Reference values from mpmath at 30 digits (mpmath.erfc). */
const ERFC: [number, number][] = [
  [-3, 1.9999779095030015],
  [-0.5, 1.5204998778130465],
  [0, 1],
  [0.3, 0.6713732405408726],
  [0.46875, 0.507386526782062],
  [0.5, 0.4795001221869535],
  [1, 0.15729920705028513],
  [2, 0.004677734981047266],
  [3.9, 3.4792248597231745e-8],
  [4, 1.541725790028002e-8],
  [4.1, 6.7000276540848984e-9],
  [6, 2.1519736712498913e-17],
  [10, 2.088487583762545e-45],
  [15, 7.212994172451207e-100],
  [26, 5.663192408856143e-296],
];

const close = (actual: number, expected: number, rel: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} vs ${expected}`);

describe('erfc (Cody)', () => {
  it('is exact to about 1e-14 relative on each of its three ranges and far in the tail', () => {
    for (const [x, want] of ERFC) close(erfc(x), want, 1e-14, `erfc(${x})`);
    assert.equal(erfc(27), 0, 'below the smallest double');
    assert.equal(erfc(-40), 2);
    assert.ok(Number.isNaN(erfc(Number.NaN)));
  });

  it('is monotone and continuous across the range boundaries', () => {
    for (const b of [0.46875, 4]) {
      const [lo, hi] = [erfc(b - 1e-12), erfc(b + 1e-12)];
      assert.ok(lo > hi && (lo - hi) / lo < 1e-10, `at ${b}: ${lo} ${hi}`);
    }
  });
});

describe('two-sided p-value of a normal statistic', () => {
  // z/√2 is rounded to a double first, and erfc magnifies that by 2x²: about 4e-14 relative at |z| = 20.
  it('keeps its digits where 2·(1 − Φ(|z|)) reads 0 (|z| = 8.3, 10, 20)', () => {
    for (const [z, want] of [
      [8.3, 1.0411139489780571e-16],
      [10, 1.523970604832105e-23],
      [20, 5.5072482372124675e-89],
    ] as const) {
      close(twoSidedP(z), want, 1e-13, `p(${z})`);
      close(twoSidedP(-z), want, 1e-13, `p(${-z})`);
      assert.equal(2 * (1 - normalCdf(z)), 0, `the old formula at ${z}`);
    }
    close(twoSidedP(1.959963984540054), 0.05, 1e-14, 'p(1.96)');
    assert.equal(twoSidedP(0), 1);
  });

  it('is what the Diebold–Mariano test reports', () => {
    // A loss differential far from zero relative to its spread: a huge statistic, a tiny but non-zero p-value.
    const d = Array.from({ length: 400 }, (_, i) => -0.3 + 0.7 * Math.sin(i));
    const r = dieboldMariano(d, 4)!;
    assert.ok(Math.abs(r.stat) > 20, `stat = ${r.stat}`);
    assert.ok(r.pvalue > 0 && r.pvalue < 1e-90, `p = ${r.pvalue}`);
    assert.equal(r.pvalue, twoSidedP(r.stat));
  });
});
