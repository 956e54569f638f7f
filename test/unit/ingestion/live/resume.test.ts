import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoinbaseWsSource } from '../../../../src/ingestion/live/coinbase-ws.ts';
import { ResumePoints } from '../../../../src/ingestion/resume-points.ts';
import { TradeService } from '../../../../src/ingestion/trade-service.ts';
import { type Bus, partitionFor } from '../../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../../src/schemas/candle.ts';
import { topics } from '../../../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../../../src/schemas/trade.ts';
import { collectValues } from '../../../support/collect.ts';
import { until } from '../../../support/exchanges/base.ts';
import { CoinbaseServer } from '../../../support/exchanges/coinbase.ts';
import { coinbaseTradesFromRecording, krakenRecordedTrades } from '../../../support/exchanges/fixtures.ts';
import { FAST_CONNECTOR, range } from '../../../support/exchanges/harness.ts';
import { KrakenServer } from '../../../support/exchanges/kraken.ts';
import { krakenTradesStage } from '../../../support/exchanges/kraken-trades-stage.ts';
import { candle } from '../../../support/factories.ts';

const PAIR = 'BTC/USDT';
const real = krakenRecordedTrades(); // 1,000 real trades, consecutive ids
const firstId = real[0]!.id;
/** The stretch of `trades` a restart reads back, small so a test need not wait an hour. */
const READ_BACK = { resumeTailRecords: 50, resumeReachMs: 300 };

/** A trades stage on `bus` with a Kraken connector on `srv`, running until `stop()`. */
const tradesStage = (bus: Bus, srv: KrakenServer, storedCandles?: readonly Candle[]) =>
  krakenTradesStage(bus, srv, PAIR, { service: { storedCandles } });

/** Trade ids on the topic, offsets relative to the first recorded trade, in log order. */
function tradeIds(values: readonly TradeEvent[]): number[] {
  return values.filter((v): v is Trade => v.type === 'trade').map((t) => Number(t.tradeId) - firstId);
}

/** An in-process bus whose trade publishes fail while `away.now` is true (a broker gone at the stop). */
function busAwayWhile(away: { now: boolean }): { bus: Bus; inner: InProcessBus } {
  const inner = new InProcessBus();
  const bus = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'publish')
        return async (t: { name: string }, values: TradeEvent[]) => {
          if (t.name === topics.trades.name && away.now && values.some((v) => v.type === 'trade'))
            throw new Error('the broker is away (injected)');
          return target.publish(t as never, values as never);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { bus, inner };
}

