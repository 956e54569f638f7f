import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { openFeatureStore } from '../../src/features/store/open.ts';
import { ChampionHolder } from '../../src/inference/model-holder.ts';
import { PredictorService } from '../../src/inference/predictor-service.ts';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import { topics } from '../../src/schemas/topics.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { datasetFromCandles, MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, trainModels } from '../support/champion.ts';
import { KRAKEN_REST_TRADES, SHARED_DATA } from '../support/data.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The whole chain — recorded trades → candles → features → the champion (real XGBoost, loaded from a registry) →
 * predictions — through the in-process bus and through a real Kafka broker: the same predictions, one per ready
 * feature vector, in both the topic and the predictions store.
 */
const NAME = 'parity';

/** Predictions in a canonical order, without the fields that depend on when they were made. */
const canonical = (ps: readonly Prediction[]) =>
  [...ps]
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.windowEnd - b.windowEnd)
    .map((p) =>
      [
        p.exchange,
        p.pair,
        p.windowEnd,
        p.targetTs,
        p.close,
        p.predictedReturnBps,
        p.p10,
        p.p90,
        p.modelVersion,
      ].join(','),
    );

async function predictThrough(
  bus: Bus,
  registryDir: string,
): Promise<{ topic: string[]; store: string[]; ready: number }> {
  const features = await openFeatureStore('duckdb::memory:');
  const predictions = await openPredictionsStore('duckdb::memory:');
  const holder = new ChampionHolder(new LocalRegistry(registryDir), {
    name: NAME,
    cacheDir: scratchDir('cc-cache-'),
  });
  await holder.start();
  const predictor = new PredictorService(bus, holder, predictions, { clock: 'event' });
  await predictor.start();
  const p = await startMarketDataPipeline({
    bus,
    sources: [new ReplaySource({ files: [KRAKEN_REST_TRADES], speed: 'max' })],
    config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
    store: features,
  });
  await p.finished;
  await predictor.caughtUp();
  const ready = p.features?.stats.ready ?? 0;
  await p.stop();
  await predictor.stop();
  holder.stop();
  const topic = canonical((await bus.readTail(topics.predictions, 1_000_000)).map((r) => r.value));
  const pairs = [...new Set((await bus.readTail(topics.predictions, 1_000_000)).map((r) => r.value.pair))];
  const stored: Prediction[] = [];
  for (const pair of pairs)
    stored.push(...(await predictions.history(pair, 0, Number.MAX_SAFE_INTEGER, { limit: 1000 })));
  await predictions.close();
  await features.close();
  return { topic, store: canonical(stored), ready };
}

describe('predictions: the same replay through the in-process bus and a real Kafka broker', () => {
  before(ensureKafka);
  const registryDir = scratchDir('cc-parity-registry-');
  let memory: Awaited<ReturnType<typeof predictThrough>>;
  let kafka: Awaited<ReturnType<typeof predictThrough>>;
  let kafkaBus: KafkaBus;

  before(async () => {
    // A real champion: trained by XGBoost on two days of Binance features.
    const days = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02',
      'BTCUSDT',
      'BTCUSDT-1m-2022-06-01.zip',
    );
    const { dataset } = await datasetFromCandles(days, { horizonMs: 300_000 });
    const k = dataset.columns.length;
    const X = Array.from({ length: dataset.n }, (_, i) =>
      Array.from(dataset.X.subarray(i * k, (i + 1) * k), (v) => (Number.isNaN(v) ? null : v)),
    );
    await registerModel(
      new LocalRegistry(registryDir),
      NAME,
      MODEL_COLUMNS,
      trainModels(X, Array.from(dataset.y), 30),
    );

    const mem = new InProcessBus();
    memory = await predictThrough(mem, registryDir);
    await mem.close();
    kafkaBus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('pred-parity') });
    kafka = await predictThrough(kafkaBus, registryDir);
  });
  after(() => kafkaBus?.close());

  it('makes one prediction per ready feature vector', () => {
    assert.ok(memory.ready > 300, `${memory.ready} ready vectors`);
    assert.equal(memory.topic.length, memory.ready);
    assert.equal(
      new Set(memory.topic.map((l) => l.split(',').slice(1, 3).join())).size,
      memory.topic.length,
      'no duplicates',
    );
  });

  it('gives identical predictions on both transports, in the topic and in the store', () => {
    assert.deepEqual(kafka.topic, memory.topic);
    assert.deepEqual(memory.store, memory.topic);
    assert.deepEqual(kafka.store, kafka.topic);
  });
});
