import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NewsFeatures } from '../../../src/features/news.ts';
import type { NewsSignal } from '../../../src/schemas/news-signal.ts';

const T0 = Date.UTC(2022, 0, 1);
const H = 3_600_000;
const sig = (availableAt: number, score: number): NewsSignal => ({
  v: 1,
  newsId: String(availableAt),
  coin: 'BTC',
  score,
  label: 'neutral',
  confidence: 0.5,
  reason: '',
  model: 'test',
  promptVersion: 't',
  baseline: true,
  publishedAt: availableAt - 60_000,
  availableAt,
});

/** By definition: weights 2^(−age/h) over the signals available at t; counts over (t − window, t]. */
function reference(ss: NewsSignal[], t: number): (number | null)[] {
  const avail = ss.filter((s) => s.availableAt <= t);
  const ewm = (h: number) => {
    const w = avail.map((s) => 2 ** (-(t - s.availableAt) / h));
    const den = w.reduce((a, b) => a + b, 0);
    return den > 0 ? w.reduce((a, wi, i) => a + wi * avail[i]!.score, 0) / den : null;
  };
  return [
    ewm(H),
    ewm(6 * H),
    ewm(24 * H),
    avail.filter((s) => s.availableAt > t - H).length,
    avail.filter((s) => s.availableAt > t - 24 * H).length,
  ];
}

const signals = fc
  .array(
    fc.record({
      at: fc.integer({ min: 0, max: 72 * H }),
      score: fc.double({ min: -1, max: 1, noNaN: true }),
    }),
    { maxLength: 60 },
  )
  .map((xs) => xs.map((x) => sig(T0 + x.at, x.score)));
const times = fc
  .array(fc.integer({ min: 0, max: 80 * H }), { minLength: 1, maxLength: 40 })
  .map((ts) => [...ts].sort((a, b) => a - b).map((t) => T0 + t));

describe('news features (point in time)', () => {
  it('equal the definitions at any sequence of times (property)', () => {
    fc.assert(
      fc.property(signals, times, (ss, ts) => {
        const f = new NewsFeatures(ss);
        for (const t of ts) {
          const got = f.at(t);
          const want = reference(ss, t);
          got.forEach((g, k) => {
            const w = want[k]!;
            if (g === null || w === null) assert.equal(g, w);
            else assert.ok(Math.abs(g - w) < 1e-9, `t=${t} k=${k}: ${g} vs ${w}`);
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never use a signal before it is available: deleting or shuffling later signals changes nothing (leakage)', () => {
    fc.assert(
      fc.property(signals, times, fc.integer({ min: 0, max: 2 ** 31 }), (ss, ts, seed) => {
        const cut = ts[Math.floor(ts.length / 2)]!;
        const past = ss.filter((s) => s.availableAt <= cut);
        let x = seed;
        const future = ss
          .filter((s) => s.availableAt > cut)
          .map((s) => {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            return { ...s, score: (x / 0x7fffffff) * 2 - 1 };
          });
        const a = new NewsFeatures(ss);
        const b = new NewsFeatures([...future, ...past].reverse());
        const c = new NewsFeatures(past);
        const close = (x: (number | null)[], y: (number | null)[]) =>
          x.every((v, k) => (v === null || y[k] === null ? v === y[k] : Math.abs(v - y[k]!) < 1e-12));
        for (const t of ts.filter((t) => t <= cut)) {
          const va = a.at(t);
          assert.ok(close(b.at(t), va), 'shuffled and rewritten future');
          assert.ok(close(c.at(t), va), 'future deleted');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to go back in time', () => {
    const f = new NewsFeatures([]);
    f.at(T0 + H);
    assert.throws(() => f.at(T0), /backwards/);
    assert.deepEqual(new NewsFeatures([]).at(T0), [null, null, null, 0, 0]);
  });
});
