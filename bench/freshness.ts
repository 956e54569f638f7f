/**
 * Benchmark (inference issue): freshness — from a candle's close (its publication on `candles`) to its prediction
 * arriving on a WebSocket client of the API, through the feature service, the predictor (the registry's champion)
 * and the API, on the embedded in-process bus (target p99 < 100 ms) and through a real Kafka broker (target p99 <
 * 500 ms), side by side in one run. Real Bitstamp BTC/USD candles, one every 100 ms after the 61-minute warm-up.
 * Usage: ./bench/run freshness   (the champion from scripts/price-model.sh; Kafka from scripts/kafka.sh)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startApi } from '../src/api/api-service.ts';
import { FeatureService } from '../src/features/feature-service.ts';
import { ChampionHolder } from '../src/inference/model-holder.ts';
import { PredictorService } from '../src/inference/predictor-service.ts';
import { openPredictionsStore } from '../src/inference/store/open.ts';
import type { Bus } from '../src/runtime/bus.ts';
import { InProcessBus } from '../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../src/runtime/kafka/bus.ts';
import { topics } from '../src/schemas/topics.ts';
import { DEFAULT_REGISTRY, openRegistry } from '../src/training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../src/training/registry/registry.ts';
import { bitstampCandleRecords } from '../test/support/bitstamp.ts';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';

const WARMUP = 70;
const MEASURED = 200;
const EVERY_MS = 100;
const candles = await bitstampCandleRecords(WARMUP + MEASURED);
const registry = await openRegistry(process.env.CRYPTOCAST_REGISTRY ?? DEFAULT_REGISTRY);
if ((await registry.alias(DEFAULT_MODEL_NAME, 'champion')) === undefined)
  throw new Error(`no champion in ${registry.location}: run bash scripts/price-model.sh first`);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

async function measure(bus: Bus): Promise<{ delays: number[]; lost: number }> {
  await bus.ensureTopics([topics.candles, topics.features, topics.predictions]);
  const features = new FeatureService(bus);
  await features.start();
  const holder = new ChampionHolder(registry, {
    name: DEFAULT_MODEL_NAME,
    cacheDir: scratchDir('bench-cache-'),
  });
  await holder.start();
  const store = await openPredictionsStore('duckdb::memory:');
  const predictor = new PredictorService(bus, holder, store, { clock: 'event' });
  await predictor.start();
  const api = await startApi({ bus, store, pairs: ['BTC/USD'], port: 0, host: '127.0.0.1' });
  const ws = new WebSocket(`ws://127.0.0.1:${api.port}/v1/ws`);
  await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  const published = new Map<number, number>();
  const delays: number[] = [];
  ws.on('message', (raw) => {
    const m = JSON.parse(String(raw));
    if (m.type !== 'prediction') return;
    const t = published.get(m.data.windowEnd);
    if (t !== undefined) delays.push(performance.now() - t);
  });
  ws.send(JSON.stringify({ type: 'subscribe', pairs: ['BTC-USD'] }));
  await bus.publish(topics.candles, candles.slice(0, WARMUP));
  await sleep(2_000);
  for (const c of candles.slice(WARMUP)) {
    published.set(c.windowEnd, performance.now());
    await bus.publish(topics.candles, [c]);
    await sleep(EVERY_MS);
  }
  await sleep(2_000);
  ws.close();
  await api.close();
  await predictor.stop();
  holder.stop();
  await features.stop();
  await store.close();
  return { delays, lost: MEASURED - delays.length };
}

const rows: string[] = [];
const runs: [string, () => Bus][] = [
  ['in-process bus (embedded)', () => new InProcessBus()],
  [
    'Kafka (127.0.0.1:9092)',
    () => KafkaBus.connect('kafka://127.0.0.1:9092', { topicPrefix: `fresh-${Date.now().toString(36)}.` }),
  ],
];
for (const [label, make] of runs) {
  const bus = make();
  try {
    const { delays, lost } = await measure(bus);
    const line = `| ${label} | ${fmt(delays.length)} | ${lost} | ${pct(delays, 0.5).toFixed(1)} | ${pct(delays, 0.99).toFixed(1)} | ${Math.max(...delays).toFixed(1)} |`;
    process.stdout.write(`${line}\n`);
    rows.push(line);
  } finally {
    await bus.close();
  }
}
await registry.close();

recordBenchmark(
  'freshness',
  'Freshness: candle close → prediction on a WebSocket client',
  `\`./bench/run freshness\`: real Bitstamp BTC/USD 1-minute candles published on \`candles\` one every ${EVERY_MS} ms after
a ${WARMUP}-candle warm-up; the feature service, the predictor (the registry's champion, XGBoost evaluated in TypeScript)
and the API run in this process on the given bus; one WebSocket client subscribed to BTC-USD. Delay = from the
candle's publication to its prediction's arrival at the client. Targets: p99 < 100 ms embedded, < 500 ms via Kafka.

| bus | predictions | missing | p50 ms | p99 ms | max ms |
|---|---:|---:|---:|---:|---:|
${rows.join('\n')}`,
);
process.exit(0);
