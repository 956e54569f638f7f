import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { candleCsvRow } from '../../src/candles/csv.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { topics } from '../../src/schemas/topics.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV } from '../support/data.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';

/** Candles as CSV text in a canonical order (topic partitions interleave differently per transport). */
function csv(candles: readonly Candle[]): string {
  return [...candles]
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.windowStart - b.windowStart || a.revision - b.revision)
    .map((c) => `${c.exchange},${candleCsvRow(c)},${c.revision}`)
    .join('\n');
}

async function replayThrough(bus: Bus, files: string[]): Promise<void> {
  const config = { interval: '1m' as const, graceMs: 5_000, latePolicy: 'dlq' as const };
  const p = await startMarketDataPipeline({
    bus,
    sources: [new ReplaySource({ files, speed: 'max' })],
    config,
  });
  await p.finished;
  await p.stop();
}

describe('the same recording through the in-process bus and a real Kafka broker', () => {
  before(ensureKafka);
  const files = [BINANCE_CAPTURE, KRAKEN_2019_CSV];
  let memory = '';
  let kafka = '';
  let kafkaBus: KafkaBus;

  before(async () => {
    const mem = new InProcessBus();
    await replayThrough(mem, files);
    memory = csv((await mem.readTail(topics.candles, 1_000_000)).map((r) => r.value));
    await mem.close();

    kafkaBus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('parity') });
    await replayThrough(kafkaBus, files);
    kafka = csv((await kafkaBus.readTail(topics.candles, 1_000_000)).map((r) => r.value));
  });
  after(() => kafkaBus?.close());

  it('gives byte-identical candles', () => {
    assert.ok(memory.length > 0);
    assert.equal(kafka, memory);
  });

  it('covers every minute of both recordings, per pair, without gaps or duplicates', () => {
    const rows = memory.split('\n').map((l) => l.split(','));
    const byPair = new Map<string, number[]>();
    for (const r of rows)
      byPair.set(`${r[0]} ${r[1]}`, [...(byPair.get(`${r[0]} ${r[1]}`) ?? []), Number(r[2])]);
    assert.deepEqual([...byPair.keys()].sort(), ['binance BTC/USDT', 'binance ETH/USDT', 'kraken BTC/USD']);
    for (const [k, starts] of byPair) {
      for (let i = 1; i < starts.length; i++)
        assert.equal(starts[i]! - starts[i - 1]!, 60_000, `${k} minute ${i}`);
    }
    assert.equal(byPair.get('binance BTC/USDT')!.length, 12); // 23:54 → 00:05
    assert.equal(byPair.get('kraken BTC/USD')!.length, 60); // 00:00 → 00:59
  });
});
