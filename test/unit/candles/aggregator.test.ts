import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AggregatorOutput,
  CandleAggregator,
  type CandleAggregatorOptions,
} from '../../../src/candles/aggregator.ts';
import { ERR } from '../../../src/core/errors.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { CandleSchema } from '../../../src/schemas/candle.ts';
import type { Trade } from '../../../src/schemas/trade.ts';
import { coded } from '../../support/errors.ts';
import { MIN, ohlc, T0, trade, watermark } from '../../support/factories.ts';

function harness(options: CandleAggregatorOptions = {}) {
  const candles: Candle[] = [];
  const late: { t: Trade; reason: string }[] = [];
  const out: AggregatorOutput = {
    candle: (c) => candles.push(c),
    late: (t, reason) => late.push({ t, reason }),
  };
  const agg = new CandleAggregator(out, { graceMs: 5_000, ...options });
  return { agg, candles, late, view: () => candles.map(ohlc) };
}

describe('CandleAggregator: windows', () => {
  it('builds OHLCV, trade count and VWAP for one window, emitted when stream time passes end + grace', () => {
    const { agg, candles, view } = harness();
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100, qty: 1 }));
    agg.onTrade(trade({ ts: T0 + 2_000, price: 110, qty: 3 }));
    agg.onTrade(trade({ ts: T0 + 3_000, price: 90, qty: 1 }));
    agg.onTrade(trade({ ts: T0 + 59_999, price: 95, qty: 5 }));
    agg.onTrade(trade({ ts: T0 + MIN + 4_999, price: 96, qty: 1 })); // next window, grace not yet over
    assert.equal(candles.length, 0, 'window must wait for its grace period');
    agg.onTrade(trade({ ts: T0 + MIN + 5_000, price: 97, qty: 1 }));
    assert.deepEqual(view(), ['BTC/USD 00:00 100/110/90/95 v=10 n=4']);
    const c = candles[0]!;
    assert.equal(c.windowStart, T0);
    assert.equal(c.windowEnd, T0 + MIN);
    assert.equal(c.vwap, (100 + 330 + 90 + 475) / 10);
    assert.equal(c.filled, false);
    assert.ok(CandleSchema.safeParse(c).success);
  });

  it('puts a trade exactly at a minute boundary into the later window (half-open intervals)', () => {
    const { agg, view } = harness({ graceMs: 0 });
    agg.onTrade(trade({ ts: T0 + MIN - 1, price: 1 }));
    agg.onTrade(trade({ ts: T0 + MIN, price: 2 }));
    agg.flush();
    assert.deepEqual(view(), ['BTC/USD 00:00 1/1/1/1 v=1 n=1', 'BTC/USD 00:01 2/2/2/2 v=1 n=1']);
  });

  it('accepts out-of-order trades within the grace period, with open/close by trade time', () => {
    const { agg, view, late } = harness();
    agg.onTrade(trade({ ts: T0 + 10_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + MIN + 1_000, price: 200 })); // next minute opens
    agg.onTrade(trade({ ts: T0 + 5_000, price: 50 })); // earlier than the first: becomes the open
    agg.onTrade(trade({ ts: T0 + 59_000, price: 60 })); // latest of minute 0: becomes the close
    agg.onTrade(trade({ ts: T0 + MIN + 4_000, price: 210 }));
    agg.flush();
    assert.equal(late.length, 0);
    assert.deepEqual(view(), ['BTC/USD 00:00 50/100/50/60 v=3 n=3', 'BTC/USD 00:01 200/210/200/210 v=2 n=2']);
  });

  it('sends a trade that arrives after its window closed to the late handler (dlq policy), counted', () => {
    const { agg, view, late } = harness();
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + MIN + 6_000, price: 101 })); // closes minute 0
    agg.onTrade(trade({ ts: T0 + 30_000, price: 999 })); // late
    agg.flush();
    assert.deepEqual(view(), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:01 101/101/101/101 v=1 n=1',
    ]);
    assert.equal(late.length, 1);
    assert.equal(late[0]!.t.price, 999);
    assert.match(late[0]!.reason, /late trade: window 2024-08-09T00:00:00.000Z .* closed/);
    assert.equal(agg.stats.late, 1);
  });

  it('emits a revised candle for a late trade under the revise policy', () => {
    const { agg, view, late } = harness({ latePolicy: 'revise' });
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + MIN + 6_000, price: 101 }));
    agg.onTrade(trade({ ts: T0 + 30_000, price: 120, qty: 2 }));
    agg.flush();
    assert.equal(late.length, 0);
    assert.deepEqual(view(), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:00 100/120/100/120 v=3 n=2 r1',
      'BTC/USD 00:01 101/101/101/101 v=1 n=1',
    ]);
    assert.equal(agg.stats.revised, 1);
  });

  it('revise: the latest revision of every minute is the batch candle of the same trades, filled minutes too', () => {
    // An exchange's feed delivers two trades late: one changes the close of a minute whose next minutes were
    // filled, the other falls into a filled minute. A batch over the same trades in time order has none late.
    const trades = [
      trade({ ts: T0 + 1_000, price: 100 }),
      trade({ ts: T0 + 30_000, price: 120 }), // late: after minutes 00:01 and 00:02 were filled at 100
      trade({ ts: T0 + MIN + 30_000, price: 130 }), // late: into the filled minute 00:01
      trade({ ts: T0 + 4 * MIN + 10_000, price: 140 }),
    ];
    const { agg, candles, late } = harness({ latePolicy: 'revise' });
    agg.onTrade(trades[0]!);
    agg.onWatermark(watermark(T0 + 3 * MIN + 6_000)); // closes 00:00, fills 00:01 and 00:02
    agg.onTrade(trades[1]!);
    agg.onTrade(trades[2]!);
    agg.onWatermark(watermark(T0 + 4 * MIN + 6_000)); // fills 00:03
    agg.onTrade(trades[3]!);
    agg.flush();
    const batch = harness();
    for (const t of [...trades].sort((a, b) => a.tradeTs - b.tradeTs)) batch.agg.onTrade(t);
    batch.agg.flush();
    const latest = new Map<number, Candle>();
    for (const c of candles) latest.set(c.windowStart, c);
    const strip = (c: Candle) => ohlc({ ...c, revision: 0 });
    assert.deepEqual(late, [], 'nothing dead-lettered');
    assert.deepEqual([...latest.values()].map(strip), batch.candles.map(strip));
    assert.deepEqual(batch.view(), [
      'BTC/USD 00:00 100/120/100/120 v=2 n=2',
      'BTC/USD 00:01 130/130/130/130 v=1 n=1',
      'BTC/USD 00:02 130/130/130/130 v=0 n=0 filled',
      'BTC/USD 00:03 130/130/130/130 v=0 n=0 filled',
      'BTC/USD 00:04 140/140/140/140 v=1 n=1',
    ]);
  });

  it('fills idle minutes between trades with flagged zero-volume candles at the previous close', () => {
    const { agg, view } = harness();
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + 3 * MIN + 10_000, price: 105 }));
    agg.flush();
    assert.deepEqual(view(), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:01 100/100/100/100 v=0 n=0 filled',
      'BTC/USD 00:02 100/100/100/100 v=0 n=0 filled',
      'BTC/USD 00:03 105/105/105/105 v=1 n=1',
    ]);
  });

  it('closes minutes on the clock: watermarks alone close an idle market, one filled minute at a time', () => {
    const { agg, view, candles } = harness();
    agg.onTrade(trade({ ts: T0 + 20_000, price: 100 }));
    agg.onWatermark(watermark(T0 + MIN + 4_000));
    assert.equal(candles.length, 0, 'grace not over yet');
    agg.onWatermark(watermark(T0 + MIN + 5_000));
    assert.deepEqual(view(), ['BTC/USD 00:00 100/100/100/100 v=1 n=1']);
    agg.onWatermark(watermark(T0 + 2 * MIN + 5_000));
    agg.onWatermark(watermark(T0 + 3 * MIN + 4_999));
    assert.deepEqual(view(), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:01 100/100/100/100 v=0 n=0 filled',
    ]);
    const filled = candles[1]!;
    assert.equal(filled.vwap, 100);
    assert.ok(CandleSchema.safeParse(filled).success);
  });

  it('does not fill anything before the first trade of a pair (no previous close)', () => {
    const { agg, candles } = harness();
    agg.onWatermark(watermark(T0 + 10 * MIN));
    assert.equal(candles.length, 0);
  });

  it('final watermark closes open windows without grace and without filling past the last trade', () => {
    const { agg, view } = harness({ graceMs: 60_000 });
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + MIN + 1_000, price: 101 }));
    agg.onWatermark(watermark(T0 + MIN + 2_000, { final: true }));
    assert.deepEqual(view(), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:01 101/101/101/101 v=1 n=1',
    ]);
  });

  it('keeps pairs and exchanges independent (multi-pair): one pair idle does not hold back the other', () => {
    const { agg, view } = harness();
    agg.onTrade(trade({ ts: T0 + 1_000, price: 100 }));
    agg.onTrade(trade({ ts: T0 + 2_000, price: 10, pair: 'ETH/USD' }));
    agg.onTrade(trade({ ts: T0 + 3_000, price: 200, exchange: 'other' }));
    agg.onTrade(trade({ ts: T0 + MIN + 6_000, price: 101 })); // BTC/USD only
    assert.deepEqual(view(), ['BTC/USD 00:00 100/100/100/100 v=1 n=1']);
    agg.onWatermark(watermark(T0 + MIN + 6_000, { pair: 'ETH/USD' }));
    assert.deepEqual(view(), ['BTC/USD 00:00 100/100/100/100 v=1 n=1', 'ETH/USD 00:00 10/10/10/10 v=1 n=1']);
    agg.flush();
    assert.equal(agg.stats.candles, 4);
  });

  it('supports 5m, 15m and 1h windows', () => {
    for (const [interval, ms] of [
      ['5m', 5 * MIN],
      ['15m', 15 * MIN],
      ['1h', 60 * MIN],
    ] as const) {
      const { agg, candles } = harness({ interval });
      agg.onTrade(trade({ ts: T0 + 1_000, price: 1 }));
      agg.onTrade(trade({ ts: T0 + ms - 1, price: 2 }));
      agg.onTrade(trade({ ts: T0 + ms, price: 3 }));
      agg.flush();
      assert.equal(candles.length, 2, interval);
      assert.equal(candles[0]!.windowEnd - candles[0]!.windowStart, ms);
      assert.equal(candles[0]!.interval, interval);
      assert.equal(candles[0]!.close, 2);
    }
  });

  it('rejects a negative grace period', () => {
    assert.throws(() => harness({ graceMs: -1 }), coded(ERR.CONFIG));
  });
});

