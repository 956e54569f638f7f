/**
 * One side of `./bench/run peers` (candles): the candle service alone in this process, consuming the trades backlog
 * the orchestrator produced (bus prefix and group given), until caught up. Prints one JSON line: seconds from
 * start to caught up (the candles published and the offsets committed), trades/s, candles, peak RSS, GC time.
 * Usage: node --max-semi-space-size=2 bench/peers/candles-ours.ts kafka://HOST:PORT PREFIX GROUP TRADES
 * (the V8 flag bin/cryptocast gives `service candles`).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { CandleService } from '../../src/candles/candle-service.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';

const [url, prefix, group, total] = process.argv.slice(2) as [string, string, string, string];
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const bus = KafkaBus.connect(url, { topicPrefix: prefix });
const service = new CandleService({ bus, group });
const rssBefore = process.resourceUsage().maxRSS / 1024;
const t0 = performance.now();
await service.start();
await service.caughtUp();
const seconds = (performance.now() - t0) / 1000;
const out = {
  seconds,
  rate: Number(total) / seconds,
  trades: service.stats.trades,
  candles: service.stats.candles,
  rssMiB: process.resourceUsage().maxRSS / 1024,
  rssBeforeMiB: rssBefore,
  heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
  gcSeconds: gcMs / 1000,
};
await service.stop();
await bus.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
