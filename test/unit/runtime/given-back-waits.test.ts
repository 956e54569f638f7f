import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { FeatureWriter, TECHNICAL_SET } from '../../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../../src/features/store/duckdb.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { PredictorService } from '../../../src/inference/predictor-service.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { featureVector, MIN, T0 } from '../../support/factories.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { linearServingModel } from '../../support/serving-model.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * A handler waiting on a store that does not answer (PostgreSQL gives up only at its query timeout, two minutes) lets
 * go of its batch as soon as the batch is given back (`Batch.signal`): otherwise it would hold the member's rejoin past
 * the rebalance timeout (Kafka: the member removed, the batch handled by two members). On the in-process bus the next
 * owner of a partition waits for the previous owner's batch, so it handles the batch only once the first let go.
 * Two members of a group split the partitions round-robin (the first keeps the even ones): the pair is on an odd one.
 */
const PAIRS = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD', 'ADA/USD', 'DOT/USD', 'LTC/USD', 'BTC/EUR'];
const pair = PAIRS.find((p) => partitionFor(p, topics.features.partitions) % 2 === 1)!;
const vector = (): FeatureVectorRecord =>
  featureVector({ pair, windowEnd: T0 + MIN, values: FEATURE_COLUMNS.map(() => 0) });

/** Replaces `store.write` with one that never answers, and calls `onWrite` (outside the handler) at its first call. */
function silentWrites<S extends { write: (...a: never[]) => Promise<void> }>(
  store: S,
  onWrite: () => Promise<void>,
) {
  const state = { calls: 0, joined: undefined as Promise<void> | undefined };
  store.write = (() => {
    if (state.calls++ === 0) state.joined = onWrite();
    return new Promise<void>(() => {});
  }) as S['write'];
  return state;
}

describe('a handler waiting on a silent store lets go once its batch is given back', () => {
  it('feature writer: the next owner writes the batch while the first write still hangs', async () => {
    const bus = new InProcessBus();
    const silent = await DuckDbFeatureStore.open(':memory:');
    const answering = await DuckDbFeatureStore.open(':memory:');
    const first = new FeatureWriter(bus, silent);
    const second = new FeatureWriter(bus, answering);
    await first.start();
    const writes = silentWrites(silent, () => second.start());
    await bus.publish<FeatureVectorRecord>(topics.features, [vector()]);
    await waitFor('the first write', () => writes.joined !== undefined, Boolean, { everyMs: 20 });
    await writes.joined;
    await waitFor(
      'the next owner stored the vector',
      () => answering.count(TECHNICAL_SET),
      (n) => n === 1,
      {
        timeoutMs: 20_000,
      },
    );
    await second.stop();
    await first.stop();
    await bus.close();
  });

  it('predictor: the next owner stores and publishes the prediction while the first write still hangs', async () => {
    const bus = new InProcessBus();
    const quiet = pino({ level: 'silent' });
    const silent = new MemoryPredictionsStore();
    const answering = new MemoryPredictionsStore();
    const options = { clock: 'event' as const, logger: quiet };
    const first = new PredictorService(bus, { current: () => linearServingModel }, silent, options);
    const second = new PredictorService(bus, { current: () => linearServingModel }, answering, options);
    await first.start();
    const writes = silentWrites(silent, () => second.start());
    await bus.publish<FeatureVectorRecord>(topics.features, [vector()]);
    await waitFor('the first write', () => writes.joined !== undefined, Boolean, { everyMs: 20 });
    await writes.joined;
    const published = await waitFor(
      'the next owner published the prediction',
      async () => (await bus.readTail<Prediction>(topics.predictions, 10)).map((r) => r.value.pair),
      (pairs) => pairs.length > 0,
      { timeoutMs: 20_000 },
    );
    assert.deepEqual(published, [pair]);
    await second.stop();
    await first.stop();
    await bus.close();
  });
});