describe('live trades resume where the previous process left the log', () => {
  it("cryptocast run's empty in-process bus: refills from the end of the newest stored candle", async () => {
    const srv = await new KrakenServer().listen();
    const bus = new InProcessBus();
    try {
      // The previous run stored its candles up to 17:45 (the minute of trades 78-89); 90-699 traded since.
      srv.record(PAIR, real.slice(0, 700));
      const windowEnd = Date.parse('2025-11-10T17:46:00Z');
      assert.ok(Number(real[89]!.time) * 1000 < windowEnd && Number(real[90]!.time) * 1000 >= windowEnd);
      const stored = { ...candle({ windowEnd }), exchange: 'kraken', pair: PAIR };
      const onTopic = await collectValues(bus, topics.trades);
      const stage = tradesStage(bus, srv, [stored]);
      try {
        await until(() => tradeIds(onTopic).length >= 610, 10_000, 'the 610 traded since the stored minute');
      } finally {
        await stage.stop();
      }
      assert.deepEqual(tradeIds(onTopic), range(90, 699));
      assert.equal(stage.source.stats.recovered, 610);
    } finally {
      await bus.close();
      await srv.close();
    }
  });

  it('a restart refills over REST what traded while the stage was down: every trade once, in order', async () => {
    const srv = await new KrakenServer().listen();
    const bus = new InProcessBus();
    try {
      const onTopic = await collectValues(bus, topics.trades);
      const first = tradesStage(bus, srv);
      await until(() => first.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(0, 100));
      await until(() => tradeIds(onTopic).length === 100, 10_000, 'the first 100 trades');
      await first.stop();

      srv.record(PAIR, real.slice(100, 700)); // traded while the stage was down
      const second = tradesStage(bus, srv);
      await until(() => second.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(700, 750));
      await until(() => tradeIds(onTopic).length >= 750, 10_000, 'the 600 traded while down, then 50 live');
      await second.stop();

      assert.deepEqual(tradeIds(onTopic), range(0, 749));
      assert.equal(second.source.stats.recovered, 600);
      assert.equal(second.source.stats.unrecoverable, 0);
    } finally {
      await bus.close();
      await srv.close();
    }
  });

  for (const quiet of [false, true])
    it(`ids not yet got at the stop (an id gap whose refill failed, waiting for its retry) are asked for again at once${quiet ? ': the pair then quiet for longer than the log read back (found on trades.resume only)' : ''}`, async () => {
      const srv = await new KrakenServer().listen();
      const bus = new InProcessBus();
      /** Stopped whatever happens: a stage left running keeps the test file from ending. */
      let second: ReturnType<typeof stage> | undefined;
      const stage = (on: Bus, kraken: KrakenServer) =>
        krakenTradesStage(on, kraken, PAIR, { service: quiet ? READ_BACK : {} });
      try {
        const onTopic = await collectValues(bus, topics.trades);
        const first = stage(bus, srv);
        await until(() => first.source.subscribed.includes(PAIR));
        srv.publish(PAIR, real.slice(0, 10));
        srv.record(PAIR, real.slice(10, 12)); // their frame lost
        srv.failNext = 1_000; // the gap's refill fails: a hole, retried in 30 s (the default), after the stop
        srv.publish(PAIR, real.slice(12, 20));
        await until(() => tradeIds(onTopic).length === 18, 10_000, 'the streamed trades');
        // A watermark after the hole opened: it says the ids not yet got.
        await until(
          () => onTopic.some((e) => e.type === 'watermark' && e.pendingIds !== undefined),
          10_000,
          'a watermark saying them',
        );
        srv.failNext = 0;
        await first.stop();

        if (quiet) {
          // Quiet for longer than the reach, while another exchange's pair on its partition goes on.
          const stoppedAt = Date.now();
          await until(() => Date.now() > stoppedAt + 2 * READ_BACK.resumeReachMs, 10_000, 'the reach passed');
          assert.equal(
            partitionFor('SOL/USD', topics.trades.partitions),
            partitionFor(PAIR, topics.trades.partitions),
          );
          const t0 = Date.now();
          await bus.publish(
            topics.trades,
            Array.from(
              { length: 200 },
              (_, i): TradeEvent => ({
                v: 1,
                type: 'watermark',
                exchange: 'coinbase',
                pair: 'SOL/USD',
                ts: t0 + i,
              }),
            ),
          );
        }
        second = stage(bus, srv);
        await until(() => tradeIds(onTopic).length >= 20, 10_000, 'the two asked for again');
        await second.stop();
        assert.deepEqual(
          [...tradeIds(onTopic)].sort((a, b) => a - b),
          range(0, 19),
          'every trade once',
        );
        assert.equal(second.source.stats.holesRefilled, 1);
      } finally {
        await second?.stop();
        await bus.close();
        await srv.close();
      }
    });

  it('a pair quiet behind 20,000 records of others on its partition is refilled too (not started afresh)', async () => {
    const srv = await new KrakenServer().listen();
    const bus = new InProcessBus();
    try {
      const onTopic = await collectValues(bus, topics.trades);
      const first = tradesStage(bus, srv);
      await until(() => first.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(0, 100));
      await until(() => tradeIds(onTopic).length === 100, 10_000, 'the first 100 trades');
      await first.stop();
      // Meanwhile another exchange's pair on the same partition goes on (BTC/USDT's connection is down, or the stage
      // is): more than the 20,000 records a partition the restart reads back as its tail.
      const BUSY = 'SOL/USD';
      assert.equal(
        partitionFor(BUSY, topics.trades.partitions),
        partitionFor(PAIR, topics.trades.partitions),
      );
      const t0 = Date.now();
      await bus.publish(
        topics.trades,
        Array.from(
          { length: 20_500 },
          (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'coinbase', pair: BUSY, ts: t0 + i }),
        ),
      );

      srv.record(PAIR, real.slice(100, 700)); // traded while the stage was down
      const second = tradesStage(bus, srv);
      await until(() => second.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(700, 750));
      await until(
        () => tradeIds(onTopic).length >= 150 && tradeIds(onTopic).includes(749),
        10_000,
        'the 50 live (after the 600 traded while down, if refilled)',
      );
      await second.stop();

      assert.deepEqual(tradeIds(onTopic), range(0, 749), 'every trade once, in order: the 600 refilled');
      assert.equal(second.source.stats.recovered, 600);
    } finally {
      await bus.close();
      await srv.close();
    }
  });

  it('trades accepted but not yet published when the stage stopped (the broker away) are published after the restart', async () => {
    const srv = await new KrakenServer().listen();
    const away = { now: false };
    const { bus, inner } = busAwayWhile(away);
    try {
      const onTopic = await collectValues(inner, topics.trades);
      const first = tradesStage(bus, srv);
      await until(() => first.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(0, 100));
      await until(() => tradeIds(onTopic).length === 100, 10_000, 'the first 100 trades');
      away.now = true;
      // Accepted by the connector, held by the broker's absence: more than the 50 of the snapshot a subscription gets.
      srv.publish(PAIR, real.slice(100, 300));
      await until(() => first.service.stats.publishRetries > 0, 10_000, 'a publish retried');
      await first.stop();
      assert.equal(tradeIds(onTopic).length, 100, 'nothing more reached the log before the stop');

      away.now = false;
      const second = tradesStage(bus, srv);
      await until(() => second.source.subscribed.includes(PAIR));
      srv.publish(PAIR, real.slice(300, 310));
      await until(() => tradeIds(onTopic).length >= 310, 10_000, 'the 200 held at the stop, then 10 live');
      await second.stop();

      assert.deepEqual(tradeIds(onTopic), range(0, 309));
    } finally {
      await bus.close();
      await srv.close();
    }
  });
});

