/**
 * Benchmark: trades → candles through a real Kafka broker on this machine (2 cores shared by the broker, the
 * producer and the candle service). Usage: ./bench/run candles-kafka [trades=1000000]
 *   1. produce N trades onto the `trades` topic (KafkaBus.publish, acks=all, batches of 5,000);
 *   2. the candle service consumes the backlog: trades topic → aggregator → candles topic, commits after.
 * Target (issue 2): at least 200,000 trades/s sustained through the candle service.
 * Needs the broker: bash scripts/kafka.sh start.
 */
import { CandleService } from '../src/candles/candle-service.ts';
import { KafkaBus } from '../src/runtime/kafka-bus.ts';
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
${fmt(N)} synthetic trades (2 pairs, 4 partitions), broker (Kafka 4.3, one JVM, 1 GiB heap) on the same 2-core machine.

| stage | trades/s | vs target ${fmt(TARGET)}/s |
|---|---|---|
| produce onto \`trades\` (KafkaBus.publish, acks=all, idempotent, 5,000 per call) | ${fmt(produceRate)} | ${fmt(produceRate / TARGET, 2)}× |
| candle service from backlog: consume + JSON parse + schema check + aggregate + publish candles + commit | ${fmt(consumeRate)} | ${fmt(consumeRate / TARGET, 2)}× |

Peak RSS of the benchmark process (producer and candle service in one Node process): ${fmt(rssAfterProduce)} MiB after producing
(${fmt(rss0)} MiB before), ${fmt(rssEnd)} MiB at the end. The broker's JVM is not included (heap capped at 1 GiB).

Why below target: the broker, the client and the service share 2 cores. A CPU profile of the candle service alone
(consuming a 500,000-trade backlog) shows ~20% garbage collection, ~25% in the Kafka client decoding record batches
into message objects, ~13% JSON.parse, ~8% schema checks, ~9% waiting on fetches, and under 2% in the window logic
itself. Levers not pulled yet: a compact binary encoding of trades (smaller than JSON, no parse), decoding record
batches without per-message objects, and more partitions with one candle service per core (services scale out by
partitions: on this 2-core machine the broker already takes the second core).
`;
process.stdout.write(body);
recordBenchmark('candles-kafka', 'Trades → candles through a real Kafka broker', body);
