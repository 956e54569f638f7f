/**
 * Benchmark: a live connector's memory while the exchange's REST API is down. A Binance connector (default settings:
 * 8 REST retries from 1 s doubling to 60 s, so one refill waits minutes) on the local Binance stand-in, BTC/USDT and
 * ETH/USDT streamed at `rate` frames a second; after a warm-up the REST API goes down and the connection is cut (an
 * exchange incident): every refill of the reconnect, and of the id gap the stream then shows, waits out its retries
 * while the stream's frames queue behind it. Sampled every 5 s (after a GC): heap used, the frames' text waiting to be
 * handled, how old the oldest one is. Then REST comes back and the run waits for every published trade.
 * Usage: ./bench/run live-rest-outage [outage minutes=10] [frames a second=200]
 * (run with --expose-gc for the heap after GC; the bench/run launcher does not add it: node --expose-gc bench/…)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { BinanceWsSource } from '../src/ingestion/live/binance-ws.ts';
import type { SourceSink } from '../src/ingestion/source.ts';
import type { Trade } from '../src/schemas/trade.ts';
import { BinanceServer } from '../test/support/exchanges/binance.ts';
import { fmt, peakRssMiB, recordBenchmark } from './report.ts';

const OUTAGE_MIN = Number(process.argv[2] ?? 10);
const RATE = Number(process.argv[3] ?? 200);
const WARMUP_MS = 10_000;
const RECORD = !process.argv.includes('--no-record');

const MiB = 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;
const heapMiB = () => {
  gc?.();
  return process.memoryUsage().heapUsed / MiB;
};

const srv = await new BinanceServer().listen();
const source = new BinanceWsSource({
  pairs: ['BTC/USDT', 'ETH/USDT'],
  wsUrl: srv.wsUrl,
  restUrl: srv.restUrl,
  log: pino({ level: 'silent' }),
});
/** Keeps only the distinct (pair, id) delivered: a sink keeping every trade would be most of the heap measured. */
class CountingSink implements SourceSink {
  readonly seen = new Set<string>();
  delivered = 0;
  trades(trades: readonly Trade[]): void {
    this.delivered += trades.length;
    for (const t of trades) this.seen.add(`${t.pair}:${t.tradeId}`);
  }
  watermark(): void {}
  reject(): void {}
}
const sink = new CountingSink();
const abort = new AbortController();
const running = source.run(sink, abort.signal);
// The frames received and not yet handled: one entry each (read from outside, so the same before and after a change).
const socket = source.socket as unknown as { oldestUnhandledTs?: number; unhandledReceivedTs: unknown[] };
const stats = source.stats as unknown as Record<string, number>;

const nextId: Record<string, number> = { BTCUSDT: 3_735_683_259, ETHUSDT: 1_500_000_000 };
let published = 0;
const publishOne = () => {
  const s = published % 2 === 0 ? 'BTCUSDT' : 'ETHUSDT';
  const now = Date.now();
  srv.publish([
    {
      e: 'trade',
      E: now,
      s,
      t: nextId[s]!++,
      p: s === 'BTCUSDT' ? '61837.63000000' : '2612.41000000',
      q: '0.02000000',
      T: now,
      m: published % 3 === 0,
      M: true,
    },
  ]);
  published++;
};
// Trades before the first subscription are before the connector's history (by design): the stream starts after it.
while (source.subscribed.length < 2) await sleep(10);
// A steady stream: each 10 ms, the frames due by then.
const t0 = Date.now();
const streamer = setInterval(() => {
  const due = Math.floor(((Date.now() - t0) * RATE) / 1000);
  while (published < due) publishOne();
}, 10);

let peakHeap = 0;
let peakQueued = 0;
let peakOldest = 0;
const sample = (phase: string) => {
  const heap = heapMiB();
  const queued = socket.unhandledReceivedTs.length;
  const oldest = socket.oldestUnhandledTs === undefined ? 0 : (Date.now() - socket.oldestUnhandledTs) / 1000;
  peakHeap = Math.max(peakHeap, heap);
  peakQueued = Math.max(peakQueued, queued);
  peakOldest = Math.max(peakOldest, oldest);
  process.stdout.write(
    `${phase} t=${fmt((Date.now() - t0) / 1000)} s heap ${fmt(heap, 1)} MiB, frames queued ${fmt(queued)}, oldest waiting ${fmt(oldest)} s, delivered ${fmt(sink.seen.size)} of ${fmt(published)}\n`,
  );
};
const sampler = (phase: string) => setInterval(() => sample(phase), 5_000);

await sleep(WARMUP_MS);
const baseline = heapMiB();
process.stdout.write(`warm: heap ${fmt(baseline, 1)} MiB, ${fmt(sink.seen.size)} trades\n`);
srv.failNext = Number.MAX_SAFE_INTEGER; // the REST API down
srv.dropAll(); // and the connection cut
let timer = sampler('outage');
await sleep(OUTAGE_MIN * 60_000);
clearInterval(timer);
srv.failNext = 0; // the REST API back
clearInterval(streamer); // and the stream stops: every trade published is then waited for
const backAt = Date.now();
timer = sampler('after');
const distinct = () => sink.seen.size;
while (Date.now() - backAt < 10 * 60_000 && distinct() < published) await sleep(1_000);
const caughtUpS = (Date.now() - backAt) / 1000;
clearInterval(timer);
abort.abort();
await running;
await srv.close();

const body = [
  `\`./bench/run live-rest-outage ${OUTAGE_MIN} ${RATE}\` (with --expose-gc): Binance connector, default REST retries, ` +
    `${RATE} frames/s (BTC/USDT and ETH/USDT), the REST API down for ${OUTAGE_MIN} min and the connection cut at its start.`,
  '',
  '| heap before (MiB) | peak heap in the outage (MiB) | peak frames queued | oldest frame waiting (s) | peak RSS (MiB) | queue overflows | reconnects | trades delivered / published | caught up after REST back (s) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  `| ${fmt(baseline, 1)} | ${fmt(peakHeap, 1)} | ${fmt(peakQueued)} | ${fmt(peakOldest)} | ${fmt(peakRssMiB())} | ${stats.queueOverflows ?? 'n/a'} | ${stats.reconnects} | ${fmt(distinct())} / ${fmt(published)} | ${fmt(caughtUpS)} |`,
].join('\n');
process.stdout.write(`\n${body}\nstats ${JSON.stringify(source.stats)}\n`);
if (RECORD) recordBenchmark('live-rest-outage', 'Live connector: memory through a REST outage', body);
