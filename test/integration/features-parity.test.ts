import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { featureCsvRow } from '../../src/features/csv.ts';
import { FeatureService } from '../../src/features/feature-service.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import { topics } from '../../src/schemas/topics.ts';
import { BITSTAMP, bitstampCandles } from '../support/bitstamp.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * One feature code path: the 1-minute Bitstamp recording streamed through the feature *service*, candle by candle,
 * gives exactly the rows of the batch `cryptocast features` command — on the in-process bus and through Kafka.
 */
const ROOT = join(import.meta.dirname, '..', '..');

function asCandle(c: Awaited<ReturnType<typeof bitstampCandles>>[number]): Candle {
  return {
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
  };
}

const rows = (vs: readonly FeatureVectorRecord[]) =>
  vs.map((v) =>
    featureCsvRow({
      pair: v.pair,
      windowStart: v.windowStart,
      windowEnd: v.windowEnd,
      close: v.close,
      ready: v.ready,
      values: v.values,
    }),
  );

describe('features: streaming service = batch command, exactly', () => {
  let batch: string[];
  let candles: Candle[];
  before(async () => {
    const out = join(scratchDir('feat-'), 'features.csv');
    await promisify(execFile)(join(ROOT, 'bin/cryptocast'), [
      'features',
      '--candles',
      BITSTAMP,
      '--pair',
      'BTC/USD',
      '--output',
      out,
    ]);
    batch = readFileSync(out, 'utf8').trim().split('\n').slice(1);
    candles = (await bitstampCandles()).map(asCandle);
    assert.equal(batch.length, 38_942);
  });

  it('in-process bus, one candle at a time', async () => {
    const bus = new InProcessBus();
    const svc = new FeatureService(bus);
    const got: FeatureVectorRecord[] = [];
    svc.onVectors = (vs) => got.push(...vs);
    await svc.start();
    for (const c of candles) {
      await bus.publish(topics.candles, [c]);
      await svc.caughtUp();
    }
    await svc.stop();
    assert.equal(got.length, batch.length);
    const streamed = rows(got);
    for (let i = 0; i < batch.length; i++)
      if (streamed[i] !== batch[i])
        assert.fail(`row ${i} differs:\n stream ${streamed[i]}\n batch  ${batch[i]}`);
  });

  describe('through a real Kafka broker', () => {
    before(ensureKafka);
    let bus: Bus;
    after(() => bus?.close());
    it('gives the same rows', async () => {
      bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('features') });
      await bus.publish(topics.candles, candles);
      const svc = new FeatureService(bus);
      await svc.start();
      await svc.caughtUp();
      await svc.stop();
      const got = (await bus.readTail<FeatureVectorRecord>(topics.features, 100_000)).map((r) => r.value);
      assert.equal(got.length, batch.length);
      const streamed = rows(got);
      for (let i = 0; i < batch.length; i++) if (streamed[i] !== batch[i]) assert.fail(`row ${i} differs`);
    });
  });
});
