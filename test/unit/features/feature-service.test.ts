import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureService } from '../../../src/features/feature-service.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Topic } from '../../../src/runtime/topic.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { bitstampCandles } from '../../support/bitstamp.ts';

const asCandle = (c: Awaited<ReturnType<typeof bitstampCandles>>[number]): Candle => ({
  v: 1,
  exchange: 'bitstamp',
  pair: c.pair,
  interval: '1m',
  windowStart: c.windowStart,
  windowEnd: c.windowEnd,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume,
  filled: false,
  revision: 0,
});

async function run(candles: unknown[]): Promise<{ vectors: FeatureVectorRecord[]; dead: DeadLetter[] }> {
  const bus = new InProcessBus();
  const svc = new FeatureService(bus);
  const vectors: FeatureVectorRecord[] = [];
  svc.onVectors = (vs) => vectors.push(...vs);
  await svc.start();
  for (const c of candles) bus.publishUnvalidated('candles', 'BTC/USD', c);
  await svc.caughtUp();
  await svc.stop();
  const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
  return { vectors, dead };
}

describe('FeatureService: impossible candles', () => {
  it('go to dlq with a reason and do not poison indicator state', async () => {
    const good = (await bitstampCandles(200)).map(asCandle);
    const bad: unknown[] = [
      { ...good[100]!, windowStart: good[100]!.windowStart + 30, high: 1, low: 2 }, // high < low (schema)
      { ...good[100]!, volume: -5 }, // negative volume (schema)
      { ...good[99]! }, // not after the previous candle of its pair
    ];
    const clean = await run(good);
    const dirty = await run([...good.slice(0, 100), ...bad, ...good.slice(100)]);
    assert.equal(dirty.dead.length, 3);
    assert.match(dirty.dead[0]!.reason, /impossible OHLC/);
    assert.match(dirty.dead[1]!.reason, /volume/);
    assert.match(dirty.dead[2]!.reason, /not after the previous one/);
    assert.deepEqual(dirty.vectors, clean.vectors);
  });
});

describe('FeatureService: restart', () => {
  it('resumes after a stop: re-warms from its committed offsets, no duplicate, no gap, same values', async () => {
    const candles = (await bitstampCandles(6_000)).map(asCandle);
    const reference = await run(candles);
    const bus = new InProcessBus();
    const first = new FeatureService(bus, 'features', 1_000);
    await first.start();
    await bus.publish(topics.candles, candles.slice(0, 3_500));
    await first.caughtUp();
    await first.stop(); // everything after the committed offset (1,000 candles back) is re-read by the next one
    const second = new FeatureService(bus, 'features', 1_000);
    await second.start();
    await bus.publish(topics.candles, candles.slice(3_500));
    await second.caughtUp();
    await second.stop();
    assert.ok(second.stats.rewarmed >= 999, `re-warmed on ${second.stats.rewarmed} candles`);
    const got = (await bus.readTail<FeatureVectorRecord>(topics.features, 100_000)).map((r) => r.value);
    assert.deepEqual(
      got.map((v) => v.windowEnd),
      candles.map((c) => c.windowEnd),
      'every minute exactly once',
    );
    for (let i = 0; i < got.length; i++) {
      const a = got[i]!;
      const b = reference.vectors[i]!;
      assert.equal(a.ready, b.ready);
      // Exactly: every column is a function of a window the re-warm covers (the rolling sums included).
      for (const [k, x] of a.values.entries())
        assert.ok(Object.is(x, b.values[k]), `row ${i} column ${k}: ${x} vs ${b.values[k]}`);
    }
  });
  it('a pair quiet behind more than 5,000 vectors of another on its partition is not published again', async () => {
    // ADA/USD shares BTC/USD's partition (of `candles` and of `features`); its market halts after 50 minutes while
    // BTC/USD goes on for 6,000: on restart its last vector lies behind 5,950 of BTC/USD's on `features`.
    assert.equal(
      partitionFor('ADA/USD', topics.features.partitions),
      partitionFor('BTC/USD', topics.features.partitions),
    );
    assert.equal(topics.candles.partitions, topics.features.partitions);
    const busy = (await bitstampCandles(6_000)).map(asCandle);
    const quiet = busy.slice(0, 50).map((c) => ({ ...c, pair: 'ADA/USD' }));
    const bus = new InProcessBus();
    const first = new FeatureService(bus, 'features', 1_000);
    await first.start();
    await bus.publish(topics.candles, [...quiet, ...busy]);
    await first.caughtUp();
    await first.stop();
    // The quiet pair's candles are within its last 1,000: the committed offset is before them, and they are re-read.
    const second = new FeatureService(bus, 'features', 1_000);
    await second.start();
    await second.caughtUp();
    await second.stop();
    assert.ok(second.stats.rewarmed >= 1_000, `re-warmed on ${second.stats.rewarmed} candles`);
    const perMinute = new Map<string, number>();
    for (const { value: v } of await bus.readTail<FeatureVectorRecord>(topics.features, 100_000)) {
      const k = `${v.pair} ${v.windowEnd}`;
      perMinute.set(k, (perMinute.get(k) ?? 0) + 1);
    }
    assert.deepEqual(
      [...perMinute].filter(([, n]) => n > 1),
      [],
      'no vector published twice',
    );
    assert.equal(perMinute.size, quiet.length + busy.length, 'every minute of both pairs');
    assert.equal(second.stats.vectors, 0, 'the restart had nothing new to publish');
  });
});

describe('FeatureService: a failed batch', () => {
  it('a features publish that fails once (broker away) loses no vector and dead-letters nothing', async () => {
    const candles = (await bitstampCandles(3_000)).map(asCandle);
    const bus = new InProcessBus({ maxBatch: 500 });
    let featurePublishes = 0;
    const realPublish = bus.publish.bind(bus);
    bus.publish = (async <T>(topic: Topic<T>, values: readonly T[]) => {
      if (topic.name === 'features' && ++featurePublishes === 3) throw new Error('broker away (injected)');
      return realPublish(topic, values);
    }) as typeof bus.publish;
    const svc = new FeatureService(bus, 'features', 1_000);
    await svc.start();
    await realPublish(topics.candles, candles);
    await svc.caughtUp();
    await svc.stop();
    const got = (await bus.readTail<FeatureVectorRecord>(topics.features, 100_000)).map(
      (r) => r.value.windowEnd,
    );
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100_000)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => d.reason),
      [],
      'nothing dead-lettered',
    );
    assert.deepEqual(
      got,
      candles.map((c) => c.windowEnd),
    );
  });
});
