import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PriceGuard } from '../../../src/core/price-guard.ts';

describe('PriceGuard: absurd prices against the recent median', () => {
  it('refuses a price more than maxFactor away from the median, in either direction, with the reason', () => {
    const g = new PriceGuard({ maxFactor: 10 });
    for (const p of [100, 100, 100, 100]) assert.equal(g.judge('BTC', p), undefined);
    assert.match(g.judge('BTC', 1e308)!, /1\.00e\+306× above the recent median 100 of BTC \(limit 10×\)/);
    assert.match(g.judge('BTC', 5)!, /20\.\d× below/);
    assert.equal(g.judge('BTC', 900), undefined, '9× is within a 10× limit');
    assert.equal(g.refused, 2);
  });

  it('series are independent; a new series is accepted until it has history', () => {
    const g = new PriceGuard();
    for (const p of [100, 100, 100]) g.judge('BTC', p);
    assert.equal(g.judge('ETH', 3_000), undefined);
    assert.match(g.judge('BTC', 3_000)!, /30\.0×/);
  });

  it('one absurd first price cannot move the median: the next normal prices are accepted, later absurd ones refused', () => {
    const g = new PriceGuard();
    assert.equal(g.judge('BTC', 1e308), undefined, 'nothing to compare the very first price with');
    assert.equal(g.judge('BTC', 100), undefined);
    assert.equal(g.judge('BTC', 101), undefined);
    assert.equal(g.judge('BTC', 102), undefined);
    assert.ok(g.judge('BTC', 1e308) !== undefined);
  });

  it('follows a real move of more than the factor after half a window (the refused prices enter the window)', () => {
    const g = new PriceGuard({ maxFactor: 2, window: 9 });
    for (let i = 0; i < 9; i++) g.judge('X', 100);
    const verdicts = Array.from({ length: 9 }, () => g.judge('X', 300) === undefined);
    assert.deepEqual(verdicts.slice(0, 4), [false, false, false, false]);
    assert.ok(verdicts.slice(5).every(Boolean), 'accepted once the new level is the median');
  });

  it('non-finite or non-positive prices are always refused', () => {
    const g = new PriceGuard();
    for (const p of [Number.NaN, Number.POSITIVE_INFINITY, 0, -1])
      assert.match(g.judge('X', p)!, /positive finite/);
  });

  it('also checks the other prices of a record (a candle’s high and low) against the same median', () => {
    const g = new PriceGuard();
    for (let i = 0; i < 5; i++) g.judge('C', 100, [100, 101, 99]);
    assert.match(g.judge('C', 100, [100, 1e12, 99])!, /price 1000000000000/);
  });

  it('property: with prices inside a factor-2 band, nothing is refused at a factor-10 limit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 50, max: 100, noNaN: true }), { minLength: 1, maxLength: 300 }),
        (ps) => {
          const g = new PriceGuard();
          return ps.every((p) => g.judge('S', p) === undefined);
        },
      ),
    );
  });

  it('property: the verdicts are those of the exact median of the window at every price (a reference that sorts)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.constantFrom(100, 100, 50, 1_000, 1e6), fc.double({ min: 1, max: 1e4, noNaN: true })),
          {
            minLength: 1,
            maxLength: 200,
          },
        ),
        fc.integer({ min: 1, max: 12 }),
        (ps, window) => {
          const g = new PriceGuard({ maxFactor: 3, window, minHistory: 1 });
          const recent: number[] = [];
          return ps.every((p) => {
            const sorted = [...recent].sort((a, b) => a - b);
            const m = sorted.length >> 1;
            const median = sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
            const expected = recent.length === 0 || (p >= median ? p / median : median / p) <= 3;
            recent.push(p);
            if (recent.length > window) recent.shift();
            return (g.judge('S', p) === undefined) === expected;
          });
        },
      ),
      { numRuns: 500 },
    );
  });
  it('property: series interleaved in runs, with a record’s other prices: each judged against its own exact median, same reasons', () => {
    // The guard remembers the series it judged last (no lookup within a run of one pair): switching back and forth
    // must still judge each price against its own series' window, and the other prices against the same median.
    const reference = (window: number, maxFactor: number) => {
      const recent = new Map<string, number[]>();
      return (series: string, price: number, others: readonly number[]): string | undefined => {
        const w = recent.get(series) ?? [];
        recent.set(series, w);
        let why: string | undefined;
        if (w.length >= 1) {
          const sorted = [...w].sort((a, b) => a - b);
          const m = sorted.length >> 1;
          const median = sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
          for (const p of [price, ...others]) {
            const factor = p >= median ? p / median : median / p;
            if (!(factor <= maxFactor)) {
              why =
                `price ${p} is ${factor.toPrecision(3)}× ${p >= median ? 'above' : 'below'} the recent median ` +
                `${median} of ${series} (limit ${maxFactor}×)`;
              break;
            }
          }
        }
        w.push(price);
        if (w.length > window) w.shift();
        return why;
      };
    };
    const price = fc.oneof(
      fc.constantFrom(100, 100, 300, 33.3, 1e6),
      fc.double({ min: 1, max: 1e3, noNaN: true }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('A', 'B', 'C'), fc.integer({ min: 1, max: 6 }), price, price), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 9 }),
        (runs, window) => {
          const g = new PriceGuard({ maxFactor: 3, window, minHistory: 1 });
          const ref = reference(window, 3);
          let step = 0;
          for (const [series, length, p, other] of runs)
            for (let i = 0; i < length; i++, step++) {
              // A walk within a run, so that the window holds neighbours as well as repeats.
              const close = p * (1 + ((step % 5) - 2) / 100);
              const others = [close, other, close / 2];
              assert.equal(g.judge(series, close, others), ref(series, close, others));
            }
        },
      ),
      { numRuns: 300 },
    );
  });
});