describe('the same on Coinbase, refilled by time (its ids are not contiguous per pair)', () => {
  const CB_PAIR = 'BTC/USD';
  const cb = coinbaseTradesFromRecording(800);
  const cbIds = (values: readonly TradeEvent[]) =>
    values
      .filter((v): v is Trade => v.type === 'trade')
      .map((t) => Number(t.tradeId) - Number(cb[0]!.trade_id));

  it('a restart refills from the newest trade in the log: every trade once, in order', async () => {
    const srv = await new CoinbaseServer().listen();
    const bus = new InProcessBus();
    const stage = () => {
      const service = new TradeService(bus);
      const source = new CoinbaseWsSource({
        pairs: [CB_PAIR],
        wsUrl: srv.wsUrl,
        restUrl: srv.restUrl,
        ...FAST_CONNECTOR,
      });
      const abort = new AbortController();
      const done = service.run([source], abort.signal);
      const stop = () => {
        abort.abort();
        return done;
      };
      return { source, stop };
    };
    try {
      const onTopic = await collectValues(bus, topics.trades);
      const first = stage();
      await until(() => first.source.subscribed.includes(CB_PAIR));
      srv.publish(cb.slice(0, 100));
      await until(() => cbIds(onTopic).length === 100, 10_000, 'the first 100 trades');
      await first.stop();

      srv.record(cb.slice(100, 700)); // traded while the stage was down
      const second = stage();
      await until(() => second.source.subscribed.includes(CB_PAIR));
      srv.publish(cb.slice(700, 750));
      await until(() => cbIds(onTopic).length >= 750, 10_000, 'the 600 traded while down, then 50 live');
      await second.stop();
      assert.deepEqual(cbIds(onTopic), range(0, 749));
    } finally {
      await bus.close();
      await srv.close();
    }
  });

  it('a pair quiet for longer than the log read back is refilled from trades.resume, its last second not published twice', async () => {
    // The read-back shrunk to 10 records a partition and 500 ms before the log's end (the stage's is 20,000 and an hour).
    const readBack = { resumeTailRecords: 10, resumeReachMs: 500 };
    const BUSY = 'ADA/USD'; // another exchange's pair on BTC/USD's partition, busy while BTC/USD is quiet
    assert.equal(
      partitionFor(BUSY, topics.trades.partitions),
      partitionFor(CB_PAIR, topics.trades.partitions),
    );
    // The first stage stops after 10 trades, the last 8 of them within a second.
    const lastSecond = cb.slice(0, 10).filter((t) => Date.parse(t.time) >= Date.parse(cb[9]!.time) - 1_000);
    assert.ok(
      lastSecond.length > 1,
      'trades before the 10th in its last second: the refill asks for them again',
    );
    const srv = await new CoinbaseServer().listen();
    const bus = new InProcessBus();
    const stage = () => {
      const service = new TradeService(bus, readBack);
      const source = new CoinbaseWsSource({
        pairs: [CB_PAIR],
        wsUrl: srv.wsUrl,
        restUrl: srv.restUrl,
        ...FAST_CONNECTOR,
      });
      const abort = new AbortController();
      const done = service.run([source], abort.signal);
      return {
        source,
        stop: () => {
          abort.abort();
          return done;
        },
      };
    };
    try {
      const onTopic = await collectValues(bus, topics.trades);
      const first = stage();
      await until(() => first.source.subscribed.includes(CB_PAIR));
      srv.publish(cb.slice(0, 10));
      await until(() => cbIds(onTopic).length === 10, 10_000, 'the first 10 trades');
      await first.stop();
      const stoppedAt = Date.now();
      await until(() => Date.now() > stoppedAt + 2 * readBack.resumeReachMs, 10_000, 'the reach passed');
      const t0 = Date.now();
      await bus.publish(
        topics.trades,
        Array.from(
          { length: 50 },
          (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'kraken', pair: BUSY, ts: t0 + i }),
        ),
      );

      srv.record(cb.slice(10, 700)); // traded while BTC/USD was quiet
      const second = stage();
      await until(() => second.source.subscribed.includes(CB_PAIR));
      srv.publish(cb.slice(700, 750));
      await until(() => cbIds(onTopic).includes(749), 10_000, 'the 50 live');
      await second.stop();
      assert.deepEqual(cbIds(onTopic), range(0, 749), 'every trade once, in order: the 690 refilled');
    } finally {
      await bus.close();
      await srv.close();
    }
  });
});

