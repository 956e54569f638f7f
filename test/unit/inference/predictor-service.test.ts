import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { FEATURE_COLUMNS } from '../../../src/features/technical.ts';
import { type AciOptions, applyOnline } from '../../../src/inference/adaptive-conformal.ts';
import type { ServingModel } from '../../../src/inference/model-holder.ts';
import { PredictorService } from '../../../src/inference/predictor-service.ts';
import { openPredictionsStore } from '../../../src/inference/store/open.ts';
import {
  type Delivered,
  partitionFor,
  READ_PAGE_RECORDS,
  type ReadPagesOptions,
  type ReadTailOptions,
} from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Topic } from '../../../src/runtime/topic.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { collectValues } from '../../support/collect.ts';
import { featureVector } from '../../support/factories.ts';
import { busFailingOnce, failFirstWrite } from '../../support/failing-once.ts';
import { scratchDir } from '../../support/scratch.ts';
import { linearServingModel } from '../../support/serving-model.ts';
import { waitFor } from '../../support/wait.ts';

/** The service on the in-process bus and a DuckDB file: what is predicted, skipped, stored and published. */
const T = Date.UTC(2024, 5, 1, 12, 0);
const M = 60_000;
const quiet = pino({ level: 'silent' });

function vector(pair: string, windowEnd: number, o: Partial<FeatureVectorRecord> = {}): FeatureVectorRecord {
  const values = FEATURE_COLUMNS.map((_, i) => (i === 0 ? windowEnd / 1e12 : 0));
  return featureVector({ pair, windowEnd, close: 100 + windowEnd / 1e10, values, ...o });
}

const model = linearServingModel;

async function setup(
  current: ServingModel | undefined,
  o: {
    clock?: 'wall' | 'event';
    logger?: pino.Logger;
    adaptiveConformal?: boolean | Partial<AciOptions>;
    history?: (pair: string, fromTs: number, toTs: number) => Promise<FeatureVectorRecord[]>;
    shrinkage?: boolean;
  } = {},
) {
  const { clock = 'event', logger = quiet, adaptiveConformal = false, history, shrinkage = false } = o;
  const bus = new InProcessBus();
  const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
  const holder = { current: () => current };
  const svc = new PredictorService(bus, holder, store, {
    clock,
    maxStalenessMs: 2 * M,
    logger,
    adaptiveConformal,
    history,
    shrinkage,
  });
  await svc.start();
  const published = await collectValues(bus, topics.predictions);
  const dead = await collectValues(bus, topics.dlq);
  /** Publishes the vectors and waits until the service has published one prediction for each. */
  const predictAll = async (vs: FeatureVectorRecord[]) => {
    const want = published.length + vs.length;
    await bus.publish(topics.features, vs);
    await svc.caughtUp();
    await waitFor(
      'every prediction published',
      () => published.length,
      (n) => n === want,
      { timeoutMs: 30_000 },
    );
  };
  const close = async () => {
    await svc.stop();
    await store.close();
    await bus.close();
  };
  return { bus, store, svc, published, dead, predictAll, close };
}

/**
 * `--adaptive-conformal` (a window of 60 scores) on 400 minutes of BTC/USDT, calm closes (±8 bps a minute) then
 * volatile ones (±40 bps), the predictor restarted at minute 300 with `between` run while none is up: asserts that every
 * band published after the restart, and α_t at the end, are an uninterrupted predictor's. Returns the restarted one.
 */
async function restartedWithAci(
  between: (bus: InProcessBus) => Promise<void> = async () => {},
  bus: InProcessBus = new InProcessBus(),
): Promise<PredictorService> {
  const aci = { window: 60, gamma: 0.01 };
  const zero = FEATURE_COLUMNS.map(() => 0);
  let price = 100;
  const vs = Array.from({ length: 400 }, (_, k) => {
    price *= Math.exp(((k % 2 ? 1 : -1) * (k < 200 ? 8 : 40) + 1) / 1e4);
    return vector('BTC/USDT', T + k * M, { close: price, values: zero });
  });
  const history = async (pair: string, from: number, to: number) =>
    vs.filter((v) => v.pair === pair && v.windowEnd >= from && v.windowEnd < to);
  const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
  const published = await collectValues(bus, topics.predictions);
  const predictor = () =>
    new PredictorService(bus, { current: () => model }, store, {
      clock: 'event',
      logger: quiet,
      adaptiveConformal: aci,
      history,
    });
  const publishAndWait = async (svc: PredictorService, input: FeatureVectorRecord[], want: number) => {
    await bus.publish(topics.features, input);
    await svc.caughtUp();
    await waitFor(
      'every prediction published',
      () => published.length,
      (n) => n === want,
      { timeoutMs: 30_000 },
    );
  };
  try {
    const first = predictor();
    await first.start();
    await publishAndWait(first, vs.slice(0, 300), 300);
    await first.stop();
    await between(bus);
    const second = predictor();
    await second.start();
    await publishAndWait(second, vs.slice(300), 400);
    await second.stop();

    const uninterrupted = await setup(model, { adaptiveConformal: aci });
    try {
      await uninterrupted.predictAll(vs);
      const band = (p: Prediction) => [p.windowEnd, p.p10, p.p90];
      assert.deepEqual(
        published.slice(300).map(band),
        uninterrupted.published.slice(300).map(band),
        'the bands after the restart are the uninterrupted ones',
      );
      assert.deepEqual(
        second.adjustments!.alpha('binance|BTC/USDT'),
        uninterrupted.svc.adjustments!.alpha('binance|BTC/USDT'),
      );
    } finally {
      await uninterrupted.close();
    }
    return second;
  } finally {
    await store.close();
    await bus.close();
  }
}

