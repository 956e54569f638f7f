/**
 * Index sink throughput: predictions from a real Kafka topic into a real OpenSearch node through `IndexSink`
 * (consume, bulk, wait for the bulk, commit), against the bare ceiling — the same documents sent straight to
 * OpenSearch with the same client in bulk requests of the sink's batch size, no Kafka. Side by side in one run,
 * after a discarded warm-up of both, alternating which goes first, each on fresh indices; the ratio is the figure that carries over between machines.
 *
 *   ./bench/run index-sink [--docs 100000] [--rounds 4]
 *
 * Needs the broker and the node the tests use: CRYPTOCAST_TEST_KAFKA (kafka://127.0.0.1:9092) and
 * CRYPTOCAST_TEST_OPENSEARCH (http://127.0.0.1:9200), started by scripts/kafka.sh and scripts/opensearch.sh.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { KafkaBus } from '../src/runtime/kafka/bus.ts';
import type { Prediction } from '../src/schemas/prediction.ts';
import { topics } from '../src/schemas/topics.ts';
import { IndexSink, PREDICTIONS_STREAM } from '../src/sinks/index-sink.ts';
import { OpenSearchIndex } from '../src/sinks/opensearch.ts';
import {
  predictionDocId,
  predictionsIndex,
  predictionsIndexTemplate,
} from '../src/sinks/predictions-index.ts';
import { fmt, recordBenchmark } from './report.ts';

const { values } = parseArgs({
  options: { docs: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '4' } },
});
const N = Number(values.docs);
const ROUNDS = Number(values.rounds);
const KAFKA = process.env.CRYPTOCAST_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const OPENSEARCH = process.env.CRYPTOCAST_TEST_OPENSEARCH ?? 'http://127.0.0.1:9200';
const BATCH = 5_000; // KafkaBus's largest batch per partition: what one bulk request of the sink carries at most
const quiet = pino({ level: 'error' });

/** Two pairs, one prediction a minute each, plausible values. */
function predictions(n: number): Prediction[] {
  const t0 = Date.UTC(2026, 0, 1);
  return Array.from({ length: n }, (_, i) => {
    const pair = i % 2 ? 'ETH/USD' : 'BTC/USD';
    const windowEnd = t0 + Math.floor(i / 2) * 60_000;
    const close = (pair === 'BTC/USD' ? 90_000 : 3_000) * (1 + 0.01 * Math.sin(i / 500));
    const bps = 3 * Math.sin(i / 37);
    return {
      v: 1,
      exchange: 'kraken',
      pair,
      windowEnd,
      horizonMs: 300_000,
      targetTs: windowEnd + 300_000,
      close,
      predictedReturnBps: bps,
      predictedClose: close * Math.exp(bps / 1e4),
      p10: close * 0.998,
      p90: close * 1.002,
      modelName: 'cryptocast-price',
      modelVersion: 7,
      featureSet: 'technical',
      featureSetVersion: 1,
      createdAt: windowEnd + 35,
      latencyMs: 35,
    };
  });
}

