import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KrakenWsSource } from '../../src/ingestion/live/kraken-ws.ts';
import { TradeService } from '../../src/ingestion/trade-service.ts';
import { partitionFor } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../src/schemas/trade.ts';
import { krakenRecordedTrades } from '../support/exchanges/fixtures.ts';
import { FAST_CONNECTOR, range } from '../support/exchanges/harness.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The live trades stage on a real Kafka broker, restarted after one of its pairs was quiet for longer than the stretch
 * of `trades` a restart reads back (the tail of each partition and the last hour before the log's end: here 200 records
 * and 2 s, so the test need not wait an hour) while another exchange's pair on its partition went on. Before
 * `trades.resume` that pair started afresh: what it traded meanwhile was never refilled.
 */
const PAIR = 'BTC/USDT';
/** Another exchange's pair on the same `trades` partition, busy while PAIR is quiet. */
const BUSY = 'SOL/USD';
const real = krakenRecordedTrades(); // 1,000 real trades, consecutive ids
const READ_BACK = { resumeTailRecords: 200, resumeReachMs: 2_000 };

describe('trades stage on Kafka: a pair quiet for longer than the log read back on a restart', () => {
  before(ensureKafka);
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('trades-resume-quiet') });
  let srv: KrakenServer | undefined;
  after(async () => {
    await bus.close();
    await srv?.close();
  });

  /** A trades stage on the broker with a Kraken connector for PAIR, running until `stop()`. */
  function tradesStage(kraken: KrakenServer) {
    const service = new TradeService(bus, READ_BACK);
    const source = new KrakenWsSource({
      pairs: [PAIR],
      wsUrl: kraken.wsUrl,
      restUrl: kraken.restUrl,
      ...FAST_CONNECTOR,
      restMinIntervalMs: 0,
    });
    const abort = new AbortController();
    const done = service.run([source], abort.signal).catch((err: unknown) => err);
    return {
      source,
      stop: async () => {
        abort.abort();
        return done;
      },
    };
  }

  /** PAIR's trade ids on `trades`, offsets from the first recorded trade, in log order. */
  const tradeIds = async () =>
    (await bus.readTail<TradeEvent>(topics.trades, 10_000))
      .map((r) => r.value)
      .filter((v): v is Trade => v.type === 'trade' && v.pair === PAIR)
      .map((t) => Number(t.tradeId) - real[0]!.id);

  it('is refilled from where it stopped: every trade once, in order', async () => {
    srv = await new KrakenServer().listen();
    const kraken = srv;
    assert.equal(partitionFor(BUSY, topics.trades.partitions), partitionFor(PAIR, topics.trades.partitions));

    const first = tradesStage(kraken);
    await waitFor(
      'subscribed',
      () => first.source.subscribed,
      (s) => s.includes(PAIR),
      { timeoutMs: 60_000 },
    );
    kraken.publish(PAIR, real.slice(0, 100));
    await waitFor('the first 100 trades', tradeIds, (ids) => ids.length === 100, { timeoutMs: 60_000 });
    await first.stop();
    const stoppedAt = Date.now();

    // PAIR quiet (its stage down) for longer than the reach; meanwhile BUSY goes on, more records than the tail.
    await waitFor(
      'the reach passed',
      () => Date.now(),
      (now) => now > stoppedAt + 2 * READ_BACK.resumeReachMs,
      {
        everyMs: 100,
      },
    );
    const t0 = Date.now();
    await bus.publish(
      topics.trades,
      Array.from(
        { length: 500 },
        (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'coinbase', pair: BUSY, ts: t0 + i }),
      ),
    );

    kraken.record(PAIR, real.slice(100, 700)); // traded while PAIR was quiet
    const second = tradesStage(kraken);
    await waitFor(
      'subscribed again',
      () => second.source.subscribed,
      (s) => s.includes(PAIR),
      {
        timeoutMs: 60_000,
      },
    );
    kraken.publish(PAIR, real.slice(700, 750));
    await waitFor('the 50 live ones', tradeIds, (ids) => ids.includes(749), { timeoutMs: 60_000 });
    await second.stop();

    assert.deepEqual(await tradeIds(), range(0, 749), 'every trade once, in order: the 600 refilled');
    assert.equal(second.source.stats.recovered, 600);
  });

  it('two quiet pairs whose points were written together: the log after them is read once, each refilled', async () => {
    const own = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('trades-resume-quiet-two') });
    const kraken = await new KrakenServer().listen();
    const pairs = [PAIR, 'ETH/USD'];
    /** The stretches of `trades` a stage read after quiet pairs' points (`readPages` with `until`). */
    const reads: { since?: number; until?: number }[] = [];
    const counted = new Proxy(own, {
      get(target, prop, receiver) {
        if (prop === 'readPages')
          return (topic: { name: string }, onPage: never, options?: { since?: number; until?: number }) => {
            if (topic.name === topics.trades.name && options?.until !== undefined) reads.push({ ...options });
            return target.readPages(topic as never, onPage, options);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const stage = () => {
      const service = new TradeService(counted, READ_BACK);
      const source = new KrakenWsSource({
        pairs,
        wsUrl: kraken.wsUrl,
        restUrl: kraken.restUrl,
        ...FAST_CONNECTOR,
        restMinIntervalMs: 0,
      });
      const abort = new AbortController();
      const done = service.run([source], abort.signal).catch((err: unknown) => err);
      return {
        source,
        stop: async () => {
          abort.abort();
          return done;
        },
      };
    };
    const ids = async (pair: string) =>
      (await own.readTail<TradeEvent>(topics.trades, 10_000))
        .map((r) => r.value)
        .filter((v): v is Trade => v.type === 'trade' && v.pair === pair)
        .map((t) => Number(t.tradeId) - real[0]!.id);
    try {
      const first = stage();
      await waitFor(
        'subscribed',
        () => first.source.subscribed,
        (s) => s.length === 2,
        { timeoutMs: 60_000 },
      );
      kraken.publish(PAIR, real.slice(0, 10));
      kraken.publish('ETH/USD', real.slice(100, 110));
      await waitFor(
        'the first trades',
        async () => (await ids(PAIR)).length + (await ids('ETH/USD')).length,
        (n) => n === 20,
        {
          timeoutMs: 60_000,
        },
      );
      await first.stop(); // both points written at once
      const stoppedAt = Date.now();
      await waitFor(
        'the reach passed',
        () => Date.now(),
        (now) => now > stoppedAt + 2 * READ_BACK.resumeReachMs,
        {
          everyMs: 100,
        },
      );
      const t0 = Date.now();
      await own.publish(
        topics.trades,
        Array.from(
          { length: 500 },
          (_, i): TradeEvent => ({ v: 1, type: 'watermark', exchange: 'coinbase', pair: BUSY, ts: t0 + i }),
        ),
      );
      kraken.record(PAIR, real.slice(10, 20));
      kraken.record('ETH/USD', real.slice(110, 120));
      const second = stage();
      await waitFor(
        'both refilled',
        async () => (await ids(PAIR)).length + (await ids('ETH/USD')).length,
        (n) => n === 40,
        {
          timeoutMs: 60_000,
        },
      );
      await second.stop();
      assert.equal(
        reads.length,
        1,
        `reads of the log after the quiet pairs' points: ${JSON.stringify(reads)}`,
      );
      assert.deepEqual(await ids(PAIR), range(0, 19), 'every trade once, in order');
      assert.deepEqual(await ids('ETH/USD'), range(100, 119), 'every trade once, in order');
    } finally {
      await own.close();
      await kraken.close();
    }
  });
});