/** An in-process bus that records each readTail and, per topic, the pages readPages hands and the largest of them. */
class ReadsSeen extends InProcessBus {
  readonly tails: { topic: string; perPartition: number }[] = [];
  readonly largestPage = new Map<string, number>();
  readonly pages = new Map<string, number>();
  override readTail<T>(topic: Topic<T>, perPartition: number, options?: ReadTailOptions) {
    this.tails.push({ topic: topic.name, perPartition });
    return super.readTail(topic, perPartition, options);
  }
  override readPages<T>(
    topic: Topic<T>,
    onPage: (page: readonly Delivered<T>[]) => void | Promise<void>,
    options?: ReadPagesOptions,
  ) {
    return super.readPages(
      topic,
      (page) => {
        this.pages.set(topic.name, (this.pages.get(topic.name) ?? 0) + 1);
        this.largestPage.set(topic.name, Math.max(this.largestPage.get(topic.name) ?? 0, page.length));
        return onPage(page);
      },
      options,
    );
  }
}

describe('PredictorService (in-process bus, DuckDB)', () => {
  it('predicts ready technical vectors into the store and the topic, and counts the rest by reason', async () => {
    const { bus, store, svc, published, dead, close } = await setup(model);
    try {
      const vs = [
        vector('BTC/USDT', T, { ready: false }),
        ...Array.from({ length: 20 }, (_, i) => vector('BTC/USDT', T + (i + 1) * M)),
        ...Array.from({ length: 10 }, (_, i) => vector('ETH/USDT', T + i * M)),
        vector('ETH/USDT', T + 20 * M, { featureSet: 'news_sentiment', values: [1] }),
        vector('ETH/USDT', T + 21 * M, { values: [1, 2] }),
      ];
      await bus.publish(topics.features, vs);
      await svc.caughtUp();
      await waitFor(
        'thirty predictions and a dead letter on the topics',
        () => ({ published: published.length, dead: dead.length }),
        (n) => n.published >= 30 && n.dead >= 1,
        { everyMs: 5 },
      );
      assert.equal(svc.stats.predicted, 30);
      assert.deepEqual(svc.stats.skipped, {
        other_set: 1,
        invalid: 1,
        not_ready: 1,
        no_champion: 0,
        stale: 0,
        model_error: 0,
      });
      assert.equal(await store.count(), 30);
      const stored = await store.history('BTC/USDT', 0, T + 100 * M);
      assert.deepEqual(
        stored.map((p) => p.windowEnd),
        vs.slice(1, 21).map((v) => v.windowEnd),
      );
      const byKey = (p: Prediction) => `${p.pair}|${p.windowEnd}`;
      assert.deepEqual(
        [...published].sort((a, b) => byKey(a).localeCompare(byKey(b))),
        [...stored, ...(await store.history('ETH/USDT', 0, T + 100 * M))].sort((a, b) =>
          byKey(a).localeCompare(byKey(b)),
        ),
        'the topic and the store agree',
      );
      const p = stored[0]!;
      assert.equal(p.predictedReturnBps, ((T + M) / 1e12) * 1e3);
      assert.equal(p.modelVersion, 4);
      assert.equal(p.latencyMs, 0, 'event clock: in order, a vector is predicted at its own windowEnd');
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.kind, 'invalid');
    } finally {
      await close();
    }
  });

  it('makes no prediction without a champion, nor for stale vectors on the wall clock', async () => {
    const none = await setup(undefined);
    try {
      await none.bus.publish(topics.features, [vector('BTC/USDT', T)]);
      await none.svc.caughtUp();
      assert.equal(none.svc.stats.skipped.no_champion, 1);
      assert.equal(await none.store.count(), 0);
    } finally {
      await none.svc.stop();
      await none.store.close();
    }
    const wall = await setup(model, { clock: 'wall' });
    try {
      const now = Date.now();
      await wall.bus.publish(topics.features, [vector('BTC/USDT', T), vector('BTC/USDT', now - M)]);
      await wall.svc.caughtUp();
      assert.equal(wall.svc.stats.skipped.stale, 1);
      assert.equal(wall.svc.stats.predicted, 1);
      assert.deepEqual(
        (await wall.store.history('BTC/USDT', 0, now)).map((p) => p.windowEnd),
        [now - M],
      );
      const p = (await wall.store.latest('BTC/USDT'))!;
      assert.ok(p.latencyMs >= M && p.latencyMs < M + 10_000);
    } finally {
      await wall.svc.stop();
      await wall.store.close();
    }
  });

  it('warns about stale vectors, rate-limited, with their count', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const s = await setup(model, { clock: 'wall', logger });
    try {
      await s.bus.publish(
        topics.features,
        Array.from({ length: 50 }, (_, i) => vector('BTC/USDT', T + i * M)),
      );
      await s.svc.caughtUp();
      assert.equal(s.svc.stats.skipped.stale, 50);
      assert.equal(await s.store.count(), 0);
      await s.bus.publish(topics.features, [vector('BTC/USDT', T + 60 * M)]);
      await s.svc.caughtUp();
      const stale = () => lines.filter((l) => /stale/.test(String(l.msg)));
      const warnings = stale();
      assert.equal(warnings.length, 1, 'one warning per 10 s, not one per vector');
      assert.equal(warnings[0]!.count, 50);
      assert.equal(warnings[0]!.total, 50);
      assert.equal(warnings[0]!.maxStalenessMs, 2 * M);
      assert.equal(warnings[0]!.clock, 'wall');
      assert.ok(Number(warnings[0]!.ageMs) > 2 * M);
      await s.svc.stop();
      // What was held back by the rate limit is reported on stop.
      assert.equal(stale().length, 2);
      assert.equal(stale()[1]!.count, 1);
      assert.equal(stale()[1]!.total, 51);
    } finally {
      await s.svc.stop();
      await s.store.close();
    }
  });

  it('uses the champion current at each vector: a promotion mid-stream changes the version, nothing is lost', async () => {
    const bus = new InProcessBus();
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    let current: ServingModel = model;
    const svc = new PredictorService(bus, { current: () => current }, store, {
      clock: 'event',
      logger: quiet,
    });
    await svc.start();
    try {
      await bus.publish(topics.features, [vector('BTC/USDT', T), vector('BTC/USDT', T + M)]);
      await svc.caughtUp();
      current = { ...model, card: { ...model.card, version: 5 } };
      await bus.publish(topics.features, [vector('BTC/USDT', T + 2 * M)]);
      await svc.caughtUp();
      assert.deepEqual(
        (await store.history('BTC/USDT', 0, T + 10 * M)).map((p) => [p.windowEnd - T, p.modelVersion]),
        [
          [0, 4],
          [M, 4],
          [2 * M, 5],
        ],
      );
    } finally {
      await svc.stop();
      await store.close();
      await bus.close();
    }
  });

  it('holds the features while the registry does not answer, then predicts every one of them (none skipped)', async () => {
    const bus = new InProcessBus();
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    let served: ServingModel | undefined;
    let reachable = false;
    let asked = 0;
    const holder = {
      current: () => served,
      waitingForChampion: () => {
        asked++;
        return served === undefined && !reachable;
      },
    };
    const svc = new PredictorService(bus, holder, store, {
      clock: 'event',
      maxStalenessMs: 60 * M,
      logger: quiet,
    });
    await svc.start();
    try {
      await bus.publish(
        topics.features,
        Array.from({ length: 10 }, (_, i) => vector('BTC/USDT', T + i * M)),
      );
      // The batch is handed over and refused (the registry is away): nothing predicted, nothing skipped.
      await waitFor(
        'the batch refused, then offered again',
        () => asked,
        (n) => n >= 2,
        { timeoutMs: 10_000 },
      );
      assert.equal(svc.stats.vectors, 0, 'nothing consumed while the registry is away');
      assert.equal(svc.stats.skipped.no_champion, 0);
      reachable = true;
      served = model;
      await waitFor(
        'every held vector predicted',
        () => svc.stats.predicted,
        (n) => n === 10,
        { timeoutMs: 30_000 },
      );
      assert.equal(await store.count(), 10);
      assert.equal(svc.stats.skipped.no_champion, 0);
    } finally {
      await svc.stop();
      await store.close();
    }
  });

  it('--adaptive-conformal: publishes the band adjusted by matured outcomes, the same in the store and the topic', async () => {
    const { store, svc, published, predictAll, close } = await setup(model, { adaptiveConformal: true });
    try {
      // Closes that move ±40 bps a minute: the model's ±10 bps band misses most 5-minute outcomes.
      let close = 100;
      const vs = Array.from({ length: 120 }, (_, k) => {
        close *= Math.exp(((k % 2 ? 1 : -1) * 40 + 5) / 1e4);
        return vector('BTC/USDT', T + k * M, { close });
      });
      await predictAll(vs);
      const width = (p: Prediction) => Math.log(p.p90 / p.p10) * 1e4;
      // Nothing has matured during the first 5 minutes: the model's own band (±10 bps).
      for (const p of published.slice(0, 5)) assert.ok(Math.abs(width(p) - 20) < 1e-6, `${width(p)}`);
      assert.ok(width(published[100]!) > 40, `widened after misses: ${width(published[100]!)}`);
      assert.equal(svc.adjustments!.stats.learnt, 115);
      const stored = await store.history('BTC/USDT', 0, T + 200 * M);
      assert.deepEqual(stored, published, 'the topic and the store agree');
    } finally {
      await close();
    }
  });

  it('--adaptive-conformal --shrinkage after a restart: the state rebuilt from the stored history publishes what an uninterrupted predictor does', async () => {
    // Closes that move ±40 bps a minute: the band widens as outcomes mature, so an empty state would publish ±10 bps.
    let close = 100;
    const vs = Array.from({ length: 160 }, (_, k) => {
      close *= Math.exp(((k % 3 ? 1 : -1) * 40 + 5) / 1e4);
      return vector('BTC/USDT', T + k * M, { close });
    });
    const runOn = async (
      input: FeatureVectorRecord[],
      history?: (pair: string, fromTs: number, toTs: number) => Promise<FeatureVectorRecord[]>,
    ) => {
      const { svc, published, predictAll, close } = await setup(model, {
        adaptiveConformal: true,
        history,
        shrinkage: true,
      });
      try {
        await predictAll(input);
        return { published: [...published], stats: { ...svc.adjustments!.stats } };
      } finally {
        await close();
      }
    };
    const whole = await runOn(vs);
    const asked: [string, number, number][] = [];
    // The restarted predictor sees only the last 60 vectors; the store holds the 100 before (and one from after, which
    // must not be used: the history is read strictly before the first live vector).
    const stored = [...vs.slice(0, 101)];
    const restarted = await runOn(vs.slice(100), async (pair, from, to) => {
      asked.push([pair, from, to]);
      return stored.filter((v) => v.pair === pair && v.windowEnd >= from && v.windowEnd < to);
    });
    assert.equal(asked.length, 1, 'one history read per pair');
    assert.equal(asked[0]![2], T + 100 * M, 'up to the first live vector, excluded');
    assert.ok(asked[0]![1] <= T + 100 * M - 10_080 * M, 'a window of scores back');
    assert.equal(restarted.stats.warmUpVectors, 100);
    assert.deepEqual(
      restarted.published,
      whole.published.slice(100),
      'the same forecasts as without the restart',
    );
    assert.ok(
      whole.published.some((p, k) => p.predictedReturnBps !== vs[k]!.values[0]! * 1e3),
      'the gate shrank some forecasts (the test would see a gate that forgot)',
    );
    // Without the history the restarted band starts from the model's own ±10 bps: the test would see it.
    const cold = await runOn(vs.slice(100));
    assert.notDeepEqual(cold.published, whole.published.slice(100));
  });

  it('--adaptive-conformal restarted after more than a window of uptime: α_t read back from predictor.aci, every band as uninterrupted', async () => {
    // α_t sums every outcome since the start, the warm-up reads a window and an hour: a window of 60 scores and a
    // restart at minute 300 (a window of uptime is 2 hours here). Calm closes (±8 bps a minute, inside the model's
    // ±10 bps band) then volatile ones (±40 bps): α_t moves with both, so one rebuilt from minute 180 would differ.
    const second = await restartedWithAci();
    assert.equal(second.adjustments!.stats.warmUpVectors, 120, 'the warm-up replayed a window and an hour');
  });

  it('--adaptive-conformal restarted: a pair quiet on a predictor.aci partition a busy pair shares still gets its α_t back', async () => {
    // The restart of the test above, but between the two predictors another pair on the same partition of
    // `predictor.aci` writes 1,500 states (a busy pair, or many pairs, over a week): BTC/USDT's last states are then
    // more than 1,000 records back on that partition, and must still be read.
    let busy = '';
    for (let i = 0; busy === ''; i++)
      if (partitionFor(`P${i}/USDT`, 4) === partitionFor('BTC/USDT', 4)) busy = `P${i}/USDT`;
    await restartedWithAci((bus) =>
      bus.publish(
        topics.predictorAci,
        Array.from({ length: 1_500 }, (_, k) => ({
          v: 1 as const,
          exchange: 'binance',
          pair: busy,
          windowEnd: T + k * M,
          alphaLower: 0.1,
          alphaUpper: 0.1,
        })),
      ),
    );
  });

  it('--adaptive-conformal restarted: predictions and predictor.aci are folded a page at a time, never held whole', async () => {
    // As above (BTC/USDT's states behind 1,500 of a busy pair on its partition), on a bus that records how the
    // predictor reads the two topics on start: in pages of at most READ_PAGE_RECORDS, never a whole topic at once
    // (retention alone bounded that: every record of every pair for a week), and the quiet pair still restored.
    let busy = '';
    for (let i = 0; busy === ''; i++)
      if (partitionFor(`P${i}/USDT`, 4) === partitionFor('BTC/USDT', 4)) busy = `P${i}/USDT`;
    const bus = new ReadsSeen();
    await restartedWithAci(
      (b) =>
        b.publish(
          topics.predictorAci,
          Array.from({ length: 1_500 }, (_, k) => ({
            v: 1 as const,
            exchange: 'binance',
            pair: busy,
            windowEnd: T + k * M,
            alphaLower: 0.1,
            alphaUpper: 0.1,
          })),
        ),
      bus,
    );
    for (const topic of [topics.predictions.name, topics.predictorAci.name]) {
      assert.deepEqual(
        bus.tails.filter((t) => t.topic === topic),
        [],
        `${topic} read with readTail (the whole topic in one array)`,
      );
      const largest = bus.largestPage.get(topic);
      assert.ok(
        largest !== undefined && largest > 0 && largest <= READ_PAGE_RECORDS,
        `${topic}: largest page ${largest}`,
      );
    }
    assert.ok(bus.pages.get(topics.predictorAci.name)! > 1, 'predictor.aci came in more than one page');
  });

  it('--adaptive-conformal restarted after a promotion: the window is rebuilt with the bands the old champion published, every band as uninterrupted', async () => {
    // Champion A (±10 bps) until minute 290, then B (±30 bps); a restart at minute 300 replays minutes 180–299 of the
    // store. Predicted again with B, the old champion's forecasts gave other scores than the ones the uninterrupted
    // predictor learnt (measured: 111 of the 120 bands after the restart differed, by up to 67 % of their width).
    const aci = { window: 60, gamma: 0.01 };
    const zero = FEATURE_COLUMNS.map(() => 0);
    const wider: ServingModel = {
      card: { ...model.card, version: model.card.version + 1 },
      predict: (v) => ({
        returnBps: v.values[0]! * 1e3,
        p10Bps: v.values[0]! * 1e3 - 30,
        p90Bps: v.values[0]! * 1e3 + 30,
      }),
    };
    let price = 100;
    const vs = Array.from({ length: 420 }, (_, k) => {
      price *= Math.exp(((k % 2 ? 1 : -1) * 20 + ((k * 7) % 11) - 5) / 1e4);
      return vector('BTC/USDT', T + k * M, { close: price, values: zero });
    });
    const history = async (pair: string, from: number, to: number) =>
      vs.filter((v) => v.pair === pair && v.windowEnd >= from && v.windowEnd < to);
    const bandsOf = async (restartAt: number | undefined) => {
      const bus = new InProcessBus();
      const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
      const published = await collectValues(bus, topics.predictions);
      let champion = model;
      const predictor = () =>
        new PredictorService(bus, { current: () => champion }, store, {
          clock: 'event',
          logger: quiet,
          adaptiveConformal: aci,
          history,
        });
      const feed = async (svc: PredictorService, from: number, to: number) => {
        await bus.publish(topics.features, vs.slice(from, to));
        await svc.caughtUp();
        await waitFor(
          'every prediction published',
          () => published.length,
          (n) => n === to,
          { timeoutMs: 30_000 },
        );
      };
      try {
        let svc = predictor();
        await svc.start();
        await feed(svc, 0, 290);
        champion = wider; // promoted: the hot swap keeps the state
        await feed(svc, 290, restartAt ?? vs.length);
        if (restartAt !== undefined) {
          await svc.stop();
          svc = predictor();
          await svc.start();
          await feed(svc, restartAt, vs.length);
        }
        await svc.stop();
        return {
          bands: published.map((p) => [p.windowEnd, p.modelVersion, p.p10, p.p90]),
          alpha: svc.adjustments!.alpha('binance|BTC/USDT'),
        };
      } finally {
        await store.close();
        await bus.close();
      }
    };
    const uninterrupted = await bandsOf(undefined);
    const restarted = await bandsOf(300);
    assert.deepEqual(
      restarted.bands.slice(300),
      uninterrupted.bands.slice(300),
      'the bands after the restart are the uninterrupted ones',
    );
    assert.deepEqual(restarted.alpha, uninterrupted.alpha);
  });

  it('--adaptive-conformal restarted: the vectors live found stale are learnt from live as in the warm-up', async () => {
    // On the wall clock a predictor that fell behind skipped stale vectors and learnt nothing from them, while a warm-up
    // predicts every stored vector again (at its own windowEnd none is stale): a restart learnt outcomes the
    // uninterrupted predictor never learnt. Minutes 150–164 are read late.
    const aci = { window: 60, gamma: 0.01 };
    const zero = FEATURE_COLUMNS.map(() => 0);
    let price = 100;
    const vs = Array.from({ length: 300 }, (_, k) => {
      price *= Math.exp(((k % 3 ? 1 : -1) * 30 + ((k * 7919) % 23) / 3) / 1e4);
      return vector('BTC/USDT', T + k * M, { close: price, values: zero });
    });
    const late = new Set(vs.slice(150, 165).map((v) => v.windowEnd));
    const clock = {
      kind: 'wall' as const,
      now: (v: FeatureVectorRecord) => v.windowEnd + (late.has(v.windowEnd) ? 10 * M : 0),
    };
    const history = async (pair: string, from: number, to: number) =>
      vs.filter((v) => v.pair === pair && v.windowEnd >= from && v.windowEnd < to);
    const bands = async (restartAt: number | undefined) => {
      const bus = new InProcessBus();
      const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
      const published = await collectValues(bus, topics.predictions);
      const predictor = () =>
        new PredictorService(bus, { current: () => model }, store, {
          clock,
          maxStalenessMs: 2 * M,
          logger: quiet,
          adaptiveConformal: aci,
          history,
        });
      try {
        let svc = predictor();
        await svc.start();
        const runs: [number, number][] =
          restartAt === undefined
            ? [[0, 300]]
            : [
                [0, restartAt],
                [restartAt, 300],
              ];
        for (const [from, to] of runs) {
          if (from > 0) {
            await svc.stop();
            svc = predictor();
            await svc.start();
          }
          await bus.publish(topics.features, vs.slice(from, to));
          await svc.caughtUp();
          const want = vs.slice(0, to).filter((v) => !late.has(v.windowEnd)).length;
          await waitFor(
            'every prediction published',
            () => published.length,
            (n) => n === want,
            {
              timeoutMs: 30_000,
            },
          );
        }
        await svc.stop();
        return published.filter((p) => p.windowEnd >= T + 200 * M).map((p) => [p.windowEnd, p.p10, p.p90]);
      } finally {
        await store.close();
        await bus.close();
      }
    };
    const uninterrupted = await bands(undefined);
    assert.equal(uninterrupted.length, 100);
    assert.deepEqual(
      await bands(200),
      uninterrupted,
      'the bands after the restart are the uninterrupted ones',
    );
  });

  it('--adaptive-conformal over a hot swap of the champion: the band keeps its state, as evaluate --adaptive-conformal replays it', async () => {
    // Version 4 (±10 bps) serves 150 minutes, then version 5 (±25 bps) is promoted. The state is per pair, not per
    // model (docs/inference.md): the first bands of version 5 are adjusted by what version 4's outcomes taught, and
    // the whole stream is what applyOnline (the replay of evaluate|backtest --adaptive-conformal) publishes.
    const wide: ServingModel = {
      card: { ...model.card, version: 5 },
      predict: (v) => ({ returnBps: 0, p10Bps: v.values[0]! - 25, p90Bps: v.values[0]! + 25 }),
    };
    const zero = FEATURE_COLUMNS.map(() => 0);
    let price = 100;
    const vs = Array.from({ length: 300 }, (_, k) => {
      // Irregular moves: an outcome exactly on a band edge would be a hit or a miss by a rounding (the live band is
      // read back from prices, the replay's is in bps).
      price *= Math.exp(((k % 3 ? 1 : -1) * 30 + 7 * Math.sin(k)) / 1e4);
      return vector('BTC/USDT', T + k * M, { close: price, values: zero });
    });
    let current = model;
    const bus = new InProcessBus();
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    const svc = new PredictorService(bus, { current: () => current }, store, {
      clock: 'event',
      logger: quiet,
      adaptiveConformal: true,
    });
    try {
      await svc.start();
      const published = await collectValues(bus, topics.predictions);
      for (const [from, to] of [
        [0, 150],
        [150, 300],
      ] as const) {
        if (from === 150) current = wide;
        await bus.publish(topics.features, vs.slice(from, to));
        await svc.caughtUp();
        await waitFor(
          'every prediction published',
          () => published.length,
          (n) => n === to,
          {
            timeoutMs: 30_000,
          },
        );
      }
      assert.deepEqual([published[149]!.modelVersion, published[150]!.modelVersion], [4, 5]);
      const bps = (x: number, k: number) => Math.log(x / vs[k]!.close) * 1e4;
      const half = (p: Prediction, k: number) => (bps(p.p90, k) - bps(p.p10, k)) / 2;
      assert.ok(Math.abs(half(published[150]!, 150) - 25) > 1, 'the new champion’s first band is adjusted');
      const offline = applyOnline({
        key: new Float64Array(300),
        windowEnd: Float64Array.from(vs, (v) => v.windowEnd),
        horizonMs: 5 * M,
        p10: Float64Array.from(vs, (_, k) => (k < 150 ? -10 : -25)),
        p90: Float64Array.from(vs, (_, k) => (k < 150 ? 10 : 25)),
        actual: Float64Array.from(vs, (v, k) =>
          k + 5 < 300 ? Math.log(vs[k + 5]!.close / v.close) * 1e4 : 0,
        ),
      });
      for (let k = 0; k < 300; k++) {
        assert.ok(Math.abs(bps(published[k]!.p10, k) - offline.lo[k]!) < 1e-6, `p10 at minute ${k}`);
        assert.ok(Math.abs(bps(published[k]!.p90, k) - offline.hi[k]!) < 1e-6, `p90 at minute ${k}`);
      }
    } finally {
      await svc.stop();
      await store.close();
      await bus.close();
    }
  });

  it('--adaptive-conformal: a history that fails leaves the band empty and predictions flowing', async () => {
    const vs = Array.from({ length: 10 }, (_, k) => vector('BTC/USDT', T + k * M));
    const { svc, predictAll, close } = await setup(model, {
      adaptiveConformal: true,
      history: async () => {
        throw new Error('Catalog Error: Table with name fs_technical_v1 does not exist!');
      },
    });
    try {
      await predictAll(vs);
      assert.equal(svc.adjustments!.stats.warmUpVectors, 0);
    } finally {
      await close();
    }
  });
});

