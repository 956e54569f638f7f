import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CandleService } from '../../../src/candles/candle-service.ts';
import { FeatureService } from '../../../src/features/feature-service.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { PredictorService } from '../../../src/inference/predictor-service.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { TradeEvent } from '../../../src/schemas/trade.ts';
import { candle, featureVector, MIN, T0, trade, watermark } from '../../support/factories.ts';
import { busWatchingGiveBacks } from '../../support/given-back.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { linearServingModel } from '../../support/serving-model.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * A stage's handler whose partition is taken away in the middle of its batch (`Batch.signal` aborted: a second member
 * joined the group while the handler awaited its read-back) publishes nothing of the batch: its partition's next owner
 * reads the batch again and publishes it. On the in-process bus, two members of a group split the partitions
 * round-robin (the first keeps the even ones), so each test's pair is on an odd partition: the one that moves.
 */
const PAIRS = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD', 'ADA/USD', 'DOT/USD', 'LTC/USD', 'BTC/EUR'];
/** The second member has joined (from the first member's read-back, in the middle of its batch). */
async function joined(state: { held: Promise<void> | undefined }): Promise<void> {
  await waitFor(
    'a handler read-back holding its batch while the second member joins',
    () => state.held !== undefined,
    (started) => started,
    { everyMs: 20 },
  );
  await state.held;
}
const onOddPartition = (partitions: number) => PAIRS.find((p) => partitionFor(p, partitions) % 2 === 1)!;

describe('a handler whose batch is given back publishes nothing of it', () => {
  it('candles: the candle of a batch given back in the middle is published once, by the next owner', async () => {
    const { bus, inner, state } = busWatchingGiveBacks(new InProcessBus());
    const pair = onOddPartition(topics.trades.partitions);
    const first = new CandleService({ bus });
    const second = new CandleService({ bus });
    await first.start();
    state.onRead = () => second.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ pair, ts: T0 + 1_000, price: 100 }),
      watermark(T0 + MIN + 10_000, { pair, final: true }),
    ]);
    await joined(state);
    await second.caughtUp();
    await first.caughtUp();
    assert.deepEqual(state.late, [], 'published after its batch was given back');
    const candles = (await inner.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
    assert.deepEqual(
      candles.map((c) => `${c.pair} ${c.windowStart - T0}`),
      [`${pair} 0`],
    );
    await second.stop();
    await first.stop();
    await inner.close();
  });

  it('features: the vector of a batch given back in the middle is published once, by the next owner', async () => {
    const { bus, inner, state } = busWatchingGiveBacks(new InProcessBus());
    const pair = onOddPartition(topics.candles.partitions);
    const first = new FeatureService(bus);
    const second = new FeatureService(bus);
    await first.start();
    state.onRead = () => second.start();
    await bus.publish<Candle>(topics.candles, [candle({ pair, windowEnd: T0 + MIN })]);
    await joined(state);
    await second.caughtUp();
    await first.caughtUp();
    assert.deepEqual(state.late, [], 'published after its batch was given back');
    const vectors = (await inner.readTail<FeatureVectorRecord>(topics.features, 100)).map((r) => r.value);
    assert.deepEqual(
      vectors.map((v) => `${v.pair} ${v.windowEnd - T0}`),
      [`${pair} ${MIN}`],
    );
    await second.stop();
    await first.stop();
    await inner.close();
  });

  it('predictor: a batch given back in the middle is neither stored nor published by the member that lost it', async () => {
    const { bus, inner, state } = busWatchingGiveBacks(new InProcessBus());
    const pair = onOddPartition(topics.features.partitions);
    const quiet = pino({ level: 'silent' });
    const firstStore = new MemoryPredictionsStore();
    const first = new PredictorService(bus, { current: () => linearServingModel }, firstStore, {
      clock: 'event',
      logger: quiet,
    });
    const second = new PredictorService(
      bus,
      { current: () => linearServingModel },
      new MemoryPredictionsStore(),
      {
        clock: 'event',
        logger: quiet,
      },
    );
    const storedByFirst: Prediction[] = [];
    const write = firstStore.write.bind(firstStore);
    firstStore.write = (predictions) => {
      storedByFirst.push(...predictions);
      return write(predictions);
    };
    await first.start();
    state.onRead = () => second.start();
    const values = FEATURE_COLUMNS.map(() => 0);
    await bus.publish<FeatureVectorRecord>(topics.features, [
      featureVector({ pair, windowEnd: T0 + MIN, values }),
    ]);
    await joined(state);
    await second.caughtUp();
    await first.caughtUp();
    assert.deepEqual(state.late, [], 'published after its batch was given back');
    assert.deepEqual(storedByFirst, [], 'stored after its batch was given back');
    const predictions = (await inner.readTail<Prediction>(topics.predictions, 100)).map((r) => r.value);
    assert.deepEqual(
      predictions.map((p) => `${p.pair} ${p.windowEnd - T0}`),
      [`${pair} ${MIN}`],
    );
    await second.stop();
    await first.stop();
    await inner.close();
  });
});
