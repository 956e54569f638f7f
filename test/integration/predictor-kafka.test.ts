import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { readOhlcv } from '../../src/candles/ohlcv-files.ts';
import { toRecord } from '../../src/features/feature-service.ts';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { openFeatureStore } from '../../src/features/store/open.ts';
import { FEATURE_COLUMNS, TechnicalFeatures } from '../../src/features/technical.ts';
import { ChampionHolder } from '../../src/inference/model-holder.ts';
import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import { PredictorService } from '../../src/inference/predictor-service.ts';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { XgbModel } from '../../src/inference/xgboost-model.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import { topics } from '../../src/schemas/topics.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { type ModelFiles, nativePredict, registerModel, trainModels } from '../support/champion.ts';
import { SHARED_DATA } from '../support/data.ts';
import { ensureKafka, KAFKA_URL, serviceEnv, uniquePrefix, waitForGroupCommitted } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The predictor on the real Kafka broker: real feature vectors (two days of Binance BTC/USDT and ETH/USDT minutes
 * through TechnicalFeatures) published to `features`, a real XGBoost champion (trained here by the trainer's Python
 * on the first day) in a local registry, the event clock (a replay). The predictions topic and the DuckDB store must
 * hold one prediction per ready vector, equal to calling the three models directly (and to native XGBoost). Then the
 * predictor as a child process, SIGKILLed right after publishing a batch (before committing), and restarted: no
 * gaps and no duplicates, in the store or on the topic.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const DAYS = ['2022-06-01', '2022-06-02'];
const HORIZON = 300_000;
const NAME = 'price';

interface Fixture {
  vectors: FeatureVectorRecord[];
  ready: FeatureVectorRecord[];
  files: ModelFiles;
  registryDir: string;
}

async function fixture(): Promise<Fixture> {
  const engine = new TechnicalFeatures();
  const vectors: FeatureVectorRecord[] = [];
  for (const symbol of ['BTCUSDT', 'ETHUSDT'])
    for (const day of DAYS)
      for await (const b of readOhlcv(join(BINANCE, symbol, `${symbol}-1m-${day}.zip`)))
        for (const c of b.candles) vectors.push(toRecord('binance', engine.update(c)));
  // Train on the first day's ready rows: target = log return to windowEnd + 5 min, looked up by time, in bps.
  const close = new Map(vectors.map((v) => [`${v.pair}|${v.windowEnd}`, v.close]));
  const idx = MODEL_COLUMNS.map((c) => FEATURE_COLUMNS.indexOf(c as (typeof FEATURE_COLUMNS)[number]));
  const X: (number | null)[][] = [];
  const y: number[] = [];
  const dayEnd = Date.parse(`${DAYS[1]}T00:00:00Z`);
  for (const v of vectors) {
    const later = close.get(`${v.pair}|${v.windowEnd + HORIZON}`);
    if (!v.ready || v.windowEnd >= dayEnd || later === undefined) continue;
    X.push(idx.map((i) => v.values[i]!));
    y.push(1e4 * Math.log(later / v.close));
  }
  const files = trainModels(X, y, 30);
  const registryDir = scratchDir('cc-pred-reg-');
  await registerModel(new LocalRegistry(registryDir), NAME, MODEL_COLUMNS, files, { horizonMs: HORIZON });
  return { vectors, ready: vectors.filter((v) => v.ready), files, registryDir };
}

const key = (p: { pair: string; windowEnd: number }) => `${p.pair}|${p.windowEnd}`;
const byKey = (a: Prediction, b: Prediction) => a.pair.localeCompare(b.pair) || a.windowEnd - b.windowEnd;

/** Every prediction of the store, page by page. */
async function allStored(store: PredictionsStore, pairs: string[]): Promise<Prediction[]> {
  const out: Prediction[] = [];
  for (const pair of pairs) {
    let after: number | undefined;
    for (;;) {
      const page = await store.history(pair, 0, 4_102_444_800_000, { after, limit: 1000 });
      if (page.length === 0) break;
      out.push(...page);
      after = page[page.length - 1]!.windowEnd;
    }
  }
  return out;
}

/**
 * The predictions topic once the predictor has handled every feature vector (`drained`): it publishes a batch
 * before it commits it, so everything it will ever publish for them, duplicates included, is there.
 */