describe('PredictorService: a batch read again after a crash, its pair quiet on a busy predictions partition', () => {
  // On start the service learns the newest windowEnd it published per pair from the predictions topic. It read the
  // last 1,000 records of each partition: when another pair (or many) had written more than that since on the same
  // partition, a quiet pair's newest was missed and the batch read again after a crash between publish and commit
  // was published a second time.
  it('is not published twice', async () => {
    let busy = '';
    for (let i = 0; busy === ''; i++)
      if (partitionFor(`P${i}/USDT`, 4) === partitionFor('BTC/USDT', 4)) busy = `P${i}/USDT`;
    const bus = new InProcessBus();
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    const published = await collectValues(bus, topics.predictions);
    const predictor = (group: string) =>
      new PredictorService(bus, { current: () => model }, store, { clock: 'event', logger: quiet, group });
    const vs = Array.from({ length: 5 }, (_, k) => vector('BTC/USDT', T + k * M));
    try {
      const first = predictor('predictor');
      await first.start();
      await bus.publish(topics.features, vs);
      await waitFor(
        'the batch published',
        () => published.length,
        (n) => n === vs.length,
        { timeoutMs: 30_000 },
      );
      await first.stop();
      const btc = published.slice();
      // The busy pair's predictions, after BTC/USDT's on the same partition.
      await bus.publish(
        topics.predictions,
        Array.from({ length: 1_500 }, (_, k) => ({ ...btc[0]!, pair: busy, windowEnd: T + k * M })),
      );
      // A group that has committed nothing reads the batch again: the batch whose offsets a crash left uncommitted.
      const second = predictor('predictor-restarted');
      await second.start();
      await waitFor(
        'the batch read again',
        () => second.stats.vectors,
        (n) => n === vs.length,
        { timeoutMs: 30_000 },
      );
      await second.stop();
      assert.equal(
        second.stats.alreadyPublished,
        vs.length,
        'every prediction of the batch found already published',
      );
      assert.deepEqual(
        published.filter((p) => p.pair === 'BTC/USDT').map((p) => p.windowEnd),
        btc.map((p) => p.windowEnd),
        'BTC/USDT published once',
      );
    } finally {
      await store.close();
      await bus.close();
    }
  });
});

