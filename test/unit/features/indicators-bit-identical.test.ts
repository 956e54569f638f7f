import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readOhlcv } from '../../../src/candles/ohlcv-files.ts';
import { type CandleInput, FEATURE_COLUMNS, TechnicalFeatures } from '../../../src/features/technical.ts';
import { bitstampCandles } from '../../support/bitstamp.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { TradingSignalsTechnicalFeatures } from '../../support/technical-trading-signals.ts';

/**
 * The ring-buffer indicators of src/features/technical.ts compute the very doubles that trading-signals' classes
 * compute (the implementation before issue 18, kept in test/support): every column of every vector compared with
 * Object.is, on real minutes with and without trade counts, across a gap, and through both entry points.
 */
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');

function same(candles: CandleInput[]): void {
  const ref = new TradingSignalsTechnicalFeatures();
  const live = new TechnicalFeatures();
  const bulk = new TechnicalFeatures();
  const n = FEATURE_COLUMNS.length;
  const cols = new Float64Array(n * candles.length);
  for (const [i, c] of candles.entries()) {
    const want = ref.update(c);
    const got = live.update(c);
    const ready = bulk.updateInto(c, cols, i, candles.length);
    assert.equal(got.ready, want.ready, `ready at ${i}`);
    assert.equal(ready, want.ready, `ready (bulk) at ${i}`);
    for (let k = 0; k < n; k++) {
      const w = want.values[k]!;
      assert.ok(Object.is(got.values[k], w), `${FEATURE_COLUMNS[k]} at ${i}: ${got.values[k]} ≠ ${w}`);
      const b = cols[k * candles.length + i]!;
      assert.ok(w === null ? Number.isNaN(b) : Object.is(b, w), `${FEATURE_COLUMNS[k]} (bulk) at ${i}`);
    }
  }
  assert.equal(live.resets, ref.resets);
}

describe('technical features: ring-buffer indicators = trading-signals, bit for bit', () => {
  it('a month of Binance BTCUSDT minutes (with trade counts and VWAP)', async () => {
    const candles: CandleInput[] = [];
    for await (const b of readOhlcv(join(BINANCE, 'BTCUSDT'))) {
      for (const c of b.candles) if (c.windowStart < Date.UTC(2022, 1, 1)) candles.push(c);
      if (candles.length > 0 && candles.at(-1)!.windowStart >= Date.UTC(2022, 0, 31, 23, 59)) break;
    }
    assert.equal(candles.length, 44_640);
    same(candles);
  });

  it('the Bitstamp minutes (no trade counts), with a gap cut into them', async () => {
    const candles = await bitstampCandles();
    same([...candles.slice(0, 5_000), ...candles.slice(5_100)]);
  });
});