async function os(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(OPENSEARCH + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function count(pattern: string): Promise<number> {
  await os('POST', `/${pattern}/_refresh`);
  return ((await os('GET', `/${pattern}/_count`)) as { count: number }).count;
}

const docs = predictions(N);

/** The bare ceiling: the documents in bulk requests of BATCH, one after the other, like one sink partition. */
async function direct(prefix: string, n = N): Promise<number> {
  const index = new OpenSearchIndex({ url: OPENSEARCH, logger: quiet });
  await os('PUT', `/_index_template/${prefix}predictions`, predictionsIndexTemplate(prefix));
  const t0 = performance.now();
  for (let i = 0; i < docs.length; i += BATCH) {
    const ops = docs
      .slice(i, i + BATCH)
      .map((p) => ({ index: predictionsIndex(prefix, p), id: predictionDocId(p), doc: { ...p } }));
    const r = await index.bulk(ops);
    if (r.some((x) => !x.ok)) throw new Error('bulk refused documents');
  }
  const s = (performance.now() - t0) / 1000;
  if ((await count(`${prefix}predictions-*`)) !== n) throw new Error('direct: count mismatch');
  await index.close();
  return s;
}

/** The sink: topic already filled, measured from start until every document is searchable-counted. */
async function sink(prefix: string, n = N): Promise<number> {
  const topicPrefix = `bench.${prefix}`;
  const bus = KafkaBus.connect(KAFKA, { topicPrefix, logger: quiet });
  await bus.ensureTopics([topics.predictions, topics.dlq]);
  for (let i = 0; i < docs.length; i += 20_000)
    await bus.publish(topics.predictions, docs.slice(i, i + 20_000));
  const index = new OpenSearchIndex({ url: OPENSEARCH, logger: quiet });
  const s = new IndexSink(bus, index, { prefix, streams: [PREDICTIONS_STREAM as never], logger: quiet });
  const t0 = performance.now();
  await s.start();
  await s.caughtUp();
  while (s.stats.indexed < n) await new Promise((r) => setTimeout(r, 20));
  const secs = (performance.now() - t0) / 1000;
  await s.stop();
  await bus.close();
  await index.close();
  if ((await count(`${prefix}predictions-*`)) !== n) throw new Error('sink: count mismatch');
  return secs;
}

const runId = Date.now().toString(36);
// A discarded warm-up of both paths (JIT, the node's first index creations and merges).
{
  const all = docs.splice(0, docs.length, ...docs.slice(0, Math.min(N, 10_000)));
  const n = docs.length;
  for (const w of ['wd', 'ws']) {
    const p = `bench-${runId}-${w}-`;
    await (w === 'wd' ? direct(p, n) : sink(p, n));
    await os('DELETE', `/${p}predictions-*`).catch(() => {});
    await os('DELETE', `/_index_template/${p}predictions`).catch(() => {});
  }
  docs.splice(0, docs.length, ...all);
}
const results: { direct: number; sink: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = `bench-${runId}-${r}-d-`;
  const b = `bench-${runId}-${r}-s-`;
  let d: number;
  let s: number;
  if (r % 2 === 0) {
    d = await direct(a);
    s = await sink(b);
  } else {
    s = await sink(b);
    d = await direct(a);
  }
  results.push({ direct: d, sink: s });
  process.stdout.write(
    `round ${r + 1}: direct bulk ${fmt(N / d)} docs/s (${fmt(d, 1)} s), sink ${fmt(N / s)} docs/s (${fmt(s, 1)} s), ratio ${fmt(d / s, 2)}\n`,
  );
  for (const p of [a, b]) {
    await os('DELETE', `/${p}predictions-*`).catch(() => {});
    await os('DELETE', `/_index_template/${p}predictions`).catch(() => {});
  }
}

const med = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ratios = results.map((r) => r.direct / r.sink);
const rows = results
  .map((r, i) => `| ${i + 1} | ${fmt(N / r.direct)} | ${fmt(N / r.sink)} | ${fmt(r.direct / r.sink, 2)} |`)
  .join('\n');
recordBenchmark(
  'index-sink',
  'Index sink: predictions from Kafka into OpenSearch, against bare bulk requests',
  `${fmt(N)} predictions (2 pairs) on a single OpenSearch 2.19.6 node (512 MiB heap, scripts/opensearch.sh) and a
single Kafka 4.4 broker, both on this machine. "direct": the same documents sent with the same client in bulk requests
of ${fmt(BATCH)}, one after the other, no Kafka (the ceiling of one partition's writer). "sink": \`IndexSink\` from a
filled \`predictions\` topic — consume, bulk, wait for the bulk, commit — until every document is indexed.
After a discarded warm-up of both, alternating which goes first, fresh indices each time (\`./bench/run index-sink --docs ${N} --rounds ${ROUNDS}\`).

| round | direct bulk docs/s | sink docs/s | sink / direct |
|---:|---:|---:|---:|
${rows}

Median sink / direct: **${fmt(med(ratios), 2)}**: what the sink adds to the bulk requests themselves — fetching from
Kafka, validating every record against its schema, and committing the offsets after each bulk has succeeded.`,
);