describe('PredictorService: a batch that fails at its last step (the dead letters) comes again', () => {
  // The predictions were counted before the batch's dead letters were sent: when that failed, the batch came again,
  // its predictions were stored again (the same rows) and counted twice.
  it('each prediction and each skip counted once, when the whole batch went through', async () => {
    const { bus, inner, state } = busFailingOnce(topics.dlq.name);
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    const svc = new PredictorService(bus, { current: () => model }, store, {
      clock: 'event',
      logger: quiet,
    });
    try {
      await svc.start();
      await bus.publish(topics.features, [
        vector('BTC/USDT', T),
        vector('BTC/USDT', T + M),
        vector('BTC/USDT', T + 2 * M, { ready: false }),
        vector('BTC/USDT', T + 3 * M, { values: [1, 2] }), // invalid: a dead letter
      ]);
      await waitFor(
        'the batch through, its dead letter sent at the second attempt',
        () => ({ failures: state.failures, vectors: svc.stats.vectors }),
        (s) => s.failures === 2 && s.vectors === 4,
        { timeoutMs: 30_000 },
      );
      assert.equal(await store.count(), 2);
      assert.equal(svc.stats.predicted, 2);
      assert.equal(svc.stats.skipped.not_ready, 1);
      assert.equal(svc.stats.skipped.invalid, 1);
    } finally {
      await svc.stop();
      await store.close();
      await inner.close();
    }
  });
});

