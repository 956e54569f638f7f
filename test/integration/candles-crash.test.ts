import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { CandleService } from '../../src/candles/candle-service.ts';
import { candleCsvRow } from '../../src/candles/csv.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { DeadLetter } from '../../src/schemas/dlq.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { TradeEvent } from '../../src/schemas/trade.ts';
import { BINANCE_CAPTURE } from '../support/data.ts';
import { MIN, ohlc, T0, trade, watermark } from '../support/factories.ts';
import { ensureKafka, KAFKA_URL, serviceEnv, uniquePrefix, waitForGroupCommitted } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Issue 2's crash test: the candle service runs as its own process on a real Kafka broker while trades are
 * replayed; it is killed with SIGKILL twice mid-stream (once by fault injection in the worst window: candles
 * published, offsets not committed; once from outside) and restarted each time. The final `candles` topic must equal an
 * uninterrupted run: same candles, no duplicates, no gaps.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const key = (c: Candle) => `${c.pair} ${c.windowStart} r${c.revision}`;
const csv = (cs: readonly Candle[]) =>
  [...cs]
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.windowStart - b.windowStart || a.revision - b.revision)
    .map(candleCsvRow)
    .join('\n');

describe('candle service: kill -9 mid-replay on Kafka, restart', () => {
  before(ensureKafka);
  const prefix = uniquePrefix('crash');
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await bus.close();
  });

  const startService = (args: string[], fault = '') => {
    const child = spawn(join(ROOT, 'bin', 'cryptocast'), ['service', ...args, '--bus', KAFKA_URL], {
      env: serviceEnv(prefix, fault),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    return child;
  };
  const startCandleService = (fault = '') => startService(['candles'], fault);
  const candleCount = async () => {
    const { latest } = await bus.offsets(bus.name(topics.candles));
    return latest.reduce((s, x) => s + Number(x), 0);
  };
  const killWhen = async (child: ChildProcess, atLeast: number) => {
    await waitFor(`${atLeast} candles on the topic`, candleCount, (n) => n >= atLeast, {
      timeoutMs: 120_000,
      everyMs: 100,
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  };

  it('yields exactly the candles of an uninterrupted run', async () => {
    // Reference: the same recording, uninterrupted, on the in-process bus.
    const mem = new InProcessBus();
    const ref = await startMarketDataPipeline({
      bus: mem,
      sources: [new ReplaySource({ files: [BINANCE_CAPTURE], speed: 'max' })],
      config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
    });
    await ref.finished;
    const expected = (await mem.readTail(topics.candles, 100_000)).map((r) => r.value);
    await ref.stop();
    assert.equal(expected.length, 24);

    await bus.ensureTopics([topics.trades, topics.candles, topics.dlq]);
    // The trades service, its own process, replays at 40× recorded speed (about 16 s) while the candle
    // service is killed and restarted twice.
    const tradesService = startService([
      'trades',
      '--source',
      'replay',
      '--data',
      BINANCE_CAPTURE,
      '--speed',
      '40',
    ]);
    const replay = new Promise<number | null>((r) => tradesService.once('exit', (code) => r(code)));
    // 1st crash: SIGKILL right after the 3rd batch of candles is published, before its offsets are committed.
    const first = startCandleService('candles:published:3');
    const firstExit = await new Promise<NodeJS.Signals | null>((r) =>
      first.once('exit', (_code, signal) => r(signal)),
    );
    assert.equal(firstExit, 'SIGKILL');
    // 2nd crash: SIGKILL from outside at an arbitrary moment, once 12 candles are out.
    const second = startCandleService();
    await killWhen(second, 12);
    startCandleService();
    assert.equal(await replay, 0, 'trades service finished the replay');

    // Once the candle service has committed every trade, every candle it will ever publish is on the topic:
    // anything published twice is there to be seen.
    await waitForGroupCommitted(bus, topics.trades, 'candles');
    const got = (await bus.readTail(topics.candles, 100_000)).map((r) => r.value);
    const keys = got.map(key);
    assert.equal(
      new Set(keys).size,
      keys.length,
      `duplicates: ${keys.filter((k, i) => keys.indexOf(k) !== i).join(', ')}`,
    );
    assert.equal(csv(got), csv(expected));
  });
});

describe('candle service on Kafka: a late trade after a restart', () => {
  before(ensureKafka);
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('late-restart') });
  after(() => bus.close());

  it('is dead-lettered when its minute was published before the restart, not dropped as a re-read', async () => {
    const first = new CandleService({ bus });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 20_000, price: 100 }),
      watermark(T0 + MIN + 6_000), // closes 00:00; nothing stays open, so everything is committed
    ]);
    await first.caughtUp();
    await first.stop();
    const second = new CandleService({ bus });
    await second.start();
    try {
      await second.caughtUp();
      await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 40_000, price: 999 })]); // late for 00:00
      await second.caughtUp();
      const dead = await waitFor(
        'the late trade in dlq',
        async () => (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value),
        (d) => d.length > 0,
        { timeoutMs: 30_000 },
      );
      assert.deepEqual(
        dead.map((d) => [d.kind, JSON.parse(d.payload).price]),
        [['late', 999]],
      );
      assert.deepEqual([second.stats.late, second.stats.replayed], [1, 0]);
      const candles = (await bus.readTail<Candle>(topics.candles, 100)).map((r) => ohlc(r.value));
      assert.deepEqual(candles, ['BTC/USD 00:00 100/100/100/100 v=1 n=1']);
    } finally {
      await second.stop();
    }
  });
});

