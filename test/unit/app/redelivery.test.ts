import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CandleService } from '../../../src/candles/candle-service.ts';
import { FeatureService } from '../../../src/features/feature-service.ts';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { PredictorService } from '../../../src/inference/predictor-service.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { NewsSignalService } from '../../../src/sentiment/news-signal-service.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { bitstampCandleRecords } from '../../support/bitstamp.ts';
import { collectValues } from '../../support/collect.ts';
import { featureVector, MIN, T0, trade, watermark } from '../../support/factories.ts';
import { busFailingOnce, failFirstWrite } from '../../support/failing-once.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { linearServingModel } from '../../support/serving-model.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * A stage whose handler fails part-way (its output publish, its store write) gets the same records again from the
 * bus (from its last commit). What it did before failing must not change what it makes of them the second time, nor
 * what it counts: each stage, its output publish failing once, ends exactly as an uninterrupted run.
 */
const run = async <S>(fail: string | undefined, body: (bus: InProcessBus) => Promise<S>) => {
  const { bus, inner } = fail ? busFailingOnce(fail) : { bus: new InProcessBus(), inner: undefined };
  try {
    return await body(bus);
  } finally {
    await (inner ?? bus).close();
  }
};

describe('a batch delivered again after a failure ends as an uninterrupted run', () => {
  it('candles: the trades, idle fills, late trades and watermarks counted once', async () => {
    const events = [
      trade({ ts: T0 + 1_000, price: 100 }),
      trade({ ts: T0 + 4 * MIN + 1_000, price: 101 }), // closes the first minute, fills the three after it
      trade({ ts: T0 + 5 * MIN + 2_000, price: 102 }),
      trade({ ts: T0 + 2_000, price: 99, tradeId: 'late-1' }), // late for the first minute
      watermark(T0 + 10 * MIN, { final: true }),
    ];
    const once = (fail?: string) =>
      run(fail, async (bus) => {
        const svc = new CandleService({ bus, graceMs: 1_000 });
        await svc.start();
        await bus.publish(topics.trades, events);
        await waitFor(
          'six candles',
          () => svc.stats.candles,
          (n) => n >= 6,
          { timeoutMs: 20_000 },
        );
        await svc.caughtUp();
        const dead = (await bus.readTail(topics.dlq, 100)).length;
        const candles = (await bus.readTail(topics.candles, 100)).map((r) => r.value);
        await svc.stop();
        return { stats: { ...svc.stats }, dead, candles };
      });
    const uninterrupted = await once();
    assert.equal(uninterrupted.stats.late, 1);
    assert.deepEqual(await once(topics.candles.name), uninterrupted);
  });

  // The candle stage commits behind a window still open: a later batch that fails is read again from there, through
  // records an earlier batch counted already.
  it('candles: a later batch read again with an earlier one’s records of an open window counts them once', async () => {
    const first = [trade({ ts: T0 + 1_000, price: 100 }), trade({ ts: T0 + MIN + 2_000, price: 101 })];
    const second = [
      trade({ ts: T0 + 2 * MIN + 3_000, price: 102 }),
      watermark(T0 + 5 * MIN, { final: true }),
    ];
    const once = async (failSecond: boolean) => {
      const { bus, inner, state } = busFailingOnce(topics.candles.name, failSecond ? 2 : 0);
      try {
        const svc = new CandleService({ bus, graceMs: 1_000 });
        await svc.start();
        await bus.publish(topics.trades, first);
        await waitFor(
          'the first minute',
          () => svc.stats.candles,
          (n) => n >= 1,
          { timeoutMs: 20_000 },
        );
        await svc.caughtUp();
        await bus.publish(topics.trades, second);
        await svc.caughtUp();
        const candles = (await inner.readTail(topics.candles, 100)).map((r) => r.value);
        await svc.stop();
        return { stats: { ...svc.stats }, candles, failed: state.failures > 2 };
      } finally {
        await inner.close();
      }
    };
    const uninterrupted = await once(false);
    assert.equal(uninterrupted.stats.trades, 3);
    const failedOnce = await once(true);
    assert.equal(failedOnce.failed, true, 'the second batch’s candles failed once and were published again');
    assert.deepEqual({ ...failedOnce, failed: false }, uninterrupted);
  });

  it('features: the candles and ready vectors counted once', async () => {
    const candles: Candle[] = await bitstampCandleRecords(200);
    const once = (fail?: string) =>
      run(fail, async (bus) => {
        const svc = new FeatureService(bus);
        await svc.start();
        await bus.publish(topics.candles, candles);
        await waitFor(
          '200 vectors',
          () => svc.stats.vectors,
          (n) => n === 200,
          { timeoutMs: 20_000 },
        );
        await svc.caughtUp();
        await svc.stop();
        return { ready: svc.stats.ready, vectors: svc.stats.vectors, candles: svc.stats.candles };
      });
    const uninterrupted = await once();
    assert.ok(uninterrupted.ready > 100);
    assert.deepEqual(await once(topics.features.name), uninterrupted);
  });

  it('news signals: the items counted once', async () => {
    const backend = {
      name: 'fake:llm',
      promptVersion: 'p1',
      baseline: false,
      async score() {
        return { label: 'positive' as const, score: 0.6, confidence: 0.9, reason: 'x' };
      },
    };
    const item = (id: string): NewsItem =>
      ({
        v: 1,
        id,
        source: 'test',
        title: `Bitcoin ${id} rallies`,
        summary: '',
        url: `https://example.com/${id}`,
        publishedAt: T0 - 60_000,
        fetchedAt: T0,
        coins: ['BTC'],
      }) as NewsItem;
    const once = (fail?: string) =>
      run(fail, async (bus) => {
        await bus.ensureTopics([topics.news]);
        await bus.publish(topics.news, [item('a'), item('b'), item('c')]);
        const svc = new NewsSignalService(bus, new SentimentScorer({ primary: backend as never }));
        await svc.start();
        await waitFor(
          'three signals',
          () => svc.stats.signals,
          (n) => n >= 3,
          { timeoutMs: 20_000 },
        );
        await svc.stop();
        return { ...svc.stats };
      });
    const uninterrupted = await once();
    assert.equal(uninterrupted.items, 3);
    assert.deepEqual(await once(topics.newsSignals.name), uninterrupted);
  });

  // The band (adaptive conformal) and the shrinkage learn as the batch is read, before its predictions are stored:
  // read again, the batch's first forecasts were adjusted with outcomes only its later vectors revealed (118 of 120
  // published forecasts differed, the first shrunk to persistence).
  it('predictions with the online band and shrinkage: the same forecasts published', async () => {
    const M = 60_000;
    const T = Date.UTC(2024, 5, 1, 12, 0);
    const model = linearServingModel;
    let close = 100;
    const vectors = Array.from({ length: 120 }, (_, k) => {
      close *= Math.exp((((k % 3 ? 1 : -1) * 40 + 5) / 1e4) as number);
      const values = FEATURE_COLUMNS.map((_, i) => (i === 0 ? (T + k * M) / 1e12 : 0));
      return featureVector({ pair: 'BTC/USDT', windowEnd: T + k * M, close, values });
    });
    const once = async (failStore: boolean) => {
      const bus = new InProcessBus();
      const store = new MemoryPredictionsStore();
      const writes = failStore ? failFirstWrite(store) : { tries: 0 };
      const svc = new PredictorService(bus, { current: () => model }, store, {
        clock: 'event',
        maxStalenessMs: 2 * M,
        logger: pino({ level: 'silent' }),
        adaptiveConformal: true,
        shrinkage: true,
      });
      try {
        await svc.start();
        const published = await collectValues(bus, topics.predictions);
        await bus.publish(topics.features, vectors);
        await waitFor(
          '120 predictions',
          () => published.length,
          (n) => n === 120,
          { timeoutMs: 30_000 },
        );
        assert.equal(writes.tries, failStore ? 2 : 0);
        return {
          forecasts: published.map((p) => [p.windowEnd, p.p10, p.predictedClose, p.p90]),
          stats: { ...svc.adjustments!.stats },
        };
      } finally {
        await svc.stop();
        await bus.close();
      }
    };
    const uninterrupted = await once(false);
    assert.ok(uninterrupted.stats.learnt > 100);
    assert.deepEqual(await once(true), uninterrupted);
  });
});
