import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { liveSources } from '../../src/ingestion/live/index.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { topics } from '../../src/schemas/topics.ts';
import { until } from '../support/exchanges/base.ts';
import { krakenRecordedTrades } from '../support/exchanges/fixtures.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { waitFor } from '../support/wait.ts';

/**
 * End to end on the wall clock: the live Kraken connector (against a local Kraken server) → in-process bus →
 * candle service. Trades of two minutes ago close their minute as soon as the connector's clock watermarks
 * arrive, and the idle minute after it is emitted too, filled — the market was quiet, the minute still exists.
 */
describe('live pipeline on the wall clock', () => {
  it('closes traded and idle minutes from the connector clock', async () => {
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    // The trades go out before the subscription is confirmed, so before any watermark of the connector's clock: one
    // of now − 2 s reaching the pair first would make these trades of two minutes ago late.
    srv.holdConfirmations = true;
    const bus = new InProcessBus();
    const MIN = 60_000;
    const now = Date.now();
    const m2 = Math.floor(now / MIN) * MIN - 2 * MIN; // two minutes ago
    const real = krakenRecordedTrades().slice(0, 5);
    const trades = real.map((t, i) => ({ ...t, time: ((m2 + 1_000 + i * 1_000) / 1000).toFixed(3) }));
    const pipeline = await startMarketDataPipeline({
      bus,
      sources: liveSources(['BTC/USDT'], {
        CRYPTOCAST_EXCHANGES: 'kraken',
        CRYPTOCAST_KRAKEN_WS_URL: srv.wsUrl,
        CRYPTOCAST_KRAKEN_REST_URL: srv.restUrl,
      }),
      config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
    });
    try {
      await until(() => srv.sockets.size === 1 && srv.heldSubscriptions > 0, 5_000, 'subscribed');
      srv.publish('BTC/USDT', trades);
      srv.confirmSubscriptions();
      const candles = async () => (await bus.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
      // The minute after the trades closes once the wall clock (minus 2 s delay and 5 s grace) passes its end:
      // at most 7 s after the start; the deadline leaves a loaded machine room.
      const got = await waitFor(
        'the idle minute to close',
        candles,
        (cs) => cs.some((c) => c.windowStart === m2 + MIN),
        {
          timeoutMs: 90_000,
        },
      );
      const traded = got.find((c) => c.windowStart === m2)!;
      assert.ok(traded, 'the traded minute closed');
      assert.equal(traded.trades, 5);
      assert.equal(traded.filled, false);
      assert.equal(traded.close, Number(real[4]!.price));
      const idle = got.find((c) => c.windowStart === m2 + MIN)!;
      assert.ok(idle, 'the idle minute closed on the clock');
      assert.deepEqual(
        [idle.filled, idle.volume, idle.open, idle.close],
        [true, 0, traded.close, traded.close],
      );
      assert.equal(pipeline.candles.stats.late, 0);
    } finally {
      await pipeline.stop();
      await bus.close();
      await srv.close();
    }
  });
});

describe('live pipeline restarted on a fresh in-process bus (cryptocast run --source live)', () => {
  it('resumes after the newest stored candle: what traded while down is refilled, that minute not published again', async () => {
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    const bus = new InProcessBus();
    const MIN = 60_000;
    const m1 = Math.floor(Date.now() / MIN) * MIN - MIN; // the last whole minute
    const m2 = m1 - MIN;
    // The previous run stored m2 (its trades ended at m2 + 59.5 s); 60 trades of m1 came while the run was down: more
    // than the 50 of the snapshot a Kraken subscription gets, so only a REST refill brings them all.
    const real = krakenRecordedTrades().slice(0, 61);
    const at = (t: (typeof real)[number], ms: number) => ({ ...t, time: (ms / 1000).toFixed(3) });
    srv.record('BTC/USDT', [
      at(real[0]!, m2 + 59_500),
      ...real.slice(1).map((t, i) => at(t, m1 + 1_000 + i * 500)),
    ]);
    const price = Number(real[0]!.price);
    const stored: Candle = {
      v: 1,
      exchange: 'kraken',
      pair: 'BTC/USDT',
      interval: '1m',
      windowStart: m2,
      windowEnd: m1,
      open: price,
      high: price,
      low: price,
      close: price,
      volume: 1,
      trades: 1,
      vwap: price,
      filled: false,
      revision: 0,
    };
    const pipeline = await startMarketDataPipeline({
      bus,
      sources: liveSources(['BTC/USDT'], {
        CRYPTOCAST_EXCHANGES: 'kraken',
        CRYPTOCAST_KRAKEN_WS_URL: srv.wsUrl,
        CRYPTOCAST_KRAKEN_REST_URL: srv.restUrl,
      }),
      config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
      storedCandles: [stored],
    });
    try {
      const candles = async () => (await bus.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
      // m1 closes once the wall clock (minus 2 s delay and 5 s grace) passes its end: within 7 s of the minute.
      const got = await waitFor(
        'the refilled minute to close',
        candles,
        (cs) => cs.some((c) => c.windowStart === m1),
        {
          timeoutMs: 90_000,
        },
      );
      const refilled = got.find((c) => c.windowStart === m1)!;
      assert.deepEqual(
        [refilled.trades, refilled.filled, refilled.open, refilled.close],
        [60, false, Number(real[1]!.price), Number(real[60]!.price)],
      );
      assert.equal(
        got.filter((c) => c.windowStart <= m2).length,
        0,
        'the stored minute is not published again',
      );
      assert.equal(pipeline.candles.stats.late, 0);
    } finally {
      await pipeline.stop();
      await bus.close();
      await srv.close();
    }
  });
});
