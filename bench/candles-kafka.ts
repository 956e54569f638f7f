/**
 * Benchmark: trades → candles through a real Kafka broker on this machine (2 cores shared by the broker, the
 * producer and the candle service). Usage: ./bench/run candles-kafka [trades=1000000]
 *   1. produce N trades onto the `trades` topic (KafkaBus.publish, acks=all, batches of 5,000);
 *   2. the candle service consumes the backlog: trades topic → aggregator → candles topic, commits after.
 * Target (issue 2): at least 200,000 trades/s sustained through the candle service.
 * Needs the broker: bash scripts/kafka.sh start.
 */
import { CandleService } from '../src/candles/candle-service.ts';
import { KafkaBus } from '../src/runtime/kafka/bus.ts';
import { topics } from '../src/schemas/topics.ts';
import { fmt, peakRssMiB, recordBenchmark } from './report.ts';
import { syntheticTradeChunks } from './synthetic.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const TARGET = 200_000;
const url = process.env.CRYPTOCAST_BUS ?? 'kafka://127.0.0.1:9092';
const bus = KafkaBus.connect(url, { topicPrefix: `bench.${Date.now().toString(36)}.` });
await bus.ensureTopics([topics.trades, topics.candles, topics.dlq]);

const rss0 = peakRssMiB();
let t0 = performance.now();
for (const chunk of syntheticTradeChunks(N, 5_000)) await bus.publish(topics.trades, chunk);
const produceRate = N / ((performance.now() - t0) / 1000);
process.stdout.write(`produced ${fmt(N)} trades at ${fmt(produceRate)}/s\n`);
const rssAfterProduce = peakRssMiB();

const service = new CandleService({ bus, group: 'bench-candles' });
t0 = performance.now();
await service.start();
await service.caughtUp();
const dt = (performance.now() - t0) / 1000;
const consumeRate = N / dt;
process.stdout.write(
  `candle service: ${fmt(N)} trades → ${fmt(service.stats.candles)} candles in ${dt.toFixed(1)} s = ${fmt(consumeRate)} trades/s\n`,
);
const rssEnd = peakRssMiB();
await service.stop();
await bus.close();

const body = `
${fmt(N)} synthetic trades (2 pairs, 4 partitions), broker (Kafka 4.4, one JVM, 1 GiB heap) on the same 2-core machine.

| stage | trades/s | vs target ${fmt(TARGET)}/s |
|---|---|---|
| produce onto \`trades\` (KafkaBus.publish, binary encoding, acks=all, idempotent, 5,000 per call) | ${fmt(produceRate)} | ${fmt(produceRate / TARGET, 2)}× |
| candle service from backlog: consume + decode (binary, checked) + aggregate + publish candles + commit | ${fmt(consumeRate)} | ${fmt(consumeRate / TARGET, 2)}× |

Peak RSS of the benchmark process (producer and candle service in one Node process): ${fmt(rssAfterProduce)} MiB after producing
(${fmt(rss0)} MiB before), ${fmt(rssEnd)} MiB at the end. The broker's JVM is not included (heap capped at 1 GiB).

Producer and candle service share this process here (and the 2 cores with the broker); the candle service alone
in a process of its own, against Quix Streams on the same backlog, with its peak RSS: \`./bench/run peers\` (section
below). Trades travel in the compact binary encoding (src/runtime/trade-codec.ts): on a JSON topic the same service
spends most of its time in JSON.parse and the schema walk.
`;
process.stdout.write(body);
recordBenchmark('candles-kafka', 'Trades → candles through a real Kafka broker', body);
