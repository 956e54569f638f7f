/**
 * Benchmark: the monitoring pipeline (issue 12).
 *   1. Scoring in-process, one core: synthetic predictions and candles (2 pairs, 2 model versions) through the
 *      maturity join and the rolling quality — records (predictions + candles) per second. Goal ≥ 200,000/s.
 *   2. The same through the monitor service on the in-process bus, with the error records written to DuckDB.
 *   3. The cost added to `cryptocast run`: end-to-end trades/s of a replay with and without the monitor
 *      (`--no-monitor`), alternating rounds, median ratio. Goal: a drop of less than 5 %. With it, a 95 % interval
 *      of that median (bootstrap over the rounds): single rounds on a shared 2-core machine vary by 10 % and more.
 * Usage: ./bench/run monitor [minutes=200000] [rounds=5] [trades=1000000]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaturityJoin } from '../src/monitoring/maturity.ts';
import { MonitorService } from '../src/monitoring/monitor-service.ts';
import { RollingQuality } from '../src/monitoring/rolling-quality.ts';
import { openErrorsStore } from '../src/monitoring/store/open.ts';
import { InProcessBus } from '../src/runtime/in-process-bus.ts';
import type { Candle } from '../src/schemas/candle.ts';
import type { Prediction } from '../src/schemas/prediction.ts';
import { topics } from '../src/schemas/topics.ts';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';
import { seededRandom, syntheticTradeChunks } from './synthetic.ts';

const MINUTES = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const TRADES = Number(process.argv[4] ?? 1_000_000);
const ROOT = join(import.meta.dirname, '..');
const M = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const PAIRS = ['BTC/USD', 'ETH/USD'];

/** Per minute and pair: one candle, and predictions of two model versions for the minute 5 ahead. */
function stream(minutes: number): { candles: Candle[]; predictions: Prediction[] } {
  const candles: Candle[] = [];
  const predictions: Prediction[] = [];
  const rand = seededRandom(7);
  const price = [60_000, 3_000];
  for (let m = 0; m < minutes; m++)
    PAIRS.forEach((pair, k) => {
      price[k]! *= 1 + (rand() - 0.5) * 0.002;
      const close = price[k]!;
      const windowEnd = T0 + (m + 1) * M;
      candles.push({
        v: 1,
        exchange: 'bench',
        pair,
        interval: '1m',
        windowStart: windowEnd - M,
        windowEnd,
        open: close,
        high: close,
        low: close,
        close,
        volume: 1,
        trades: 1,
        vwap: close,
        filled: false,
        revision: 0,
      } as Candle);
      for (const version of [1, 2]) {
        const predicted = close * (1 + (rand() - 0.5) * 0.001);
        predictions.push({
          v: 1,
          exchange: 'bench',
          pair,
          windowEnd,
          horizonMs: 5 * M,
          targetTs: windowEnd + 5 * M,
          close,
          predictedReturnBps: 0,
          predictedClose: predicted,
          p10: predicted * 0.998,
          p90: predicted * 1.002,
          modelName: 'bench',
          modelVersion: version,
          featureSet: 'technical',
          featureSetVersion: 1,
          createdAt: windowEnd,
          latencyMs: 0,
        });
      }
    });
  return { candles, predictions };
}

function scoringInProcess(s: ReturnType<typeof stream>): { rate: number; cpuRate: number; records: number } {
  const join = new MaturityJoin();
  const q = new RollingQuality();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let verdicts = 0;
  // As on the bus: each minute's candles, then the predictions made at that minute (their targets are 5 ahead).
  const perMinute = PAIRS.length;
  for (let i = 0; i < s.candles.length; i += perMinute) {
    for (let k = 0; k < perMinute; k++)
      for (const e of join.onCandle(s.candles[i + k]!)) {
        q.add(e);
        verdicts++;
      }
    for (let k = 0; k < perMinute * 2; k++)
      for (const e of join.onPrediction(s.predictions[i * 2 + k]!)) {
        q.add(e);
        verdicts++;
      }
    if ((i & 1023) === 0) {
      join.expire(true);
      q.prune();
    }
  }
  const dt = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const records = s.candles.length + s.predictions.length;
  if (verdicts < s.predictions.length - 20)
    throw new Error(`only ${verdicts} verdicts for ${s.predictions.length} predictions`);
  return { rate: records / dt, cpuRate: records / ((cpu.user + cpu.system) / 1e6), records };
}

async function monitorService(s: ReturnType<typeof stream>): Promise<{ rate: number; stored: number }> {
  const bus = new InProcessBus();
  const dir = mkdtempSync(join(tmpdir(), 'bench-monitor-'));
  const store = await openErrorsStore(`duckdb:${join(dir, 'm.duckdb')}`);
  const svc = new MonitorService(bus, store, { clock: 'event' });
  await svc.start();
  const t0 = performance.now();
  const step = 2_000;
  for (let i = 0; i < s.candles.length; i += step) {
    await bus.publish(topics.candles, s.candles.slice(i, i + step));
    await bus.publish(topics.predictions, s.predictions.slice(i * 2, (i + step) * 2));
  }
  await svc.caughtUp();
  const dt = (performance.now() - t0) / 1000;
  const stored = svc.stats.stored;
  await svc.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { rate: (s.candles.length + s.predictions.length) / dt, stored };
}

