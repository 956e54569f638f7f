import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rolling } from '../../../src/features/rolling.ts';
import { type CandleInput, FEATURE_COLUMNS, TechnicalFeatures } from '../../../src/features/technical.ts';
import { bitstampCandles } from '../../support/bitstamp.ts';

/**
 * The rolling-sum columns (rv_15m, rv_60m, obv, vwap_dev_15m, volume_z_60m) are functions of their window alone, not
 * of everything a running sum once held: the same after a quiet hour as a fresh window of it, and the same for an
 * engine re-warmed from 1,000 candles (a restarted feature service) as for an uninterrupted one.
 */
const column = (name: (typeof FEATURE_COLUMNS)[number]) => FEATURE_COLUMNS.indexOf(name);

/** The idle minutes the aggregator emits after `last` (an exchange outage or a quiet market): price carried, no volume. */
function filledAfter(last: CandleInput, minutes: number): CandleInput[] {
  const out: CandleInput[] = [];
  for (let k = 1; k <= minutes; k++) {
    const start = last.windowStart + k * 60_000;
    const c = last.close;
    out.push({
      pair: last.pair,
      windowStart: start,
      windowEnd: start + 60_000,
      open: c,
      high: c,
      low: c,
      close: c,
      volume: 0,
      vwap: c,
      filled: true,
    });
  }
  return out;
}

describe('technical features: rolling sums', () => {
  it('after an hour of filled minutes the vector is ready, with rv and obv exactly 0 (real minutes before)', async () => {
    const candles = await bitstampCandles(5_000);
    const notReady: number[] = [];
    const nonZero: string[] = [];
    for (let cut = 200; cut < candles.length; cut += 500) {
      const engine = new TechnicalFeatures();
      for (const c of candles.slice(0, cut + 1)) engine.update(c);
      let last: ReturnType<TechnicalFeatures['update']> | undefined;
      for (const c of filledAfter(candles[cut]!, 61)) last = engine.update(c);
      if (!last!.ready) notReady.push(cut);
      for (const name of ['rv_15m', 'rv_60m', 'obv'] as const) {
        const x = last!.values[column(name)];
        if (x !== 0) nonZero.push(`${name}=${x} after minute ${cut}`);
      }
    }
    assert.deepEqual(notReady, [], 'vectors not ready after a quiet hour');
    assert.deepEqual(nonZero, []);
  });

  it('an engine re-warmed from the last 1,000 minutes gives the doubles of an uninterrupted one', async () => {
    const candles = await bitstampCandles(8_000);
    const uninterrupted = new TechnicalFeatures();
    const rewarmed = new TechnicalFeatures();
    const from = candles.length - 1_000;
    const differ = new Map<string, number>();
    for (const [i, c] of candles.entries()) {
      const want = uninterrupted.update(c);
      if (i < from) continue;
      const got = rewarmed.update(c);
      if (i < from + 900) continue; // every indicator converged (the feature service's warm-up is 1,000)
      assert.equal(got.ready, want.ready);
      want.values.forEach((w, k) => {
        if (!Object.is(got.values[k], w))
          differ.set(FEATURE_COLUMNS[k]!, (differ.get(FEATURE_COLUMNS[k]!) ?? 0) + 1);
      });
    }
    assert.deepEqual(Object.fromEntries(differ), {}, 'columns differing (rows of the last 100)');
  });
});

describe('Rolling.sumTogether', () => {
  it('gives each window the doubles it sums alone (oldest first, from 0), across wraps; windows not full are left to their own read', () => {
    // Values whose sums depend on the order they are added in: any other order gives other doubles.
    const value = (i: number) => (i % 7 === 0 ? 1e16 : i % 7 === 1 ? -1e16 : 0.1 * ((i * 7919) % 101) - 3.3);
    const together = [60, 60, 60, 60].map((n) => new Rolling(n));
    const alone = [60, 60, 60, 60].map((n) => new Rolling(n));
    const differ: string[] = [];
    for (let i = 0; i < 400; i++) {
      for (let w = 0; w < 4; w++) {
        together[w]!.push(value(i * (w + 1) + w));
        alone[w]!.push(value(i * (w + 1) + w));
      }
      Rolling.sumTogether(together[0]!, together[1]!, together[2]!, together[3]!);
      for (let w = 0; w < 4; w++) {
        if (!Object.is(together[w]!.sum, alone[w]!.sum)) differ.push(`sum ${w} at ${i}`);
        if (!Object.is(together[w]!.sumSq, alone[w]!.sumSq)) differ.push(`sumSq ${w} at ${i}`);
      }
    }
    assert.deepEqual(differ, []);
    // Three windows (the fourth is the third again), one of them not full yet: each still reads its own sums.
    const a = new Rolling(15);
    const b = new Rolling(15);
    const c = new Rolling(15);
    for (let i = 0; i < 20; i++) {
      a.push(value(i));
      b.push(value(i + 3));
      if (i < 10) c.push(value(i + 5));
    }
    Rolling.sumTogether(a, b, c);
    let sa = 0;
    for (let i = 5; i < 20; i++) sa += value(i);
    let sc = 0;
    for (let i = 0; i < 10; i++) sc += value(i + 5);
    assert.ok(Object.is(a.sum, sa));
    assert.ok(Object.is(c.sum, sc));
  });
});