describe('PredictorService on the event clock: a batch delivered again after a failure', () => {
  // The first attempt moved the event clock to the batch's newest vector: read again, its older vectors were more
  // than maxStalenessMs behind it, skipped as stale and committed — a replay lost a batch's predictions for good
  // to one failed store write.
  it('is read by the clock as it was before the batch: every prediction is made and stored', async () => {
    const bus = new InProcessBus();
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    const writes = failFirstWrite(store);
    const svc = new PredictorService(bus, { current: () => model }, store, {
      clock: 'event',
      maxStalenessMs: 2 * M,
      logger: quiet,
    });
    try {
      await svc.start();
      await bus.publish(
        topics.features,
        Array.from({ length: 10 }, (_, i) => vector('BTC/USDT', T + i * M)),
      );
      await waitFor(
        'the batch through at its second attempt',
        () => svc.stats.vectors,
        (n) => n === 10,
        {
          timeoutMs: 30_000,
        },
      );
      assert.equal(writes.tries, 2);
      assert.equal(svc.stats.skipped.stale, 0);
      assert.equal(await store.count(), 10);
    } finally {
      await svc.stop();
      await store.close();
      await bus.close();
    }
  });
});

describe('PredictorService: a partition that moves to another predictor and back', () => {
  it('--adaptive-conformal: its pairs are rebuilt from the store on return, publishing what one predictor would', async () => {
    // A pair on a partition the second member is given (the in-process bus deals partitions round-robin: the first
    // member keeps the even ones).
    const pair = ['BTC/USDT', 'ETH/USDT', 'SOL/USDT', 'XRP/USDT', 'ADA/USDT'].find(
      (p) => partitionFor(p, 4) % 2 === 1,
    )!;
    let close = 100;
    const vs = Array.from({ length: 260 }, (_, k) => {
      close *= Math.exp(((k % 3 ? 1 : -1) * 40 + 5) / 1e4);
      return vector(pair, T + k * M, { close });
    });
    // The feature store, caught up: the vectors of the pair before `to`.
    const history = async (p: string, from: number, to: number) =>
      vs.filter((v) => v.pair === p && v.windowEnd >= from && v.windowEnd < to);
    const bands = (ps: readonly Prediction[]) =>
      ps.filter((p) => p.windowEnd >= T + 160 * M).map((p) => [p.windowEnd, p.p10, p.p90]);

    const alone = await setup(model, { adaptiveConformal: true, history });
    let uninterrupted: number[][];
    try {
      await alone.predictAll(vs);
      uninterrupted = bands(alone.published);
    } finally {
      await alone.close();
    }

    const bus = new InProcessBus();
    const stores = [
      await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'a.duckdb')}`),
      await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'b.duckdb')}`),
    ];
    const member = (i: number) =>
      new PredictorService(bus, { current: () => model }, stores[i]!, {
        clock: 'event',
        maxStalenessMs: 2 * M,
        logger: quiet,
        adaptiveConformal: true,
        history,
      });
    const first = member(0);
    const second = member(1);
    try {
      await first.start();
      const published = await collectValues(bus, topics.predictions);
      const publishedUpTo = (n: number) =>
        waitFor(
          'predictions published',
          () => published.length,
          (k) => k === n,
          { timeoutMs: 30_000 },
        );
      await bus.publish(topics.features, vs.slice(0, 100));
      await first.caughtUp();
      await publishedUpTo(100);
      // The second predictor joins and takes the pair's partition for 60 minutes, then leaves: it comes back.
      await second.start();
      await bus.publish(topics.features, vs.slice(100, 160));
      await second.caughtUp();
      await publishedUpTo(160);
      assert.equal(second.stats.predicted, 60, 'the second predictor had the pair');
      await second.stop();
      await bus.publish(topics.features, vs.slice(160));
      await first.caughtUp();
      await publishedUpTo(260);
      assert.deepEqual(
        bands(published),
        uninterrupted,
        'the bands of one predictor that never lost the pair',
      );
    } finally {
      await first.stop();
      await second.stop();
      for (const s of stores) await s.close();
      await bus.close();
    }
  });
});
