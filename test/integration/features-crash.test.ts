import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import { topics } from '../../src/schemas/topics.ts';
import { bitstampCandleRecords } from '../support/bitstamp.ts';
import { ensureKafka, KAFKA_URL, serviceEnv, uniquePrefix } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The feature service as its own process on Kafka, killed with SIGKILL right after publishing a batch (before its
 * offsets are committed) and restarted: every minute's vector is published exactly once, with the values of an
 * uninterrupted run.
 */
const ROOT = join(import.meta.dirname, '..', '..');

describe('feature service: kill -9 on Kafka, restart', () => {
  before(ensureKafka);
  const prefix = uniquePrefix('fcrash');
  const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await bus.close();
  });
  const start = (fault = '') => {
    const c = spawn(join(ROOT, 'bin', 'cryptocast'), ['service', 'features', '--bus', KAFKA_URL], {
      env: serviceEnv(prefix, fault),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(c);
    return c;
  };

  it('publishes every minute once, equal to an uninterrupted run', async () => {
    const records: Candle[] = await bitstampCandleRecords(4_001);
    const candles = records.slice(0, 4_000);
    const marker = records[4_000]!;
    // Reference: the same candles through the batch engine (what an uninterrupted service publishes).
    const { TechnicalFeatures } = await import('../../src/features/technical.ts');
    const engine = new TechnicalFeatures();
    const reference = candles.map((c) => engine.update(c));

    await bus.publish(topics.candles, candles.slice(0, 2_500));
    const first = start('features:published:1');
    const signal = await new Promise<NodeJS.Signals | null>((r) => first.once('exit', (_c, s) => r(s)));
    assert.equal(signal, 'SIGKILL');
    await bus.publish(topics.candles, candles.slice(2_500));
    start();
    const vectors = async () =>
      (await bus.readTail<FeatureVectorRecord>(topics.features, 100_000)).map((r) => r.value);
    const vectorOf = (c: Candle) => async () => (await vectors()).some((v) => v.windowEnd === c.windowEnd);
    await waitFor("the last candle's vector", vectorOf(candles.at(-1)!), Boolean, { timeoutMs: 180_000 });
    // Then one more candle, on its own, as a marker: the service handles the candles' partition in order, so once
    // the marker's vector is out, every candle before it has been handled, re-reads included: anything published
    // twice is on the topic. (The service keeps its last 1,000 offsets uncommitted to re-warm after a restart, so
    // its commits cannot say this.)
    await bus.publish(topics.candles, [marker]);
    await waitFor("the marker's vector", vectorOf(marker), Boolean, { timeoutMs: 120_000 });
    const got = (await vectors())
      .filter((v) => v.windowEnd !== marker.windowEnd)
      .sort((a, b) => a.windowEnd - b.windowEnd);
    assert.deepEqual(
      got.map((v) => v.windowEnd),
      candles.map((c) => c.windowEnd),
      'each minute exactly once',
    );
    got.forEach((v, i) => {
      const ref = reference[i]!;
      assert.equal(v.ready, ref.ready);
      v.values.forEach((x, k) => {
        const y = ref.values[k]!;
        if (x === null || y === null) assert.equal(x, y, `row ${i} col ${k}`);
        else assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `row ${i} col ${k}: ${x} vs ${y}`);
      });
    });
  });
});