async function readPredictions(bus: KafkaBus, drained: () => Promise<void>): Promise<Prediction[]> {
  await drained();
  return (await bus.readTail<Prediction>(topics.predictions, 100_000)).map((r) => r.value).sort(byKey);
}

/** `cryptocast service predictor` (its command function) in a child process, on the event clock. */
function startPredictor(prefix: string, storeFile: string, registryDir: string, fault = ''): ChildProcess {
  const opts = JSON.stringify({
    bus: KAFKA_URL,
    store: `duckdb:${storeFile}`,
    registry: registryDir,
    name: NAME,
    clock: 'event',
    maxStaleness: '2m',
    poll: '30s',
  });
  const script = `const m = await import(${JSON.stringify(join(ROOT, 'src/cli/commands/predictor.ts'))}); await m.predictorService(${opts});`;
  return spawn(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script],
    {
      cwd: scratchDir('pred-cwd-'), // the model cache goes there
      env: serviceEnv(prefix, fault),
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
}

describe('predictor service on Kafka (real features, a real XGBoost champion)', () => {
  let fx: Fixture;
  before(async () => {
    await ensureKafka();
    fx = await fixture();
  });

  it('publishes and stores one prediction per ready vector, equal to the models called directly', async () => {
    const prefix = uniquePrefix('predictor');
    const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-'), 'p.duckdb')}`);
    const registry = new LocalRegistry(fx.registryDir);
    const holder = new ChampionHolder(registry, {
      name: NAME,
      cacheDir: scratchDir('cc-cache-'),
    });
    const svc = new PredictorService(bus, holder, store, { clock: 'event', maxStalenessMs: 120_000 });
    try {
      await holder.start();
      assert.equal(holder.current()?.card.version, 1);
      await bus.ensureTopics([topics.features, topics.predictions]);
      await bus.publish(topics.features, fx.vectors);
      await svc.start();
      const published = await readPredictions(bus, () => svc.caughtUp());
      assert.equal(published.length, fx.ready.length, 'one prediction per ready vector');
      assert.deepEqual(published.map(key), fx.ready.map(key).sort(), 'the ready vectors, each once');
      assert.equal(svc.stats.predicted, fx.ready.length);
      assert.equal(svc.stats.skipped.not_ready, fx.vectors.length - fx.ready.length);
      assert.equal(svc.stats.skipped.stale, 0, 'event clock: a replay is not stale');

      const stored = (await allStored(store, ['BTC/USDT', 'ETH/USDT'])).sort(byKey);
      assert.deepEqual(stored, published, 'the store and the topic agree');

      // The models called directly on the same rows.
      const [m, p10, p90] = [fx.files.model, fx.files.p10, fx.files.p90].map((f) => XgbModel.fromJson(f)) as [
        XgbModel,
        XgbModel,
        XgbModel,
      ];
      const idx = MODEL_COLUMNS.map((c) => FEATURE_COLUMNS.indexOf(c as (typeof FEATURE_COLUMNS)[number]));
      const vectors = new Map(fx.ready.map((v) => [key(v), v]));
      const rows = published.map((p) => idx.map((i) => vectors.get(key(p))!.values[i] ?? null));
      const native = nativePredict(fx.files, rows);
      published.forEach((p, r) => {
        const v = vectors.get(key(p))!;
        const row = rows[r]!.map((x) => x ?? Number.NaN);
        const bps = m.predict(row);
        const [lo, hi] = [p10.predict(row), p90.predict(row)].sort((a, b) => a - b) as [number, number];
        assert.equal(p.predictedReturnBps, bps);
        assert.equal(p.predictedClose, v.close * Math.exp(bps / 1e4));
        assert.equal(p.p10, v.close * Math.exp(lo / 1e4));
        assert.equal(p.p90, v.close * Math.exp(hi / 1e4));
        assert.ok(Math.abs(bps - native.model[r]!) <= 1e-5, `row ${r}: ${bps} vs native ${native.model[r]}`);
        assert.equal(p.close, v.close);
        assert.equal(p.targetTs, v.windowEnd + HORIZON);
        assert.equal(p.modelVersion, 1);
        assert.equal(p.latencyMs, 0);
      });
      // The model is not a constant: predictions vary.
      assert.ok(new Set(published.map((p) => p.predictedReturnBps)).size > 100);
    } finally {
      await svc.stop();
      holder.stop();
      await store.close();
      await bus.close();
    }
  });

  for (const [point, when] of [
    ['predictor:published', 'after publishing (before committing)'],
    ['predictor:stored', 'after storing (before publishing)'],
  ] as const)
    it(`killed with SIGKILL ${when} and restarted: no gaps, no duplicates`, async () => {
      const prefix = uniquePrefix('predcrash');
      const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
      const storeFile = join(scratchDir('pred-crash-'), 'p.duckdb');
      const children: ChildProcess[] = [];
      const start = (fault = '') => {
        const c = startPredictor(prefix, storeFile, fx.registryDir, fault);
        children.push(c);
        return c;
      };
      try {
        await bus.ensureTopics([topics.features, topics.predictions]);
        const half = Math.floor(fx.vectors.length / 2);
        await bus.publish(topics.features, fx.vectors.slice(0, half));
        const first = start(`${point}:1`);
        const signal = await new Promise<NodeJS.Signals | null>((r) => first.once('exit', (_c, s) => r(s)));
        assert.equal(signal, 'SIGKILL', `killed by the fault point ${point}, at its first batch`);
        const afterKill = (await bus.readTail<Prediction>(topics.predictions, 100_000)).length;
        if (point === 'predictor:published')
          assert.ok(afterKill > 0, 'the first batch was published before the kill');
        else assert.equal(afterKill, 0, 'killed before anything was published');
        await bus.publish(topics.features, fx.vectors.slice(half));
        const second = start();
        const published = await readPredictions(bus, () =>
          waitForGroupCommitted(bus, topics.features, 'predictor', 180_000),
        );
        assert.deepEqual(published.map(key), fx.ready.map(key).sort(), 'each ready vector once on the topic');
        second.kill('SIGTERM');
        const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
        assert.equal(code, 0, 'a clean stop on SIGTERM');
        const store = await openPredictionsStore(`duckdb:${storeFile}`);
        try {
          assert.equal(await store.count(), fx.ready.length, 'no duplicates in the store');
          const stored = (await allStored(store, ['BTC/USDT', 'ETH/USDT'])).sort(byKey);
          assert.deepEqual(stored.map(key), fx.ready.map(key).sort(), 'no gaps in the store');
          // Same values as on the topic (the event clock makes a re-read batch predict identically).
          assert.deepEqual(stored, published);
        } finally {
          await store.close();
        }
      } finally {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        await bus.close();
      }
    });

  it('restarted mid-stream, rebuilds its adaptive band from the feature store: the bands of an uninterrupted run', async () => {
    // The reference: one predictor, in process, over both days (the transports give the same predictions: parity test).
    const registry = new LocalRegistry(fx.registryDir);
    const holder = new ChampionHolder(registry, {
      name: NAME,
      cacheDir: scratchDir('cc-cache-'),
    });
    const refBus = new InProcessBus();
    const refStore = await openPredictionsStore(`duckdb:${join(scratchDir('pred-ref-'), 'p.duckdb')}`);
    const ref = new PredictorService(refBus, holder, refStore, {
      clock: 'event',
      maxStalenessMs: 120_000,
      adaptiveConformal: true,
    });
    let reference: Prediction[];
    try {
      await holder.start();
      await ref.start();
      await refBus.publish(topics.features, fx.vectors);
      await ref.caughtUp();
      reference = (await allStored(refStore, ['BTC/USDT', 'ETH/USDT'])).sort(byKey);
      assert.equal(reference.length, fx.ready.length);
    } finally {
      await ref.stop();
      holder.stop();
      await refStore.close();
      await refBus.close();
    }
    // The restart: the feature store (where the feature writer puts them) holds the first day; the topic from the
    // predictor's committed offset on is the second day.
    const secondDay = Date.parse(`${DAYS[1]}T00:00:00Z`);
    const storeFile = join(scratchDir('pred-warm-'), 'p.duckdb');
    const features = await openFeatureStore(`duckdb:${storeFile}`);
    try {
      await features.migrate(TECHNICAL_SET);
      await features.write(
        TECHNICAL_SET,
        fx.vectors.filter((v) => v.windowEnd < secondDay),
      );
    } finally {
      await features.close();
    }
    const prefix = uniquePrefix('predwarm');
    const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    const child = startPredictor(prefix, storeFile, fx.registryDir);
    try {
      await bus.ensureTopics([topics.features, topics.predictions]);
      await bus.publish(
        topics.features,
        fx.vectors.filter((v) => v.windowEnd >= secondDay),
      );
      const published = await readPredictions(bus, () =>
        waitForGroupCommitted(bus, topics.features, 'predictor', 180_000),
      );
      const expected = reference.filter((p) => p.windowEnd >= secondDay);
      assert.equal(published.length, expected.length);
      assert.deepEqual(published, expected, 'every band as the uninterrupted predictor published it');
      // The band is not the model's own: the outcomes of the first day moved it from the first minute on.
      const [p10, p90] = [fx.files.p10, fx.files.p90].map((f) => XgbModel.fromJson(f)) as [
        XgbModel,
        XgbModel,
      ];
      const idx = MODEL_COLUMNS.map((c) => FEATURE_COLUMNS.indexOf(c as (typeof FEATURE_COLUMNS)[number]));
      const first = fx.ready.find((v) => v.windowEnd >= secondDay && v.pair === published[0]!.pair)!;
      const row = idx.map((i) => first.values[i] ?? Number.NaN);
      const own = first.close * Math.exp(Math.min(p10.predict(row), p90.predict(row)) / 1e4);
      const firstPublished = published.find((p) => p.pair === first.pair && p.windowEnd === first.windowEnd)!;
      assert.notEqual(firstPublished.p10, own, 'the first band after the restart is already adjusted');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await bus.close();
    }
  });
  it('restarted after more than a window of uptime: α_t read back from predictor.aci on Kafka, the bands of an uninterrupted run', async () => {
    // A window of 60 scores: a day of uptime is many windows, so a warm-up from the feature store alone (a window and
    // an hour) would rebuild another α_t. The feature store is the fixture, caught up.
    const aci = { window: 60, gamma: 0.005 };
    const history = async (pair: string, from: number, to: number) =>
      fx.vectors.filter((v) => v.pair === pair && v.windowEnd >= from && v.windowEnd < to);
    const secondDay = Date.parse(`${DAYS[1]}T00:00:00Z`);
    const bands = (ps: Prediction[]) =>
      ps.filter((p) => p.windowEnd >= secondDay).map((p) => [p.pair, p.windowEnd, p.p10, p.p90]);
    const holder = new ChampionHolder(new LocalRegistry(fx.registryDir), {
      name: NAME,
      cacheDir: scratchDir('cc-cache-'),
    });
    const refBus = new InProcessBus();
    const refStore = await openPredictionsStore(`duckdb:${join(scratchDir('pred-ref-'), 'p.duckdb')}`);
    const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: uniquePrefix('predaci') });
    const store = await openPredictionsStore(`duckdb:${join(scratchDir('pred-aci-'), 'p.duckdb')}`);
    const predictor = (b: InProcessBus | KafkaBus, s: PredictionsStore) =>
      new PredictorService(b, holder, s, {
        clock: 'event',
        maxStalenessMs: 120_000,
        adaptiveConformal: aci,
        history,
      });
    try {
      await holder.start();
      const ref = predictor(refBus, refStore);
      await ref.start();
      await refBus.publish(topics.features, fx.vectors);
      await ref.caughtUp();
      await ref.stop();
      const uninterrupted = bands((await allStored(refStore, ['BTC/USDT', 'ETH/USDT'])).sort(byKey));

      const first = predictor(bus, store);
      await first.start();
      await bus.publish(
        topics.features,
        fx.vectors.filter((v) => v.windowEnd < secondDay),
      );
      await first.caughtUp();
      await first.stop();
      const second = predictor(bus, store);
      await second.start();
      await bus.publish(
        topics.features,
        fx.vectors.filter((v) => v.windowEnd >= secondDay),
      );
      await second.caughtUp();
      await second.stop();
      assert.ok(second.adjustments!.stats.warmUpVectors > 0, 'the second predictor warmed up');
      const restarted = bands((await allStored(store, ['BTC/USDT', 'ETH/USDT'])).sort(byKey));
      assert.equal(restarted.length, fx.ready.filter((v) => v.windowEnd >= secondDay).length);
      assert.deepEqual(
        restarted,
        uninterrupted,
        'every band after the restart as the uninterrupted predictor’s',
      );
    } finally {
      holder.stop();
      await refStore.close();
      await refBus.close();
      await store.close();
      await bus.close();
    }
  });
});
