import { startMarketDataPipeline } from '../../app/pipeline.ts';
import { iso, n, StatusLine } from '../../app/progress.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { TECHNICAL_SET } from '../../features/feature-writer.ts';
import { openFeatureStore } from '../../features/store/open.ts';
import type { ReplayProgress } from '../../ingestion/replay.ts';
import { InProcessBus } from '../../runtime/in-process-bus.ts';
import type { Candle } from '../../schemas/candle.ts';
import { buildSources, type SourceFlags } from '../sources.ts';

/**
 * `cryptocast run`: the whole system in one process on the embedded default (in-process bus). Today that
 * is trades → candles; each closed candle is printed, with a live status line. A replay ends when the
 * recording does; `--source live` runs until Ctrl-C.
 */
export async function run(
  opts: SourceFlags & {
    pairs?: string;
    interval?: string;
    grace?: string;
    latePolicy?: string;
    quiet?: boolean;
    port: string;
    store: string;
  },
): Promise<void> {
  const config = loadStreamConfig({
    pairs: opts.pairs,
    interval: opts.interval,
    graceMs: opts.grace,
    latePolicy: opts.latePolicy,
  });
  const status = new StatusLine();
  let replay: ReplayProgress | undefined;
  const sources = await buildSources(opts, config, (p) => {
    replay = p;
  });
  const bus = new InProcessBus();
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const started = performance.now();
  const printCandle = (c: Candle) =>
    status.print(
      `${c.pair.padEnd(9)} ${iso(c.windowStart).slice(0, 16)}  o ${c.open}  h ${c.high}  l ${c.low}  c ${c.close}  ` +
        `v ${Number(c.volume.toFixed(6))}  n ${c.trades}${c.filled ? '  (idle: filled)' : ''}${c.revision ? `  (revision ${c.revision})` : ''}`,
    );
  const store = await openFeatureStore(opts.store);
  const pipeline = await startMarketDataPipeline({
    bus,
    sources,
    config,
    store,
    signal: abort.signal,
    onCandles: (cs) => {
      if (!opts.quiet) for (const c of cs) printCandle(c);
    },
  });
  const line = () => {
    const s = pipeline.trades.stats;
    const c = pipeline.candles.stats;
    const secs = (performance.now() - started) / 1000;
    return (
      `${opts.source} · ${n(s.trades)} trades (${n(Math.round(s.trades / Math.max(secs, 0.001)))}/s) · ${n(c.candles)} candles` +
      ` (${n(c.filled)} idle) · ${n(c.late)} late · ${n(s.rejects)} rejected · ${n(s.duplicates)} duplicates` +
      ` · ${n(pipeline.features?.stats.ready ?? 0)}/${n(pipeline.features?.stats.vectors ?? 0)} feature vectors ready` +
      (replay ? ` · replay time ${iso(replay.replayTs)}` : '')
    );
  };
  const timer = setInterval(() => {
    if (!opts.quiet) status.update(line());
  }, 250);
  try {
    await pipeline.finished;
  } finally {
    clearInterval(timer);
    await pipeline.stop();
    await bus.close();
  }
  status.done(
    `${abort.signal.aborted ? 'stopped' : 'done'}: ${line()} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  try {
    for (const [pair, end] of await store.latest(TECHNICAL_SET)) {
      const online = await store.online(TECHNICAL_SET, pair);
      process.stderr.write(
        `feature store ${opts.store}: ${pair} history up to ${iso(end)}; ` +
          (online
            ? `online vector of ${iso(online.vector.windowEnd)}\n`
            : 'no ready vector yet (indicators warm up over 61 minutes)\n'),
      );
    }
  } finally {
    await store.close();
  }
}
