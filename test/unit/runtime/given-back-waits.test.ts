import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { type CandlesTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { FeatureWriter, TECHNICAL_SET } from '../../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../../src/features/store/duckdb.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { PredictorService } from '../../../src/inference/predictor-service.ts';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { errorKey, type PredictionError } from '../../../src/schemas/prediction-error.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { candle, featureVector, MIN, prediction, T0 } from '../../support/factories.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { scratchDir } from '../../support/scratch.ts';
import { linearServingModel } from '../../support/serving-model.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

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

/** An errors store in memory. */
function verdictsStore(): ErrorsStore & { rows: Map<string, PredictionError> } {
  const rows = new Map<string, PredictionError>();
  return {
    kind: 'duckdb',
    rows,
    async write(records) {
      for (const r of records) rows.set(errorKey(r), r);
    },
    history: async () => [],
    byTargetTime: async () => [],
    range: async () => [],
    columns: async () => ({}),
    maxTargetTs: async () => undefined,
    pairs: async () => [],
    count: async () => rows.size,
    close: async () => {},
  };
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

  it('monitor: the next owner scores the predictions while the first read-back of their closes still hangs', async () => {
    // Three days of candles, then predictions of the first day: their closes have left the join's memory, and the
    // predictions handler reads them back from the candles the monitor stored (`forgottenCloses`). The first member's
    // read never answers; a second member joins the group then and takes the pair's partition.
    const bus = new InProcessBus();
    const quiet = pino({ level: 'silent' });
    const table = await openCandlesTable(`duckdb:${join(scratchDir('h102-given-back-'), 'c.duckdb')}`);
    const read = { joined: undefined as Promise<void> | undefined };
    const silentReads = new Proxy(table, {
      get(target, prop, receiver) {
        if (prop === 'range')
          return () => {
            read.joined ??= second.start();
            return new Promise<never>(() => {});
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as CandlesTable;
    const firstStore = verdictsStore();
    const secondStore = verdictsStore();
    const first = new MonitorService(bus, firstStore, {
      clock: 'event',
      candles: silentReads,
      logger: quiet,
    });
    const second = new MonitorService(bus, secondStore, { clock: 'event', candles: table, logger: quiet });
    await first.start();
    await bus.publish(
      topics.candles,
      Array.from({ length: 3 * 1440 }, (_, i) =>
        candle({ pair, windowEnd: T0 + (i + 1) * MIN, close: 100 + i }),
      ),
    );
    await first.caughtUp();
    const predictions = Array.from({ length: 3 }, (_, i) =>
      prediction({ pair, windowEnd: T0 + (i + 1) * MIN }),
    );
    await bus.publish(topics.predictions, predictions);
    await waitFor('the first read-back', () => read.joined !== undefined, Boolean, { everyMs: 20 });
    await settlesWithin(
      read.joined!,
      20_000,
      'the second member to join (the first let go of its batch)',
      () => void bus.close(),
    );
    await waitFor(
      'the next owner stored the verdicts',
      () => secondStore.rows.size,
      (n) => n === predictions.length,
      { timeoutMs: 20_000 },
    );
    // The first member stops first: the second's stop would give the partition back to it, to read the batch again
    // from the last commit (at-least-once) and wait for good on its silent read.
    await first.stop();
    await second.stop();
    const published = (await bus.readTail<PredictionError>(topics.predictionErrors, 100)).map((r) =>
      errorKey(r.value),
    );
    assert.deepEqual(
      published.sort(),
      predictions.map((p) => errorKey(p)).sort(),
      'each verdict published once',
    );
    assert.equal(firstStore.rows.size, 0, 'the member that gave the batch back stored nothing of it');
    // Prediction i targets the candle i + 5, whose close is 100 + i + 5.
    assert.deepEqual(
      predictions.map((p) => secondStore.rows.get(errorKey(p))?.actualClose),
      [105, 106, 107],
    );
    await bus.close();
    await table.close();
  });
  it('monitor: the next owner scores the predictions while the first waits on its write-behind past 10,000 unstored verdicts', async () => {
    // The first member's errors store never answers a write: its verdicts pile up in the write-behind, and a predictions
    // batch that would take them past 10,000 unstored waits for their write. A second member joins the group then.
    const bus = new InProcessBus();
    const quiet = pino({ level: 'silent' });
    const firstStore = verdictsStore();
    // Answered only at the end of the test (refused: the first member's stop flushes what it holds).
    let refuse!: (err: Error) => void;
    const silence = new Promise<never>((_, reject) => {
      refuse = reject;
    });
    silence.catch(() => {});
    firstStore.write = () => silence;
    const secondStore = verdictsStore();
    const first = new MonitorService(bus, firstStore, { clock: 'event', logger: quiet });
    const second = new MonitorService(bus, secondStore, { clock: 'event', logger: quiet });
    await first.start();
    const n = 12_500;
    await bus.publish(
      topics.candles,
      Array.from({ length: n + 10 }, (_, i) =>
        candle({ pair, windowEnd: T0 + (i + 1) * MIN, close: 100 + i }),
      ),
    );
    await first.caughtUp();
    const predictions = Array.from({ length: n + 1 }, (_, i) =>
      prediction({ pair, windowEnd: T0 + (i + 1) * MIN }),
    );
    await bus.publish(topics.predictions, predictions.slice(0, n));
    const unstored = (first as unknown as { verdictWrites: { unwritten: number } }).verdictWrites;
    await waitFor(
      'verdicts unstored up to the bound (the next batch of 2,000 waits)',
      () => unstored.unwritten,
      (b) => b > 8_000,
      {
        timeoutMs: 60_000,
      },
    );
    // A batch after them, which waits for their write (if the last of them did not already).
    await bus.publish(topics.predictions, predictions.slice(n));
    await settlesWithin(second.start(), 20_000, 'the second member to join', () => void bus.close());
    await waitFor(
      'the next owner stored the verdicts',
      () => secondStore.rows.size,
      (stored) => stored === predictions.length,
      { timeoutMs: 20_000 },
    );
    refuse(new Error('the test is over'));
    await first.stop();
    await second.stop();
    const last = errorKey(predictions.at(-1)!);
    const published = (await bus.readTail<PredictionError>(topics.predictionErrors, 1_000_000)).filter(
      (r) => errorKey(r.value) === last,
    );
    assert.equal(
      published.length,
      1,
      'the verdict of the batch given back published once, by the next owner',
    );
    await bus.close();
  });
});