describe('ResumePoints', () => {
  const trade = (id: number, ts: number, exchange = 'kraken'): TradeEvent => ({
    v: 1,
    type: 'trade',
    exchange,
    pair: PAIR,
    tradeId: String(id),
    price: 100,
    qty: 1,
    side: 'buy',
    tradeTs: ts,
    receivedTs: ts,
  });
  const watermark = (ts: number, final?: boolean): TradeEvent => ({
    v: 1,
    type: 'watermark',
    exchange: 'kraken',
    pair: PAIR,
    ts,
    ...(final === undefined ? {} : { final }),
  });

  it('takes the highest id, the latest trade time and the latest watermark of each exchange and pair', () => {
    const points = ResumePoints.fromTail([
      trade(7, 1_000),
      watermark(1_500),
      trade(9, 2_000),
      trade(8, 1_900),
      watermark(1_800),
      trade(50, 9_000, 'binance'),
    ]);
    assert.deepEqual(points.get('kraken', PAIR), { lastId: 9, lastTs: 2_000, watermarkTs: 1_800 });
    assert.deepEqual(points.get('binance', PAIR), { lastId: 50, lastTs: 9_000 });
    assert.equal(points.get('coinbase', PAIR), undefined);
  });

  it('a final watermark (the end of a replay) is no resume point', () => {
    assert.equal(ResumePoints.fromTail([watermark(5_000, true)]).get('kraken', PAIR), undefined);
  });
});
