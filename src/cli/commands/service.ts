import { statSync } from 'node:fs';
import { join } from 'node:path';
import { CandleService } from '../../candles/candle-service.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { secret, setting } from '../../config/env.ts';
import { BUS_SERVICES } from '../../config/service-env.ts';
import { catalogued, ERR, fail } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { startMetricsServer } from '../../core/metrics-server.ts';
import { markStarted, readiness } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { FeatureService } from '../../features/feature-service.ts';
import { FeatureWriter } from '../../features/feature-writer.ts';
import { openFeatureStore } from '../../features/store/open.ts';
import { TradeService } from '../../ingestion/trade-service.ts';
import type { AlertRulesSetting } from '../../monitoring/alerts/rules.ts';
import { CryptoPanicSource } from '../../news/cryptopanic.ts';
import { NewsService } from '../../news/news-service.ts';
import { RecordedNewsSource } from '../../news/recorded.ts';
import { DEFAULT_FEEDS, RssSource } from '../../news/rss.ts';
import type { NewsSource } from '../../news/source.ts';
import { connectBus } from '../../runtime/connect.ts';
import { topics } from '../../schemas/topics.ts';
import { type BackendFlags, createBackend } from '../../sentiment/backends.ts';
import { NewsSignalService } from '../../sentiment/news-signal-service.ts';
import { SentimentScorer, sentimentCacheFile } from '../../sentiment/scorer.ts';
import { apiPort, parsePort, parsePositiveDuration } from '../flags.ts';
import { buildSources, type SourceFlags, sharedDataDir } from '../sources.ts';
import { stopWhileStarting } from '../stop-while-starting.ts';

type ServiceOptions = SourceFlags & {
  bus?: string;
  pairs?: string;
  interval?: string;
  grace?: string;
  latePolicy?: string;
  maxPriceFactor?: string;
  group: string;
  store: string;
  feeds?: string;
  maxLag?: string;
  withNews?: boolean;
  registry?: string;
  name?: string;
  every?: string;
  days?: string;
  tuneSeconds?: string;
  once?: boolean;
  maxStaleness?: string;
  clock?: 'wall' | 'event';
  poll?: string;
  adaptiveConformal?: boolean;
  shrinkage?: boolean;
  port?: string;
  opensearchUrl?: string;
  indexPrefix?: string;
  metricsPort?: string;
  /** `service api`: /metrics only on --metrics-port, not on the public --port. */
  metricsPortOnly?: boolean;
  alertRules?: string;
  /** Where the rules file was named: the flag, or CRYPTOCAST_ALERT_RULES (service-commands.ts). */
  alertRulesSetting?: AlertRulesSetting;
} & BackendFlags;

/**
 * `cryptocast service <name>`: one pipeline stage as its own process. Runs until SIGINT/SIGTERM, then stops
 * cleanly (in-flight batch finished, safe offsets committed). A SIGKILL at any moment is also safe: the stage
 * resumes from its committed offsets without losing or duplicating output.
 */
export async function service(name: string, opts: ServiceOptions): Promise<void> {
  requireBus(name, opts.bus);
  if (opts.metricsPortOnly && opts.metricsPort === undefined)
    throw fail(ERR.USAGE, '--metrics-port-only needs --metrics-port', {
      hint: 'give --metrics-port PORT: /metrics is served there, and no longer on the API’s --port',
    });
  // Prometheus metrics, liveness and readiness on a port of their own (Kubernetes probes, scrapes). Closed when the
  // service has stopped: a listening server would keep the process alive after SIGTERM until the SIGKILL.
  if (opts.metricsPort !== undefined) {
    const metricsPort = parsePort(opts.metricsPort, '--metrics-port');
    // The API's own port already serves /metrics; the same number for both used to be refused as "in use by
    // another process" — the other process being this one.
    if (name === 'api' && metricsPort !== 0) {
      if (apiPort(opts.port) === metricsPort)
        throw fail(ERR.USAGE, `--metrics-port ${metricsPort} is also the API's --port`, {
          hint: 'the API serves /metrics on its --port already: leave --metrics-port out, or give it another port',
        });
    }
    const m = await startMetricsServer(metricsPort, readiness);
    log.info({ service: name, port: m.port }, 'metrics on /metrics, probes on /health and /ready');
    try {
      return await runService(name, opts);
    } finally {
      await m.close();
    }
  }
  return runService(name, opts);
}

