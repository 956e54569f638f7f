import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
