import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOhlcv } from '../../src/candles/ohlcv-files.ts';
import { toRecord } from '../../src/features/feature-service.ts';
import { TechnicalFeatures } from '../../src/features/technical.ts';
import { ChampionHolder } from '../../src/inference/model-holder.ts';
import type { PredictionsStore } from '../../src/inference/predictions-store.ts';
import { PredictorService } from '../../src/inference/predictor-service.ts';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { MonitorService } from '../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import type { Prediction } from '../../src/schemas/prediction.ts';
import type { PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { type Agg, dashboardObjects } from '../../src/sinks/dashboards.ts';
import { errorDocId, predictionDocId } from '../../src/sinks/predictions-index.ts';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { SHARED_DATA } from '../support/data.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { ensureOpenSearch, killOpenSearch, OPENSEARCH_URL, os } from '../support/opensearch.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The index sink on a real OpenSearch node and a real Kafka broker. Real predictions: three days of Binance
 * BTC/USDT and ETH/USDT minutes through the feature engine, predicted by the predictor service with a champion from
 * a registry, into a DuckDB predictions store and the `predictions` topic. The sink (`cryptocast service
 * index-sink`, a child process) must index exactly the store: every prediction once, field for field; and the
 * monitoring pipeline (the monitor service, on the same candles) scores them into `predictions.errors` and the errors
 * store, which the sink must index exactly too —
 *   1. from a clean start;
 *   2. after a SIGKILL between a bulk request's success and the commit of its offsets, and a restart;
 *   3. while OpenSearch is killed (SIGKILL) with predictions arriving, and started again: retried, none lost.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const DAYS = ['2022-06-01', '2022-06-02', '2022-06-03'];
const NAME = 'sink-test';

type Doc = Prediction & Record<string, unknown>;

async function dayOf(
  day: string,
  engines: Map<string, TechnicalFeatures>,
): Promise<{ candles: Candle[]; vectors: FeatureVectorRecord[] }> {
  const candles: Candle[] = [];
  const vectors: FeatureVectorRecord[] = [];
  for (const symbol of ['BTCUSDT', 'ETHUSDT']) {
    const engine = engines.get(symbol) ?? new TechnicalFeatures();
    engines.set(symbol, engine);
    for await (const b of readOhlcv(join(BINANCE, symbol, `${symbol}-1m-${day}.zip`)))
      for (const c of b.candles) {
        // The monitor reads the actual close at the target minute from the candles topic.
        candles.push({
          v: 1,
          exchange: 'binance',
          pair: c.pair,
          interval: '1m',
          windowStart: c.windowStart,
          windowEnd: c.windowEnd,
          open: c.open,
          high: c.high,
          low: c.low,
          close: c.close,
          volume: c.volume,
          trades: c.trades,
          filled: c.filled ?? false,
          revision: 0,
        });
        vectors.push(toRecord('binance', engine.update(c)));
      }
  }
  return { candles, vectors };
}

async function allErrors(store: ErrorsStore): Promise<PredictionError[]> {
  return store.byTargetTime(0, 4_102_444_800_000);
}

async function allStored(store: PredictionsStore): Promise<Prediction[]> {
  const out: Prediction[] = [];
  for (const pair of ['BTC/USDT', 'ETH/USDT']) {
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

/** Every document of the indices, with its id and version (search_after over the ids). */
async function allDocs<D = Doc>(pattern: string): Promise<{ id: string; version: number; doc: D }[]> {
  await os('POST', `/${pattern}/_refresh`);
  const out: { id: string; version: number; doc: D }[] = [];
  let after: unknown[] | undefined;
  for (;;) {
    const res = await os<{
      hits: { hits: { _id: string; _version: number; _source: D; sort: unknown[] }[] };
    }>('POST', `/${pattern}/_search`, {
      size: 2000,
      version: true,
      sort: [{ pair: 'asc' }, { windowEnd: 'asc' }, { modelVersion: 'asc' }],
      ...(after ? { search_after: after } : {}),
    });
    const hits = res.hits.hits;
    if (hits.length === 0) break;
    for (const h of hits) out.push({ id: h._id, version: h._version, doc: h._source });
    after = hits[hits.length - 1]!.sort;
  }
  return out;
}

async function count(pattern: string): Promise<number> {
  try {
    await os('POST', `/${pattern}/_refresh`);
    return (await os<{ count: number }>('GET', `/${pattern}/_count`)).count;
  } catch {
    return 0; // the node is away, or no index yet
  }
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** A visualization's aggregations as an OpenSearch query: buckets nested in order, the metrics in the innermost. */
function toQuery(aggs: Agg[]): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  for (const a of aggs.filter((x) => x.schema === 'metric' && x.type !== 'count'))
    metrics[`m${a.id}`] =
      a.type === 'percentiles'
        ? { percentiles: { field: a.params.field, percents: a.params.percents } }
        : { [a.type]: { field: a.params.field } };
  let inner: Record<string, unknown> = metrics;
  for (const a of aggs.filter((x) => x.schema !== 'metric').reverse()) {
    const body =
      a.type === 'date_histogram'
        ? { date_histogram: { field: a.params.field, fixed_interval: '1h', min_doc_count: 1 } }
        : {
            terms: {
              field: a.params.field,
              size: a.params.size,
              ...(a.params.missingBucket ? { missing: 'N/A' } : {}),
            },
          };
    inner = { [`b${a.id}`]: { ...body, aggs: inner } };
  }
  return inner;
}

const byKey = (a: Omit<Prediction, 'v'> | PredictionError, b: Omit<Prediction, 'v'> | PredictionError) =>
  a.pair.localeCompare(b.pair) || a.windowEnd - b.windowEnd || a.modelVersion - b.modelVersion;

describe('index sink: predictions → a real OpenSearch node', () => {
  const prefix = uniquePrefix('indexsink');
  const indexPrefix = `t${process.pid}-${Date.now().toString(36)}-`;
  const pattern = `${indexPrefix}predictions-*`;
  const errorsPattern = `${indexPrefix}errors-*`;
  const children: ChildProcess[] = [];
  const engines = new Map<string, TechnicalFeatures>();
  let bus: KafkaBus;
  let store: PredictionsStore;
  let holder: ChampionHolder;
  let predictor: PredictorService;
  let errorsStore: ErrorsStore;
  let monitor: MonitorService;

  /**
   * The sink commits a batch's offsets only after its bulk request succeeded: once both its groups have committed
   * everything on their topics, every document it will write is written (no fixed wait for stragglers).
   */
  const sinkCommittedAll = () =>
    until(
      'the sink to commit everything it read',
      async () =>
        (await bus.groupLag(topics.predictions, 'index-sink.predictions')) === 0 &&
        ((await bus.groupLag(topics.predictionErrors, 'index-sink.predictions.errors')) ?? 0) === 0,
      60_000,
    );

  /** The sink as its own process, as it runs in production; `fault` makes it SIGKILL itself at a point. */
  const startSink = (fault = ''): ChildProcess => {
    const c = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', join(ROOT, 'src/cli/main.ts'), 'service', 'index-sink'],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          CRYPTOCAST_BUS: KAFKA_URL,
          CRYPTOCAST_TOPIC_PREFIX: prefix,
          CRYPTOCAST_OPENSEARCH_URL: OPENSEARCH_URL,
          CRYPTOCAST_INDEX_PREFIX: indexPrefix,
          CRYPTOCAST_LOG_LEVEL: 'warn',
          CRYPTOCAST_FAULT: fault,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    c.stderr!.on('data', (d) => {
      err += d;
    });
    (c as ChildProcess & { stderrText: () => string }).stderrText = () => err;
    children.push(c);
    return c;
  };
  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));

  /**
   * Publishes a day's candles and feature vectors; waits until the predictor has stored all its predictions and the
   * monitor has scored every one whose target minute is in the day (the last 5 minutes wait for the next day).
   */
  const predictDay = async (day: string): Promise<number> => {
    const before = (await allStored(store)).length;
    const { candles, vectors } = await dayOf(day, engines);
    await bus.publish(topics.features, vectors);
    await bus.publish(topics.candles, candles);
    const ready = vectors.filter((v) => v.ready).length;
    await until(
      `the predictions of ${day}`,
      async () => (await allStored(store)).length >= before + ready,
      120_000,
    );
    const lastClose = Math.max(...candles.map((c) => c.windowEnd));
    const due = (await allStored(store)).filter((p) => p.targetTs <= lastClose).length;
    await until(`the error records of ${day}`, async () => (await errorsStore.count()) >= due, 120_000);
    return before + ready;
  };

  /** The documents equal the store: same set of ids, each document field for field the stored prediction. */
  const assertIndexEqualsStore = async () => {
    const stored = (await allStored(store)).sort(byKey);
    const docs = await allDocs(pattern);
    assert.equal(docs.length, stored.length, 'one document per stored prediction');
    assert.equal(new Set(docs.map((d) => d.id)).size, docs.length, 'no id twice');
    const sorted = docs.map((d) => d.doc as Prediction).sort(byKey);
    assert.deepEqual(sorted, stored);
    for (const d of docs) assert.equal(d.id, predictionDocId(d.doc));
    // The error records: the index equals the errors store the same way.
    const errors = (await allErrors(errorsStore)).sort(byKey);
    const errorDocs = await allDocs<PredictionError>(errorsPattern);
    assert.ok(errors.length > 0, 'the monitor scored predictions');
    assert.equal(errorDocs.length, errors.length, 'one document per error record');
    assert.equal(new Set(errorDocs.map((d) => d.id)).size, errorDocs.length);
    assert.deepEqual(errorDocs.map((d) => d.doc).sort(byKey), errors);
    for (const d of errorDocs) assert.equal(d.id, errorDocId(d.doc));
    return docs;
  };

  before(async () => {
    await ensureKafka();
    await ensureOpenSearch();
    bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    store = await openPredictionsStore(`duckdb:${join(scratchDir('sink-store-'), 'p.duckdb')}`);
    const registryDir = scratchDir('sink-reg-');
    // A small hand-written champion: the predictions vary with the features (two stumps on two inputs).
    const n = MODEL_COLUMNS.length;
    const files = {
      model: stumpModel(n, [
        { f: 0, c: 0, a: -1.5, b: 2.5 },
        { f: 3, c: 0.5, a: -0.25, b: 0.75 },
      ]),
      p10: stumpModel(n, [{ f: 0, c: 0, a: -9, b: -4 }]),
      p90: stumpModel(n, [{ f: 0, c: 0, a: 4, b: 9 }]),
    };
    await registerModel(new LocalRegistry(registryDir), NAME, MODEL_COLUMNS, files);
    holder = new ChampionHolder(new LocalRegistry(registryDir), {
      name: NAME,
      cacheDir: scratchDir('sink-cache-'),
    });
    await holder.start();
    predictor = new PredictorService(bus, holder, store, { clock: 'event', maxStalenessMs: 120_000 });
    await bus.ensureTopics([
      topics.features,
      topics.candles,
      topics.predictions,
      topics.predictionErrors,
      topics.dlq,
    ]);
    await predictor.start();
    errorsStore = await openErrorsStore(`duckdb:${join(scratchDir('sink-errors-'), 'e.duckdb')}`);
    monitor = new MonitorService(bus, errorsStore, { clock: 'event' });
    await monitor.start();
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await predictor?.stop();
    await monitor?.stop();
    await errorsStore?.close();
    holder?.stop();
    await store?.close();
    await bus?.close();
    // The test's indices and template go; the node stays up for the next run.
    await ensureOpenSearch();
    await os('DELETE', `/${pattern},${errorsPattern}`).catch(() => {});
    for (const t of ['predictions', 'errors'])
      await os('DELETE', `/_index_template/${indexPrefix}${t}`).catch(() => {});
  });

  it('indexes every prediction once, equal to the predictions store, with the explicit mappings', async () => {
    const total = await predictDay(DAYS[0]!);
    assert.ok(total > 2_500, `${total} predictions`);
    const sink = startSink();
    await until('all predictions indexed', async () => (await count(pattern)) >= total, 120_000);
    await until(
      'all error records indexed',
      async () => (await count(errorsPattern)) >= (await errorsStore.count()),
      120_000,
    );
    await sinkCommittedAll(); // what it writes, it has written: a duplicate would show now
    const docs = await assertIndexEqualsStore();
    assert.ok(
      docs.every((d) => d.version === 1),
      'nothing written twice',
    );
    // The template's mappings were applied (dynamic: strict, dates as epoch millis).
    const index = Object.keys(await os<Record<string, unknown>>('GET', `/${pattern}/_mapping`))[0]!;
    const mapping = await os<
      Record<string, { mappings: { dynamic: string; properties: Record<string, { type: string }> } }>
    >('GET', `/${index}/_mapping`);
    const m = mapping[index]!.mappings;
    assert.equal(m.dynamic, 'strict');
    assert.equal(m.properties.windowEnd!.type, 'date');
    assert.equal(m.properties.pair!.type, 'keyword');
    assert.match(index, new RegExp(`^${indexPrefix}predictions-2022\\.06$`));
    // Each dashboard visualization's aggregations run on the indexed documents (fields exist and aggregate).
    const objects = dashboardObjects(indexPrefix);
    for (const v of objects.filter((o) => o.type === 'visualization')) {
      const { aggs } = JSON.parse(v.attributes.visState as string) as { aggs: Agg[] };
      const target = objects.find((o) => o.id === v.references[0]!.id)!.attributes.title as string;
      const res = await os<{ aggregations: Record<string, { buckets: unknown[] }> }>(
        'POST',
        `/${target}/_search`,
        {
          size: 0,
          aggs: toQuery(aggs),
        },
      );
      const top = Object.values(res.aggregations)[0]!;
      assert.ok(top.buckets.length > 0, `${v.id}: no buckets`);
    }
    // This node has no Index State Management plugin (it is not on Maven Central): the sink says retention is not
    // applied and carries on.
    assert.match(
      (sink as ChildProcess & { stderrText: () => string }).stderrText(),
      /no Index State Management plugin: retention is not applied/,
    );
    // A clean stop commits; nothing is left behind.
    sink.kill('SIGTERM');
    await exited(sink);
    assert.equal(sink.exitCode, 0, (sink as ChildProcess & { stderrText: () => string }).stderrText());
  });

  it('SIGKILLed after a bulk request succeeded, before its offsets were committed, then restarted: no duplicates', async () => {
    const total = await predictDay(DAYS[1]!);
    // The second day's predictions are new to the group: the sink indexes them in batches; it dies after the first.
    // After the first batch of predictions (not of errors: this test counts and checks the predictions index).
    const crashing = startSink('index-sink:indexed:predictions:1');
    await exited(crashing);
    assert.equal(
      crashing.signalCode,
      'SIGKILL',
      (crashing as ChildProcess & { stderrText: () => string }).stderrText(),
    );
    // Asked without `count`'s fallback: a node briefly away would read 0 and pass this check with no crash mid-way.
    await os('POST', `/${pattern}/_refresh`);
    const afterCrash = (await os<{ count: number }>('GET', `/${pattern}/_count`)).count;
    assert.ok(afterCrash < total, `the crash came before the end (${afterCrash} of ${total})`);
    const sink = startSink();
    await until(
      'all predictions indexed after the restart',
      async () => (await count(pattern)) >= total,
      120_000,
    );
    await sinkCommittedAll();
    const docs = await assertIndexEqualsStore();
    // The batch indexed before the crash was read again and written onto the same documents.
    assert.ok(
      docs.some((d) => d.version > 1),
      'the uncommitted batch was re-delivered (and absorbed by the ids)',
    );
    sink.kill('SIGTERM');
    await exited(sink);
  });

  it('survives OpenSearch being killed while predictions arrive: retries, then catches up, nothing lost', async () => {
    const sink = startSink();
    await until(
      'the sink up to date',
      async () => (await count(pattern)) === (await allStored(store)).length,
      60_000,
    );
    killOpenSearch();
    const total = await predictDay(DAYS[2]!);
    // The sink keeps failing (connection refused) and stays up, committing nothing.
    await until(
      'the sink to report OpenSearch unavailable',
      async () =>
        /OpenSearch unavailable/.test((sink as ChildProcess & { stderrText: () => string }).stderrText()),
      60_000,
    );
    assert.equal(sink.exitCode, null, 'the sink is still running');
    await ensureOpenSearch();
    await until(
      'all predictions indexed once OpenSearch is back',
      async () => (await count(pattern)) >= total,
      180_000,
    );
    await sinkCommittedAll();
    await assertIndexEqualsStore();
    sink.kill('SIGTERM');
    await exited(sink);
    assert.equal(sink.exitCode, 0);
  });
});