/**
 * A service that reads or writes topics needs a bus named: without one it ran on an in-process bus of its own, where
 * it received nothing and published to no one. `--bus` (commander puts CRYPTOCAST_BUS there when the flag is absent);
 * `--bus memory` stays possible on purpose (a test, a trial on one machine).
 */
export function requireBus(name: string, bus: string | undefined): void {
  if (!(BUS_SERVICES as readonly string[]).includes(name) || (bus !== undefined && bus.trim() !== '')) return;
  throw fail(
    ERR.CONFIG,
    `service ${name} needs a bus to read and write its topics: none was given (neither --bus nor CRYPTOCAST_BUS)`,
    {
      hint: 'give --bus kafka://host:9092 or set CRYPTOCAST_BUS=kafka://host:9092 (--bus memory: an in-process bus of its own, for trials)',
    },
  );
}

async function runService(name: string, opts: ServiceOptions): Promise<void> {
  // The trainer reads the feature store and writes the registry: no topics, so no bus.
  if (name === 'trainer') return (await import('./trainer.ts')).trainerService(opts);
  if (name === 'predictor') return (await import('./predictor.ts')).predictorService(opts);
  if (name === 'api') return (await import('./api.ts')).apiService(opts);
  if (name === 'monitor') return (await import('./monitor.ts')).monitorService(opts);
  if (name === 'index-sink') return (await import('./index-sink.ts')).indexSinkService(opts);
  const config = loadStreamConfig({
    bus: opts.bus,
    pairs: opts.pairs,
    interval: opts.interval,
    graceMs: opts.grace,
    latePolicy: opts.latePolicy,
    maxPriceFactor: opts.maxPriceFactor,
  });
  // The news recording is checked before the bus: a missing file is the user's to fix, not a source failing later.
  const newsRecording =
    name === 'news' && opts.source === 'replay'
      ? (opts.data ?? join(sharedDataDir(), 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz'))
      : undefined;
  if (newsRecording !== undefined && statSync(newsRecording, { throwIfNoEntry: false })?.isFile() !== true)
    throw fail(
      ERR.INPUT,
      opts.data === undefined
        ? `the news recording is not here (${newsRecording}): give one with --data FILE`
        : `--data: no such file: ${newsRecording}`,
    );
  let scorer: SentimentScorer | undefined;
  const maxLagMs = parsePositiveDuration('--max-lag', opts.maxLag, 60_000);
  const abort = new AbortController();
  if (name === 'news-signals') {
    try {
      scorer = new SentimentScorer({
        primary: createBackend(opts),
        cacheFile: sentimentCacheFile(),
        // A stop ends the LLM call in flight: it waited out the scorer's 20-s deadline before. What the batch has
        // left is not scored by the lexicon (for good, once committed): the batch stays uncommitted and Kafka
        // delivers it again after the restart, to the LLM.
        signal: abort.signal,
        whenStopped: 'throw',
      });
    } catch (err) {
      throw catalogued(err, ERR.CONFIG);
    }
  }
  const bus = await connectBus(config.bus);
  let stopping: Promise<void> | undefined;
  const starting = stopWhileStarting(abort.signal, bus);
  const running = () => {
    starting.started();
    markStarted();
  };
  const shutdown = (signal: string) => {
    log.info({ service: name, signal }, 'stopping');
    abort.abort();
  };
  onStopSignal(shutdown);
  try {
    if (name === 'news') {
      const svc = new NewsService(bus);
      const feeds = (
        opts.feeds === undefined
          ? (setting('CRYPTOCAST_NEWS_FEEDS') ?? [])
          : opts.feeds
              .split(',')
              .map((u) => u.trim())
              .filter(Boolean)
      ).map((url) => ({ url }));
      const source =
        newsRecording !== undefined
          ? new RecordedNewsSource({ file: newsRecording })
          : new RssSource({ feeds: feeds.length > 0 ? feeds : DEFAULT_FEEDS });
      const sources: NewsSource[] = [source];
      // CryptoPanic joins when its token is in the environment (secrets never come from flags or files).
      const token = secret('CRYPTOPANIC_TOKEN');
      if (opts.source !== 'replay' && token)
        sources.push(new CryptoPanicSource({ token, baseUrl: setting('CRYPTOCAST_CRYPTOPANIC_URL') }));
      log.info({ service: 'news', bus: config.bus, sources: sources.map((x) => x.name) }, 'running');
      running();
      stopping = svc.run(sources, abort.signal);
      await stopping;
      log.info({ service: 'news', ...svc.stats }, 'finished');
    } else if (name === 'news-signals') {
      // --clock event for a replay of recorded news (`service news --source replay` publishes them at once): the wait
      // a live run would have had, or the model falls behind on the wall clock and the lexicon scores the backlog.
      const svc = new NewsSignalService(bus, scorer!, { maxLagMs, clock: opts.clock ?? 'wall' });
      try {
        await scorer!.primary.warmUp?.();
      } catch (err) {
        // The weights missing, or a load past its deadline (the local backend's LOAD_TIMEOUT_MS): one catalogued line.
        throw catalogued(err, ERR.MODEL);
      }
      await svc.start();
      running();
      log.info({ service: name, bus: config.bus, backend: scorer!.primary.name }, 'running');
      const timer = setInterval(
        () => log.info({ service: name, ...svc.stats, ...scorer!.stats }, 'progress'),
        10_000,
      );
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      clearInterval(timer);
      stopping = svc.stop();
      await stopping;
      await scorer!.close();
    } else if (name === 'features' || name === 'feature-writer') {
      // A stop while PostgreSQL is waited for ends the open, and the command (below: "stopped before it started").
      const store =
        name === 'feature-writer' ? await openFeatureStore(opts.store, { signal: abort.signal }) : undefined;
      const svc =
        name === 'features'
          ? new FeatureService(bus, 'features', 1_000, { maxPriceFactor: config.maxPriceFactor })
          : new FeatureWriter(bus, store!, 'feature-writer', { news: opts.withNews === true });
      await svc.start();
      running();
      log.info({ service: name, bus: config.bus }, 'running');
      const timer = setInterval(() => log.info({ service: name, ...svc.stats }, 'progress'), 10_000);
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      clearInterval(timer);
      stopping = svc.stop();
      await stopping;
      await store?.close();
    } else if (name === 'candles') {
      const candles = new CandleService({
        bus,
        interval: config.interval,
        graceMs: config.graceMs,
        latePolicy: config.latePolicy,
        group: opts.group,
      });
      await candles.start();
      running();
      log.info(
        { service: 'candles', bus: config.bus, interval: config.interval, graceMs: config.graceMs },
        'running',
      );
      const timer = setInterval(() => log.info({ service: 'candles', ...candles.stats }, 'progress'), 10_000);
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      clearInterval(timer);
      stopping = candles.stop();
    } else {
      const trades = new TradeService(bus, { priceGuard: { maxFactor: config.maxPriceFactor } });
      // --pairs in a replay plays only those pairs, as `run` does (live sources subscribe to them).
      const onlyPairs = opts.pairs !== undefined && opts.source === 'replay' ? config.pairs : undefined;
      const sources = await buildSources(opts, config, undefined, onlyPairs);
      await bus.ensureTopics([topics.trades, topics.dlq]); // the broker's first answer, while a stop may still close it
      running();
      log.info({ service: 'trades', bus: config.bus, sources: sources.map((s) => s.name) }, 'running');
      const timer = setInterval(() => log.info({ service: 'trades', ...trades.stats }, 'progress'), 10_000);
      stopping = trades.run(sources, abort.signal).finally(() => clearInterval(timer));
      await stopping;
      log.info({ service: 'trades', ...trades.stats }, 'sources finished');
    }
    await stopping;
  } catch (err) {
    if (!starting.stoppedWhileStarting()) throw err;
    log.info({ service: name }, 'stopped before it started');
    return;
  }
  await bus.close();
}