/** A trades CSV of `n` synthetic trades (2 pairs), for a replay long enough to predict and score. */
function tradesFile(n: number): string {
  const file = join(scratchDir('bench-monitor-'), 'trades.csv'); // 54 MB: removed when the bench exits
  const lines = ['time,pair,price,qty,side,id'];
  for (const chunk of syntheticTradeChunks(n, 100_000, PAIRS, 20))
    for (const t of chunk) lines.push(`${t.tradeTs},${t.pair},${t.price},${t.qty},${t.side},${t.tradeId}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function runOnce(
  data: string,
  monitor: boolean,
): { tradesPerSecond: number; predictions: number; scored: number } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-run-'));
  const out = execFileSync(
    join(ROOT, 'bin', 'cryptocast'),
    [
      'run',
      '--json',
      '--port',
      '0',
      '--store',
      `duckdb:${join(dir, 'r.duckdb')}`,
      '--data',
      data,
      ...(monitor ? [] : ['--no-monitor']),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 },
  );
  rmSync(dir, { recursive: true, force: true });
  const done = JSON.parse(out.trim().split('\n').at(-1)!) as {
    trades: number;
    seconds: number;
    predictions: number;
    errorRecords: number;
  };
  return {
    tradesPerSecond: done.trades / done.seconds,
    predictions: done.predictions,
    scored: done.errorRecords,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A 95 % percentile-bootstrap interval of the median of `xs` (rounds resampled with replacement; a fixed seed). */
function medianInterval(xs: number[], resamples = 10_000): [number, number] {
  const rand = seededRandom(12345, 0x80000000); // below 1: an index
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) medians.push(median(xs.map(() => xs[Math.floor(rand() * xs.length)]!)));
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(resamples * 0.025)]!, medians[Math.floor(resamples * 0.975)]!];
}

const s = stream(MINUTES);
scoringInProcess(stream(20_000)); // warm-up
// Three runs, the median: on a shared machine one run is as fast as the neighbours let it be. Per CPU-second too (the
// process's, the garbage collector's threads included): less sensitive to them than the wall clock.
const pureRuns = [scoringInProcess(s), scoringInProcess(s), scoringInProcess(s)];
const pure = {
  records: pureRuns[0]!.records,
  rate: median(pureRuns.map((r) => r.rate)),
  cpuRate: median(pureRuns.map((r) => r.cpuRate)),
};
console.log(
  `1. scoring in-process: ${fmt(pure.records)} records (predictions + candles) at ${fmt(pure.rate)}/s, ${fmt(pure.cpuRate)} per CPU-second (median of 3 runs; goal ≥ 200,000/s)`,
);
const svc = await monitorService(stream(Math.min(MINUTES, 50_000)));
console.log(
  `2. monitor service on the in-process bus + DuckDB store: ${fmt(svc.rate)} records/s (${fmt(svc.stored)} error records stored)`,
);

const data = tradesFile(TRADES);
const withMon: number[] = [];
const without: number[] = [];
const ratios: number[] = [];
let last = { predictions: 0, scored: 0 };
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which goes first, so that drift in the machine's load does not favour one side.
  const order = r % 2 === 0 ? [true, false] : [false, true];
  const got: Record<string, number> = {};
  for (const m of order) {
    const x = runOnce(data, m);
    got[String(m)] = x.tradesPerSecond;
    if (m) last = x;
  }
  withMon.push(got.true!);
  without.push(got.false!);
  ratios.push(got.true! / got.false!);
  console.log(
    `   round ${r + 1}: with monitor ${fmt(got.true!)} trades/s, without ${fmt(got.false!)} → ${(got.true! / got.false!).toFixed(3)}`,
  );
}
const ratio = median(ratios);
const [low, high] = medianInterval(ratios);
const drop = (r: number) => `${((1 - r) * 100).toFixed(1)} %`;
console.log(
  `3. cryptocast run, ${fmt(TRADES)} trades: with the monitor ${fmt(median(withMon))} trades/s, without ${fmt(median(without))} — median ratio ${ratio.toFixed(3)} (drop ${drop(ratio)}, 95 % interval ${drop(high)} – ${drop(low)}; goal < 5 %; ${fmt(last.predictions)} predictions, ${fmt(last.scored)} scored)`,
);

recordBenchmark(
  'monitor',
  'Monitoring pipeline: scoring throughput and its cost in cryptocast run',
  `\`./bench/run monitor ${MINUTES} ${ROUNDS} ${TRADES}\`

| measure | figure | goal |
|---|---:|---:|
| scoring in-process (maturity join + rolling quality), ${fmt(pure.records)} predictions + candles, median of 3 runs | ${fmt(pure.rate)} records/s (${fmt(pure.cpuRate)} per CPU-second) | ≥ 200,000/s |
| monitor service on the in-process bus, error records into DuckDB | ${fmt(svc.rate)} records/s | — |
| \`cryptocast run\` replay of ${fmt(TRADES)} synthetic trades, with / without the monitor (median of ${ROUNDS} alternating rounds) | ${fmt(median(withMon))} / ${fmt(median(without))} trades/s, ratio ${ratio.toFixed(3)} (${drop(ratio)} drop; 95 % interval of the median ${drop(high)} – ${drop(low)}) | < 5 % drop |

Rounds (with / without, trades/s): ${withMon.map((w, i) => `${fmt(w)} / ${fmt(without[i]!)}`).join('; ')}. ${fmt(last.predictions)} predictions per run, ${fmt(last.scored)} scored by the monitor.`,
);
