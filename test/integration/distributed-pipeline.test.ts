import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../src/features/store/duckdb.ts';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import { BINANCE_CAPTURE } from '../support/data.ts';
import {
  ensureKafka,
  KAFKA_URL,
  serviceLauncher,
  uniquePrefix,
  waitForGroupCommitted,
} from '../support/kafka.ts';
import { testSchema } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The distributed runtime end to end: trades, candles, features and feature-writer as four processes on a real
 * Kafka broker, writing a real PostgreSQL — and the embedded runtime (one process, in-process bus, DuckDB) on the
 * same recording. Both stores must hold the same feature vectors.
 */

describe('distributed pipeline (4 processes, Kafka, PostgreSQL) = embedded pipeline (1 process, DuckDB)', () => {
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('dist');
  const schema = testSchema(prefix);
  before(async () => {
    await ensureKafka();
    await schema.create();
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await schema.drop();
  });

  it('stores the same feature vectors', async () => {
    // Embedded.
    const duck = await DuckDbFeatureStore.open(':memory:');
    const bus = new InProcessBus();
    const p = await startMarketDataPipeline({
      bus,
      store: duck,
      sources: [new ReplaySource({ files: [BINANCE_CAPTURE], speed: 'max' })],
      config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
    });
    await p.finished;
    await p.stop();
    const embedded = [
      ...(await duck.history(TECHNICAL_SET, 'BTC/USDT', 0, Number.MAX_SAFE_INTEGER)),
      ...(await duck.history(TECHNICAL_SET, 'ETH/USDT', 0, Number.MAX_SAFE_INTEGER)),
    ];
    await duck.close();
    assert.equal(embedded.length, 24);

    // Distributed: every stage its own process; the store in a schema of its own.
    const storeUrl = schema.url;
    const svc = serviceLauncher(prefix, children);
    svc(['candles']);
    svc(['features']);
    svc(['feature-writer', '--store', storeUrl]);
    const trades = svc(['trades', '--source', 'replay', '--data', BINANCE_CAPTURE, '--speed', 'max']);
    assert.equal(await new Promise((r) => trades.once('exit', r)), 0);

    const store = await PostgresFeatureStore.open(storeUrl);
    const kafka = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    try {
      // Stage by stage: the candle service has committed every trade (it publishes before it commits), so every
      // candle is out; the features service has published a vector per candle; the writer has committed all of
      // those (it writes before it commits), so the store holds every vector. (A re-publication writes the same
      // row again: the store's content cannot change after that.)
      await waitForGroupCommitted(kafka, topics.trades, 'candles');
      await waitFor(
        'a feature vector per candle',
        async () => (await kafka.readTail(topics.features, 100_000)).length,
        (n) => n >= embedded.length,
        { timeoutMs: 120_000 },
      );
      await waitForGroupCommitted(kafka, topics.features, 'feature-writer');
      const distributed = [
        ...(await store.history(TECHNICAL_SET, 'BTC/USDT', 0, Number.MAX_SAFE_INTEGER)),
        ...(await store.history(TECHNICAL_SET, 'ETH/USDT', 0, Number.MAX_SAFE_INTEGER)),
      ];
      assert.deepEqual(distributed, embedded);
    } finally {
      await store.close();
      await kafka.close();
    }
  });
});