describe('CandleAggregator: restart', () => {
  it('a seeded pair does not republish, fills from the seeded close, and counts re-read trades', () => {
    const { agg, view, late } = harness({ latePolicy: 'revise' });
    agg.seed({
      exchange: 'test',
      pair: 'BTC/USD',
      lastWindowStart: T0 + MIN,
      lastClose: 77,
      published: [[T0 + MIN, 0]],
    });
    agg.onTrade(trade({ ts: T0 + MIN + 1_000, price: 1 })); // its window was published before the restart
    agg.onTrade(trade({ ts: T0 + 3 * MIN + 1_000, price: 80 }));
    agg.flush();
    assert.deepEqual(view(), [
      'BTC/USD 00:02 77/77/77/77 v=0 n=0 filled',
      'BTC/USD 00:03 80/80/80/80 v=1 n=1',
    ]);
    assert.equal(late.length, 0, 're-read trades are not late');
    assert.equal(agg.stats.replayed, 1);
    assert.equal(agg.stats.late, 0);
  });

  it('lowestNeededPosition points at the first input of the oldest open window, or nothing when all closed', () => {
    const { agg } = harness();
    agg.onTrade(trade({ ts: T0 + 1_000, price: 1 }), 10);
    agg.onTrade(trade({ ts: T0 + MIN + 1_000, price: 1, pair: 'ETH/USD' }), 11);
    agg.onTrade(trade({ ts: T0 + MIN + 2_000, price: 1 }), 12);
    assert.equal(agg.lowestNeededPosition(), 10);
    agg.onTrade(trade({ ts: T0 + MIN + 6_000, price: 1 }), 13); // closes BTC minute 0
    assert.equal(agg.lowestNeededPosition(), 11);
    agg.flush();
    assert.equal(agg.lowestNeededPosition(), undefined);
  });
});