describe('candle service on Kafka, revise: a late trade after a restart', () => {
  before(ensureKafka);
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('revise-restart') });
  after(() => bus.close());

  it('revises its minute published before the restart (read back from the candles topic), nothing dead-lettered', async () => {
    const first = new CandleService({ bus, latePolicy: 'revise' });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 20_000, price: 100, qty: 0.5 }),
      trade({ ts: T0 + 50_000, price: 110, qty: 0.5 }),
      watermark(T0 + MIN + 6_000), // closes 00:00
    ]);
    await first.caughtUp();
    await first.stop();
    const second = new CandleService({ bus, latePolicy: 'revise' });
    await second.start();
    try {
      await second.caughtUp();
      // Late for 00:00, before its first trade: the new open, as an uninterrupted run would have it.
      await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 10_000, price: 90, qty: 1 })]);
      await second.caughtUp();
      const candles = await waitFor(
        'the revision',
        async () => (await bus.readTail<Candle>(topics.candles, 100)).map((r) => r.value),
        (cs) => cs.length >= 2,
        { timeoutMs: 30_000 },
      );
      assert.deepEqual(candles.map(ohlc), [
        'BTC/USD 00:00 100/110/100/110 v=1 n=2',
        'BTC/USD 00:00 90/110/90/110 v=2 n=3 r1',
      ]);
      assert.equal(candles[1]!.vwap, (100 * 0.5 + 110 * 0.5 + 90) / 2);
      assert.equal((await bus.readTail(topics.dlq, 100)).length, 0);
      assert.equal(second.stats.late, 1);
    } finally {
      await second.stop();
    }
  });
});

describe('candle service on Kafka: a late trade appended while it was down', () => {
  before(ensureKafka);
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('while-down') });
  after(() => bus.close());

  it('restart: a late trade appended while the service was down, before any record of its pair, is dead-lettered', async () => {
    const first = new CandleService({ bus });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 3 * MIN + 20_000, price: 100 }),
      watermark(T0 + 4 * MIN + 6_000), // closes test's 00:03
      // Same pair, same partition: coinbase's open minute holds the commit here, after the watermark.
      trade({ ts: T0 + 4 * MIN + 10_000, price: 50, exchange: 'coinbase' }),
    ]);
    await first.caughtUp();
    await first.stop();
    // While the service is down: a late trade for test's 00:03, no record of test's pair before it since the commit.
    await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 3 * MIN + 45_000, price: 998 })]);
    const second = new CandleService({ bus });
    await second.start();
    try {
      await second.caughtUp();
      assert.deepEqual([second.stats.late, second.stats.replayed], [1, 0]);
      const dead = await waitFor(
        'the late trade in dlq',
        async () =>
          (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => JSON.parse(r.value.payload).price),
        (d) => d.includes(998),
        { timeoutMs: 30_000 },
      );
      assert.ok(dead.includes(998));
    } finally {
      await second.stop();
    }
  });
});
