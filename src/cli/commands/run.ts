import { existsSync } from 'node:fs';
import { type RunningApi, startApi } from '../../api/api-service.ts';
import { apiOptionsFromEnv } from '../../api/server.ts';
import { type CandleReplayStats, klineFiles, replayCandles, replayRange } from '../../app/candle-replay.ts';
import { liveNewsSources, type NewsPipeline, startNewsPipeline } from '../../app/news-pipeline.ts';
import { startMarketDataPipeline } from '../../app/pipeline.ts';
import { alertLine, humanLogLine, iso, n, StatusLine } from '../../app/progress.ts';
import { type LatePolicy, REVISION_HORIZON } from '../../candles/aggregator.ts';
import {
  type CandlesTable,
  openCandleFirstEmissionsTable,
  openCandlesTable,
} from '../../candles/store/candles-table.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { type LastingStoreFailure, lastingStoreError, lastingStoreFailure } from '../../core/duckdb.ts';
import { CryptocastError, ERR, fail, UsageError } from '../../core/errors.ts';
import { redirectLogLines, log as rootLog } from '../../core/log.ts';
import { startMetricsServer } from '../../core/metrics-server.ts';
import { markStarted, readiness } from '../../core/readiness.ts';
import { urlWithoutCredentials } from '../../core/secrets.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { parseStoreUrl } from '../../core/store-url.ts';
import { unlessStopped } from '../../core/unless-stopped.ts';
import { klineReplaySymbols, latestFetchedReplay, recordedNewsFile } from '../../data/locations.ts';
import { RESTART_WARMUP_CANDLES } from '../../features/feature-service.ts';
import { TECHNICAL_SET } from '../../features/feature-writer.ts';
import { ONE_SHOT_STORE_WAIT_MS, openFeatureStore } from '../../features/store/open.ts';
import { ChampionHolder } from '../../inference/model-holder.ts';
import { PredictorService } from '../../inference/predictor-service.ts';
import { openPredictionsStore } from '../../inference/store/open.ts';
import type { ReplayProgress } from '../../ingestion/replay.ts';
import { AlertDelivery } from '../../monitoring/alerts/delivery.ts';
import { AlertEngine, logNotification } from '../../monitoring/alerts/engine.ts';
import { channelsFromEnv } from '../../monitoring/alerts/notifiers.ts';
import { type AlertRulesSetting, defaultRules, loadRules } from '../../monitoring/alerts/rules.ts';
import { MonitorService } from '../../monitoring/monitor-service.ts';
import { type AlertsTable, keepAlertsIn, openAlertsTable } from '../../monitoring/store/alerts-table.ts';
import { openErrorsStore } from '../../monitoring/store/open.ts';
import { RecordedNewsSource } from '../../news/recorded.ts';
import { InProcessBus } from '../../runtime/in-process-bus.ts';
import { MeteredBus } from '../../runtime/metered-bus.ts';
import { type Candle, IntervalSchema } from '../../schemas/candle.ts';
import { pairToUrl } from '../../schemas/common.ts';
import type { BackendFlags } from '../../sentiment/backends.ts';
import { sentimentCacheFile } from '../../sentiment/scorer.ts';
import { openAll } from '../../stores/open.ts';
import { DEFAULT_REGISTRY, openRegistry, requireAnswer } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../../training/registry/registry.ts';
import { parsePort, parsePositiveDuration } from '../flags.ts';
import { buildSources, defaultReplayFiles, parseSpeed, type SourceFlags } from '../sources.ts';
import { openUnlessStopped } from '../stop-while-starting.ts';

/**
 * How old the newest stored candle of a pair may be for a live run to resume after it: the exchanges refill over REST
 * only what is recent (Coinbase keeps recent trades only; a refill holds at most 500 pages), and a replay's candles,
 * months old, say nothing of where a live stream stopped.
 */
export const RESUME_MAX_AGE_MS = 60 * 60_000;

/**
 * The newest stored candle of each of `pairs`, for a live run to resume after (`startMarketDataPipeline`'s
 * `storedCandles`); one older than `RESUME_MAX_AGE_MS` at `now` is left out, and said: that pair starts fresh.
 */
export async function resumableCandles(
  table: CandlesTable,
  pairs: readonly string[],
  now: number,
  say: (line: string) => void,
): Promise<Candle[]> {
  const out: Candle[] = [];
  const stored = new Set(await table.series());
  for (const pair of pairs.filter((p) => stored.has(p))) {
    const c = await table.latest(pair);
    if (c === undefined) continue;
    if (now - c.windowEnd <= RESUME_MAX_AGE_MS) out.push(c);
    else
      say(
        `${pair}: the store's newest candle ends ${iso(c.windowEnd).slice(0, 16)}, over ${RESUME_MAX_AGE_MS / 60_000} minutes ago: starting fresh (no REST refill reaches back that far)`,
      );
  }
  if (out.length > 0)
    say(
      `resuming ${out.map((c) => `${c.pair} after ${iso(c.windowEnd).slice(0, 16)}`).join(', ')}: what traded since is refilled over REST`,
    );
  return out;
}

/**
 * The stored candles that lead up to each resumed candle (`resumableCandles`), oldest first: the feature stage takes
 * them before the first new minute (`startMarketDataPipeline`'s `warmupCandles`), so a restarted live run predicts
 * from its first new minute instead of warming up again for an hour. As many as a restarted feature service re-reads
 * (`FeatureService.warmup`, 1,000 minutes), not just the 61 the windows need: the EMAs (MACD, RSI, ATR) remember every
 * candle they saw, and only after ~1,000 minutes is what they forgot below 1e-9 of their value, so the vectors equal
 * those of a run that never stopped.
 */
export async function resumeWarmupCandles(
  table: CandlesTable,
  resumed: readonly Candle[],
  minutes = RESTART_WARMUP_CANDLES,
  firstEmissions?: CandlesTable,
): Promise<Candle[]> {
  const out: Candle[] = [];
  for (const last of resumed) {
    const from = last.windowEnd - (minutes - 1) * (last.windowEnd - last.windowStart);
    const stored = await table.range(last.pair, from, last.windowEnd + 1);
    if (firstEmissions === undefined) {
      out.push(...stored);
      continue;
    }
    // A minute's first emission where it is kept (under revise): what a running feature stage took. Elsewhere (a
    // store written under dlq, or before first emissions were kept) the stored candle is all there is.
    const first = new Map<number, Candle>();
    for (const c of await firstEmissions.range(last.pair, from, last.windowEnd + 1))
      first.set(c.windowEnd, c);
    for (const c of stored) out.push(first.get(c.windowEnd) ?? c);
  }
  return out;
}

/**
 * Where a live run restarted on its store resumes (`startMarketDataPipeline`'s `storedCandles`, `revisableCandles` and
 * `warmupCandles`): after the newest stored candle of each of `pairs` (`resumableCandles`); under `revise` with the
 * stored minutes of the revision horizon up to it taken back for revisions, as the candle stage of an uninterrupted run
 * still holds them (their latest revisions, `revisable` stored); its feature stage seeded with the minutes leading up
 * to it (`resumeWarmupCandles`), each as first emitted where `firstEmissions` has it, as a running stage took it.
 */
export async function resumeFromStore(
  table: CandlesTable,
  pairs: readonly string[],
  now: number,
  latePolicy: LatePolicy,
  say: (line: string) => void,
  firstEmissions?: CandlesTable,
): Promise<{ storedCandles: Candle[]; revisableCandles: Candle[]; warmupCandles: Candle[] }> {
  const storedCandles = await resumableCandles(table, pairs, now, say);
  const revisableCandles =
    latePolicy === 'revise' ? await resumeWarmupCandles(table, storedCandles, REVISION_HORIZON) : [];
  const warmupCandles = await resumeWarmupCandles(
    table,
    storedCandles,
    RESTART_WARMUP_CANDLES,
    firstEmissions,
  );
  return { storedCandles, revisableCandles, warmupCandles };
}

/**
 * The pair of the example URL `run` prints. Live follows --pairs (BTC/USD by default): the example once said
 * BTC-USDT there, a pair live never has. A replay plays the recordings' BTC/USDT and ETH/USDT unless --pairs picks.
 */
export function examplePair(
  source: string | undefined,
  pairsFlag: string | undefined,
  pairs: readonly string[],
): string {
  return pairToUrl(source === 'live' || pairsFlag !== undefined ? (pairs[0] ?? 'BTC/USD') : 'BTC/USDT');
}

/**
 * `cryptocast run`: the whole system in one process on the embedded default (in-process bus): trades → candles →
 * features → feature store → predictions (the registry's champion) → predictions store → error records at maturity
 * (the monitor), news → sentiment → news features beside them, and the API with the dashboard on `--port`. Each closed
 * candle is printed, with a live status line. A replay ends when the recording does (with `--serve` the API stays up
 * until Ctrl-C); `--source live` runs until Ctrl-C. A replay stopped before its end exits 130 (CC_ERR_INTERRUPTED)
 * after its "stopped" summary; a stop while serving after the replay, or of a live run, exits 0.
 *
 * `--replay MONTH` plays 1-minute klines instead of trades (the shared Binance recording of 2022, or what `cryptocast
 * data fetch` downloaded) together with the news recorded in those months.
 */
export async function run(
  opts: SourceFlags &
    BackendFlags & {
      replay?: string;
      /** Where --pairs came from, for refusals: the flag, or CRYPTOCAST_PAIRS in the environment. */
      pairsSetting?: '--pairs' | 'CRYPTOCAST_PAIRS';
      /** Where --interval came from, for its refusal: the flag, or CRYPTOCAST_INTERVAL in the environment. */
      intervalSetting?: '--interval' | 'CRYPTOCAST_INTERVAL';
      /** `--no-news`: commander sets news = false. */
      news?: boolean;
      newsMaxLag?: string;
      feeds?: string;
      pairs?: string;
      interval?: string;
      grace?: string;
      latePolicy?: string;
      maxPriceFactor?: string;
      quiet?: boolean;
      port: string;
      store: string;
      serve?: boolean;
      json?: boolean;
      alertRules?: string;
      /** Where the rules file was named (main.ts): the flag, or CRYPTOCAST_ALERT_RULES. */
      alertRulesSetting?: AlertRulesSetting;
      /** `--no-monitor`: commander sets monitor = false. */
      monitor?: boolean;
      adaptiveConformal?: boolean;
      shrinkage?: boolean;
      /** `--metrics-port`: /metrics, /health and /ready on a port of their own, as every `service` has. */
      metricsPort?: string;
      /** `--metrics-port-only`: /metrics only on --metrics-port, not on the API's --port. */
      metricsPortOnly?: boolean;
    },
): Promise<void> {
  // Every flag is checked before anything starts: a bad one costs nothing and leaves nothing half-open.
  const port = parsePort(opts.port);
  if (opts.metricsPortOnly && opts.metricsPort === undefined)
    throw fail(ERR.USAGE, '--metrics-port-only needs --metrics-port', {
      hint: 'give --metrics-port PORT: /metrics is served there, and no longer on the API’s --port',
    });
  const metricsPort =
    opts.metricsPort === undefined ? undefined : parsePort(opts.metricsPort, '--metrics-port');
  // The API's port serves /metrics already: the same number for both would be refused as "in use" by this process.
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port)
    throw fail(ERR.USAGE, `--metrics-port ${metricsPort} is also the API's --port`, {
      hint: 'the API serves /metrics on its --port already: leave --metrics-port out, or give it another port',
    });
  if (metricsPort === undefined) return runEmbedded(opts, port);
  // As a service's: probes and scrapes on a port of their own (the chart's embedded pod), /ready once the stages run;
  // on the API's host (this machine only unless CRYPTOCAST_API_HOST widens it). Closed when the run ends.
  const metrics = await startMetricsServer(metricsPort, readiness, apiHost());
  process.stderr.write(`metrics on port ${metrics.port}: /metrics, /health, /ready\n`);
  try {
    return await runEmbedded(opts, port);
  } finally {
    await metrics.close();
  }
}

/** Where the API (and `--metrics-port`) listens: this machine only, unless CRYPTOCAST_API_HOST widens it. */
const apiHost = (): string => setting('CRYPTOCAST_API_HOST') ?? '127.0.0.1';

async function runEmbedded(opts: Parameters<typeof run>[0], port: number): Promise<void> {
  // The API's settings too (a key too short, a malformed rate): refused before a replay, not after it.
  const apiOptions = apiOptionsFromEnv();
  const storeAt = parseStoreUrl(opts.store);
  const rules = opts.alertRules ? loadRules(opts.alertRules, opts.alertRulesSetting) : defaultRules();
  // The features, and so the model and the monitor, are of 1-minute candles: with other candles `run` dead-lettered
  // every one at the features stage and ended "done" with no prediction. Checked here, not by the flag's choices, to
  // say where other candles are made; any other value (15m, 2m, soon) is refused alike: on the command line a usage
  // error, from the environment a setting's (the rule of every flag, src/cli/flags.ts).
  if (opts.interval !== undefined && opts.interval !== '' && opts.interval !== '1m') {
    const fromEnv = opts.intervalSetting === 'CRYPTOCAST_INTERVAL';
    const candleInterval = IntervalSchema.safeParse(opts.interval).data;
    throw fail(
      fromEnv ? ERR.CONFIG : ERR.USAGE,
      `${fromEnv ? 'CRYPTOCAST_INTERVAL=' : '--interval '}${opts.interval}: cryptocast run makes features and predictions of 1-minute candles`,
      {
        hint: `${fromEnv ? 'unset CRYPTOCAST_INTERVAL' : 'leave out --interval'}; for ${candleInterval ?? '5m, 15m or 1h'} candles of trades: cryptocast candles --interval ${candleInterval ?? '5m|15m|1h'}`,
      },
    );
  }
  const config = loadStreamConfig({
    pairs: opts.pairs,
    interval: opts.interval,
    graceMs: opts.grace,
    latePolicy: opts.latePolicy,
    maxPriceFactor: opts.maxPriceFactor,
  });
  // Without the trade recordings (a clone from the public repository), the default replay is the klines `data fetch`
  // downloaded (setup fetches them for the default model).
  const fallback =
    opts.replay === undefined &&
    opts.source !== 'live' &&
    opts.data === undefined &&
    !defaultReplayFiles().every((f) => existsSync(f))
      ? latestFetchedReplay()
      : undefined;
  const replayText = opts.replay ?? fallback;
  const candleRange = replayText === undefined ? undefined : replayRange(replayText);
  if (opts.replay !== undefined && (opts.source === 'live' || opts.data !== undefined))
    throw new UsageError(
      '--replay plays recorded 1-minute klines: it does not go with --source live or --data',
    );
  // --pairs (or CRYPTOCAST_PAIRS) given: a replay plays only those pairs, left out at the source (live sources
  // subscribe to them). Without it, a replay plays every pair its recording holds.
  const onlyPairs = opts.pairs !== undefined && opts.source !== 'live' ? config.pairs : undefined;
  const pairsSetting = opts.pairsSetting ?? '--pairs';
  const klines = candleRange ? klineReplaySymbols(onlyPairs, pairsSetting) : [];
  // A range without klines is refused here, before the stores, the API or anything else starts.
  if (candleRange) klineFiles({ klines, ...candleRange });
  const newsMaxLagMs = parsePositiveDuration('--news-max-lag', opts.newsMaxLag, 60_000);
  const speed = parseSpeed(opts.speed);
  // --json: stdout carries only JSON lines (progress of what is durably stored, then a summary); text goes to stderr.
  const status = new StatusLine(5_000, opts.json ? process.stderr : process.stdout);
  // On a terminal, log lines (a live source's reconnects…) go above the status line as short text, not JSON into it.
  if (process.stderr.isTTY && !opts.json) redirectLogLines((l) => status.note(humanLogLine(l)));
  if (fallback)
    status.print(
      `the trade recordings are not here: replaying the Binance 1-minute klines of ${fallback} that data fetch downloaded (--replay ${fallback})`,
    );
  let replay: ReplayProgress | undefined;
  let candleReplay: Readonly<CandleReplayStats> | undefined;
  const sources = candleRange
    ? []
    : await buildSources(
        opts,
        config,
        (p) => {
          replay = p;
        },
        onlyPairs,
      );
  const abort = new AbortController();
  onStopSignal(() => abort.abort());
  // A replay has an end: a stop before it is an interruption (exit 130, as `train` and `data fetch`); a stop while
  // serving after it, or of a live run (which only ends that way), is the normal end (exit 0).
  let replayFinished = false;
  // A store write that no retry will get through (a full disk, a read-only or damaged file) stops the run with one
  // line saying so: the stages used to re-read their input for ever, logging the same error many times a second.
  let storeFailure: { why: LastingStoreFailure; err: unknown } | undefined;
  const storeFailed = new AbortController();
  /** Told of every failed write (a stage's handler, the monitor's background writes): stops the run on such a one. */
  const onStoreWriteFailure = (err: unknown): void => {
    // PostgreSQL is a server: its disk can be freed while the run waits, as a service does.
    const why = storeAt.kind === 'duckdb' ? lastingStoreFailure(err) : undefined;
    if (why === undefined || storeFailure !== undefined) return;
    storeFailure = { why, err };
    storeFailed.abort();
    abort.abort();
  };
  const bus = new MeteredBus(
    new InProcessBus({
      onHandlerFailure: onStoreWriteFailure,
    }),
  );
  const started = performance.now();
  /** When `--serve` began serving after the replay: the summary's seconds and rates are of the replay, not of the serving. */
  let servingSince: number | undefined;
  const elapsedSeconds = () => ((servingSince ?? performance.now()) - started) / 1000;
  const printCandle = (c: Candle) =>
    status.print(
      `${c.pair.padEnd(9)} ${iso(c.windowStart).slice(0, 16)}  o ${c.open}  h ${c.high}  l ${c.low}  c ${c.close}  ` +
        `v ${Number(c.volume.toFixed(6))}  n ${c.trades}${c.filled ? '  (idle: filled)' : ''}${c.revision ? `  (revision ${c.revision})` : ''}`,
    );
  // The stores: one DuckDB file, or a PostgreSQL that is waited for when it does not answer; a stop during that wait
  // ends the run, as it ends a service, instead of holding it until a second Ctrl-C. A replay has an end, as
  // `features --store` has: it waits as long as they do, then says which store did not answer (a wrong port in the
  // URL used to look like a hang behind one log line); a live run waits as a service does. The feature store opens
  // first: once it answers, the server is there for the other tables.
  const signal = abort.signal;
  const giveUpAfterMs = opts.source === 'live' ? undefined : ONE_SHOT_STORE_WAIT_MS;
  const opened = await openUnlessStopped(signal, 'run', () =>
    openAll({
      features: () =>
        openFeatureStore(opts.store, { signal, giveUpAfterMs }).catch((err: unknown) => {
          if (err instanceof CryptocastError || signal.aborted || giveUpAfterMs === undefined) throw err;
          throw fail(
            ERR.STORE,
            `the store ${urlWithoutCredentials(opts.store)} did not answer within ${giveUpAfterMs / 1000} s: ${err instanceof Error ? err.message : String(err)}`,
            { hint: 'start the database, or check the host, port, user and password of the URL', cause: err },
          );
        }),
      predictions: () => openPredictionsStore(opts.store, { signal }),
      errors: () => openErrorsStore(opts.store, { signal }),
      candles: () => openCandlesTable(opts.store, { signal }),
      candleFirstEmissions: () => openCandleFirstEmissionsTable(opts.store, { signal }),
    }),
  );
  if (!opened) {
    await bus.close();
    throw fail(
      ERR.INTERRUPTED,
      'stopped before the run started, while waiting for the store: nothing was written',
    );
  }
  const {
    features: store,
    predictions,
    errors: errorsStore,
    candles: candlesTable,
    candleFirstEmissions,
  } = opened;
  // Inference on the same bus: the champion predicts every ready vector; replays judge staleness by event time.
  const registry = await openRegistry(setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY);
  const modelName = setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME;
  // One process on a laptop: a registry that does not answer now (a file where a folder should be, an MLflow that is
  // not running) is a setting to fix, said at once — a service would wait for it, holding its input.
  await requireAnswer(
    registry,
    modelName,
    'CRYPTOCAST_REGISTRY names a folder (default .data/registry) or mlflow+http://host:port of a running MLflow',
  );
  const holder = new ChampionHolder(registry, { name: modelName });
  await holder.start();
  const loadFailure = holder.loadFailure();
  // A champion that is named but cannot be loaded is not "no champion": say which file is wrong and what to do.
  if (holder.current() === undefined && loadFailure !== undefined)
    status.print(
      `cannot load the champion "${modelName}" v${loadFailure.version} of ${registry.location}: ${loadFailure.message}; no predictions ` +
        `(${loadFailure.hint ?? 'the registry was not changed: register a new version (bash scripts/price-model.sh, or cryptocast train), or promote another one (cryptocast models list)'})`,
    );
  else if (holder.current() === undefined)
    status.print(
      `no champion "${modelName}" in ${registry.location}: no predictions (train one: bash scripts/price-model.sh, or cryptocast train)`,
    );
  await store.migrate(TECHNICAL_SET); // the predictor's band reads its history before the writer may have started
  const predictor = new PredictorService(bus, holder, predictions, {
    clock: opts.source === 'live' ? 'wall' : 'event',
    // The band on unless --no-adaptive-conformal, the shrinkage gate with --shrinkage; their state is rebuilt from the
    // store's vectors before each pair's first one.
    adaptiveConformal: opts.adaptiveConformal !== false,
    shrinkage: opts.shrinkage === true,
    history: (pair, from, to) => store.history(TECHNICAL_SET, pair, from, to),
  });
  await predictor.start();
  // Monitoring: every prediction scored when its target minute closes, rolling quality; same file, same bus.
  const clock = opts.source === 'live' ? 'wall' : 'event';
  const delivery = new AlertDelivery(channelsFromEnv());
  const alertsLog = rootLog.child({ service: 'alerts' });
  const monitor =
    opts.monitor === false
      ? undefined
      : new MonitorService(bus, errorsStore, {
          clock,
          candles: candlesTable,
          // Under revise a restart seeds the feature stage with first emissions, which the candles table replaces.
          ...(config.latePolicy === 'revise' ? { candleFirstEmissions } : {}),
          onWriteFailure: onStoreWriteFailure,
          stopTimeoutMs: setting('CRYPTOCAST_MONITOR_STOP_TIMEOUT_MS'),
          alerts: {
            // A replay outruns its consumers by design, and on the event clock a rule's `for` passes in milliseconds:
            // consumer lag is meaningful only live.
            engine: new AlertEngine(
              opts.source === 'live' ? rules : rules.filter((r) => r.kind !== 'consumer_lag'),
              delivery,
              undefined,
              // One line per transition, at the alert's time: logged as a service does, a resolution (info) never
              // showed at run's level (warn), and a replay's alerts seemed never to end. Read by a person, a line of
              // the run's output; under --json, whose readers parse stderr as JSON lines, the service's log line at
              // warn (its fields: rule, key, severity, at, startsAt).
              opts.json ? (a) => logNotification(alertsLog, a, 'warn') : (a) => status.print(alertLine(a)),
            ),
            championCreatedAt: () => holder.current()?.card.createdAt,
          },
        });
  // Live, the alerts a monitor announced are kept in the store, and those still firing put back on the (empty) bus
  // before it starts: a restarted run resolves them once clear, or reminds of them, rather than firing them anew.
  const alertsTable: AlertsTable | undefined =
    monitor !== undefined && opts.source === 'live'
      ? await openAlertsTable(opts.store, { signal })
      : undefined;
  const alertsKept = alertsTable ? await keepAlertsIn(alertsTable, bus) : undefined;
  await monitor?.start();
  let api: RunningApi | undefined;
  try {
    api = await startApi({
      bus,
      store: predictions,
      pairs: config.pairs,
      registry,
      modelName,
      port,
      // The laptop's mode, where the API has no key unless one is set: this machine only, not its network (a café's
      // Wi-Fi), unless CRYPTOCAST_API_HOST widens it (the chart's embedded mode sets 0.0.0.0 for its Service).
      host: apiHost(),
      // --metrics-port-only: the process's metrics on --metrics-port alone, not to whoever reaches the API.
      options: { ...apiOptions, publicMetrics: !opts.metricsPortOnly },
      errorsStore,
      qualityClock: clock,
      // The rules the monitor above evaluates: the dashboard colours coverage by their band, not a copy of the default.
      alertRules: rules,
      candlesTable,
    });
    status.print(
      `dashboard on http://127.0.0.1:${api.port}/ · prediction API on http://127.0.0.1:${api.port}/v1/ (e.g. /v1/predictions/latest?pair=${examplePair(opts.source, opts.pairs, config.pairs)}; OpenAPI: /v1/openapi.json)`,
    );
  } catch (err) {
    // --serve asks for the API after the replay: without it the run would replay and end "done", serving nothing.
    if (opts.serve) {
      await monitor?.stop();
      await predictor.stop();
      await delivery.close();
      await holder.stop();
      await bus.close();
      await registry.close();
      await errorsStore.close();
      await candlesTable.close();
      await candleFirstEmissions.close();
      await predictions.close();
      await store.close();
      throw err;
    }
    // The run goes on without the API; the refusal's hint (another --port, 0: any free port) says how to have it.
    const hint = err instanceof CryptocastError && err.hint ? ` (${err.hint})` : '';
    status.print(`prediction API not started: ${(err as Error).message}${hint}`);
  }
  // The news half: live feeds, or the news recorded in a candle replay's months (the replay publishes them in event
  // time); trade recordings have no news of their days. One LLM thread, so the market path keeps the other core.
  const recordedNews = candleRange ? recordedNewsFile() : undefined;
  let news: NewsPipeline | undefined;
  const newsAbort = new AbortController();
  abort.signal.addEventListener('abort', () => newsAbort.abort(), { once: true });
  if (opts.news !== false) {
    news = await startNewsPipeline({
      bus,
      sources: opts.source === 'live' ? liveNewsSources(opts.feeds) : [],
      newsExpected: opts.source === 'live' || recordedNews !== undefined,
      backend: { ...opts, threads: opts.threads ?? 1 },
      maxLagMs: newsMaxLagMs,
      // A replay measures an item's wait as live would have had it (event time): the wall clock of a replay at full
      // speed put the LLM minutes behind, and the lexicon scored nearly every item.
      clock,
      cacheFile: sentimentCacheFile(),
      signal: newsAbort.signal,
    });
    status.print(
      `news: ${opts.source === 'live' ? 'live feeds' : recordedNews ? 'the recorded news of the replayed months (2021-10 → 2022-07 recorded)' : candleRange ? 'no news recording here' : 'none recorded for these trades (try --replay 2022-05)'}` +
        ` · sentiment by ${news.backend}${news.note ? ` (${news.note})` : ''}; items waiting over ${newsMaxLagMs / 1000} s${clock === 'event' ? ' of replay time' : ''} are scored by the lexicon`,
    );
  }
  // Live, the in-process bus starts empty: where the previous run stopped is in the store's candles.
  // …and what its feature stage had warmed up on: seeded with it, the first new minute is predicted.
  const resumed =
    opts.source === 'live'
      ? await resumeFromStore(
          candlesTable,
          config.pairs,
          Date.now(),
          config.latePolicy,
          (line) => status.print(line),
          candleFirstEmissions,
        )
      : undefined;
  const pipeline = await startMarketDataPipeline({
    bus,
    sources,
    config,
    store,
    ...resumed,
    signal: abort.signal,
    leaveBacklogOnStop: opts.source !== 'live',
    abandonBacklog: storeFailed.signal,
    onCandles: (cs) => {
      if (!opts.quiet && !opts.json) for (const c of cs) printCandle(c);
    },
    // A replay outruns the LLM: each news row waits until the signals available by its candle's end are known.
    ...(news ? { news: { holdNews: candleRange !== undefined } } : {}),
    ...(candleRange
      ? {
          candleFeed: (signal: AbortSignal) =>
            replayCandles({
              bus,
              klines,
              from: candleRange.from,
              to: candleRange.to,
              ...(recordedNews && news ? { news: new RecordedNewsSource({ file: recordedNews }) } : {}),
              speed,
              signal,
              onMinute: (st) => {
                if (candleReplay === undefined && st.missingSymbols.length > 0)
                  status.print(
                    `no klines of ${st.missingSymbols.join(', ')} for this range: replaying the others (cryptocast data fetch downloads them)`,
                  );
                candleReplay = st;
              },
            }),
        }
      : {}),
  });
  markStarted(); // --metrics-port's /ready: the stages run
  // Holding news rows (a candle replay): as the news stage catches up, the rows up to the minute published before
  // it are written. Ends with the replay; the final pass below writes the rest.
  let newsClockStopped = false;
  const newsClock =
    news && candleRange
      ? (async () => {
          while (!newsClockStopped && !abort.signal.aborted) {
            const minute = candleReplay?.eventTs ?? Number.NEGATIVE_INFINITY;
            // A stop cuts the wait for the news stage short: an LLM behind by minutes held a Ctrl-C as long.
            await unlessStopped(news.signals.caughtUp(), abort.signal);
            if (abort.signal.aborted) break;
            await pipeline.writer?.newsCaughtUp();
            let pause = 200;
            try {
              await pipeline.writer?.newsKnownUntil(minute);
            } catch (err) {
              // The rows stay held and the next pass writes them; the final pass below reports a lasting failure.
              status.print(`news rows not written yet (${(err as Error).message}): retrying`);
              pause = 2_000;
            }
            await new Promise((r) => setTimeout(r, pause));
          }
        })()
      : undefined;
  // Predictions with a verdict in the store: a time-out scored late is a second record of one prediction, one row.
  const verdictsStored = () => (monitor ? monitor.stats.stored - monitor.stats.revised : 0);
  const line = () => {
    const s = pipeline.trades.stats;
    const c = pipeline.candles.stats;
    const secs = elapsedSeconds();
    // A candle replay from its first line: before it reports its first minute (while it reads the zips) the line
    // was the trade replay's, "replay · 0 trades · 0 candles (0 idle) · 0 late …", of a stage it never runs.
    const market = candleRange
      ? `candle replay · ${n(candleReplay?.candles ?? 0)} candles (${n(Math.round((candleReplay?.candles ?? 0) / Math.max(secs, 0.001)))}/s)` +
        ((candleReplay?.rejects ?? 0) > 0 ? ` · ${n(candleReplay?.rejects ?? 0)} kline rows rejected` : '')
      : `${opts.source} · ${n(s.trades)} trades (${n(Math.round(s.trades / Math.max(secs, 0.001)))}/s) · ${n(c.candles)} candles` +
        ` (${n(c.filled)} idle) · ${n(c.late)} late · ${n(s.rejects)} rejected · ${n(s.duplicates)} duplicates`;
    return (
      market +
      ` · ${n(pipeline.features?.stats.ready ?? 0)}/${n(pipeline.features?.stats.vectors ?? 0)} feature vectors ready` +
      // What this run did: a second run on the same store predicts the same minutes again (the store keeps one of
      // each), while their verdicts, stored by the first, are not made twice: said, not shown as "0 scored".
      ` · ${n(predictor.stats.predicted)} predictions · ${n(verdictsStored())} scored` +
      (monitor && monitor.join.stats.judgedBefore > 0
        ? ` (${n(monitor.join.stats.judgedBefore)} already scored by an earlier run on this store)`
        : '') +
      (news
        ? ` · news ${n(news.items.stats.items + (candleReplay?.news ?? 0))} → ${n(news.signals.stats.items)} scored` +
          ` (${n(news.signals.stats.degraded)} by the lexicon: behind)`
        : '') +
      (replay ? ` · replay time ${iso(replay.replayTs)}` : '') +
      (candleReplay ? ` · replay time ${iso(candleReplay.eventTs)}` : '')
    );
  };
  // What is durable so far: the feature writer and the predictor count a batch only once the store committed it.
  const stored = () => ({
    featureRows: pipeline.writer?.stats.written ?? 0,
    newsFeatureRows: pipeline.writer?.stats.newsRows ?? 0,
    predictions: predictor.stats.predicted,
    errorRecords: verdictsStored(),
  });
  let lastStored = '';
  const progress = () => {
    const now = JSON.stringify(stored());
    if (now === lastStored) return;
    lastStored = now;
    process.stdout.write(`${JSON.stringify({ event: 'stored', ...stored() })}\n`);
  };
  const timer = setInterval(() => {
    if (opts.json) progress();
    else if (!opts.quiet) status.update(line());
  }, 250);
  try {
    await pipeline.finished;
    // The news stage finishes what the replay published (items already behind go to the lexicon), then the
    // held news rows are written.
    newsClockStopped = true;
    await newsClock;
    if (news && !abort.signal.aborted) {
      await unlessStopped(news.signals.caughtUp(), abort.signal);
    }
    if (news && !abort.signal.aborted) {
      await pipeline.writer?.newsCaughtUp();
      await pipeline.writer?.newsKnownUntil(Number.POSITIVE_INFINITY);
    }
    // A stopped replay ends at the next batch (what is stored stays; the next run replays the rest); live finishes.
    const scored = (async () => {
      await predictor.caughtUp();
      // A background write of the monitor that fails is told to `onWriteFailure` above (a full disk stops the run).
      await monitor?.caughtUp();
    })();
    // Live finishes what it took in, unless the store cannot take it (then the stages would never catch up).
    await unlessStopped(scored, opts.source === 'live' ? storeFailed.signal : abort.signal);
    replayFinished = opts.source !== 'live' && !abort.signal.aborted;
    if (opts.serve && api && !abort.signal.aborted) {
      servingSince = performance.now();
      status.update(`${line()} · replay done; serving on port ${api.port} until Ctrl-C`, true);
      if (opts.json) {
        progress();
        process.stdout.write(`${JSON.stringify({ event: 'serving', port: api.port, ...stored() })}\n`);
      }
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
  } finally {
    clearInterval(timer);
    newsClockStopped = true;
    newsAbort.abort(); // stops live news feeds (a replay's are done)
    await newsClock;
    await pipeline.stop();
    await news?.stop();
    await api?.close();
    await predictor.stop();
    await monitor?.stop();
    await alertsKept?.stop();
    await delivery.close();
    await holder.stop();
    await bus.close();
    await registry.close();
  }
  const closeStores = async () => {
    await alertsTable?.close();
    await errorsStore.close();
    await candlesTable.close();
    await candleFirstEmissions.close();
    await predictions.close();
    await store.close();
  };
  if (storeFailure !== undefined) {
    // What was durably stored before the failure is what the last progress line says; closing may fail the same way.
    if (opts.json) progress();
    await closeStores().catch(() => {});
    status.clear();
    throw lastingStoreError(
      storeAt.kind === 'duckdb' ? storeAt.path : opts.store,
      storeFailure.why,
      storeFailure.err,
    );
  }
  // Trade files that held no trade end as `candles --input EMPTY` does: refused, not a "done" of nothing.
  const trades = pipeline.trades.stats;
  if (sources.length > 0 && opts.source !== 'live' && !abort.signal.aborted && trades.trades === 0) {
    await closeStores();
    status.clear();
    const leftOut = Object.keys(replay?.leftOut ?? {});
    if (onlyPairs !== undefined && leftOut.length > 0)
      throw fail(
        ERR.PAIR,
        `${pairsSetting} ${onlyPairs.join(',')}: no trades of ${onlyPairs.length > 1 ? 'these pairs' : 'this pair'} in ${opts.data ?? 'the replayed files'} (they hold ${leftOut.sort().join(', ')})`,
        {
          hint:
            pairsSetting === '--pairs'
              ? `replay one of the pairs the files hold (--pairs ${leftOut[0]}), or leave out --pairs`
              : `unset CRYPTOCAST_PAIRS for a replay, or pass one of the pairs the files hold (--pairs ${leftOut[0]})`,
        },
      );
    throw fail(
      ERR.INPUT,
      `no trades in ${opts.data ?? 'the replayed files'}${trades.rejects ? ` (all ${n(trades.rejects)} rows rejected)` : ''}`,
    );
  }
  const seconds = elapsedSeconds();
  status.done(`${abort.signal.aborted ? 'stopped' : 'done'}: ${line()} in ${seconds.toFixed(1)} s`);
  // A run that predicted nothing says why (it is not a failure: the market data and features are stored, and `run`
  // works without a champion, so the exit status stays 0). Before, it ended "done … 0 predictions" and no more.
  const noPredictions =
    predictor.stats.predicted === 0
      ? whyNoPredictions(predictor, pipeline.features?.stats.vectors ?? 0, () => {
          const failure = holder.loadFailure();
          return failure !== undefined
            ? `the champion "${modelName}" v${failure.version} of ${registry.location} cannot be loaded: ${failure.message}`
            : `no champion "${modelName}" in ${registry.location} (train one: bash scripts/price-model.sh, or cryptocast train)`;
        })
      : undefined;
  if (noPredictions !== undefined) status.done(`warning: no predictions: ${noPredictions}`);
  if (opts.json) {
    progress();
    process.stdout.write(
      `${JSON.stringify({
        event: abort.signal.aborted ? 'stopped' : 'done',
        seconds: Number(seconds.toFixed(3)),
        ...(noPredictions !== undefined ? { noPredictions } : {}),
        trades: pipeline.trades.stats.trades,
        rejectedTrades: pipeline.trades.stats.rejects,
        duplicateTrades: pipeline.trades.stats.duplicates,
        candles: pipeline.candles.stats.candles,
        featureVectors: pipeline.features?.stats.vectors ?? 0,
        readyVectors: pipeline.features?.stats.ready ?? 0,
        ...(candleReplay
          ? {
              replayedCandles: candleReplay.candles,
              rejectedKlineRows: candleReplay.rejects,
              missingSymbols: candleReplay.missingSymbols,
            }
          : {}),
        ...(news
          ? {
              newsItems: news.items.stats.items + (candleReplay?.news ?? 0),
              newsScored: news.signals.stats.items,
              newsSignals: news.signals.stats.signals,
              newsByLexiconBehind: news.signals.stats.degraded,
              newsByLexiconFallback: news.scorer.stats.fallbacks,
              sentimentBackend: news.backend,
            }
          : {}),
        ...stored(),
        scoredEarlier: monitor?.join.stats.judgedBefore ?? 0,
        // Without its password (CRYPTOCAST_STORE may carry one): this line is written past the logger's redaction.
        store: urlWithoutCredentials(opts.store),
      })}\n`,
    );
  }
  try {
    const latestByPair = await store.latest(TECHNICAL_SET);
    for (const [pair, end] of latestByPair) {
      const online = await store.online(TECHNICAL_SET, pair);
      process.stderr.write(
        `feature store ${urlWithoutCredentials(opts.store)}: ${pair} history up to ${iso(end)}; ` +
          (online
            ? `online vector of ${iso(online.vector.windowEnd)}\n`
            : 'no ready vector yet (indicators warm up over 61 minutes)\n'),
      );
    }
    const latest = await Promise.all([...latestByPair.keys()].map((p) => predictions.latest(p)));
    for (const p of latest)
      if (p)
        process.stderr.write(
          `prediction ${p.pair} at ${iso(p.targetTs)}: ${p.predictedClose.toFixed(2)} [${p.p10.toFixed(2)}, ${p.p90.toFixed(2)}] (close ${p.close} at ${iso(p.windowEnd)}, model v${p.modelVersion})\n`,
        );
  } finally {
    await closeStores();
  }
  if (abort.signal.aborted && opts.source !== 'live' && !replayFinished)
    throw fail(ERR.INTERRUPTED, 'stopped before the replay ended: what was reported as stored is kept', {
      hint: 'run the same command again: it replays the rest (nothing is written twice)',
    });
}

/**
 * Why the predictor made no prediction, from its counts of vectors skipped by reason, the most actionable first; the
 * champion's part (`noChampion`) says which registry and what to do.
 */
export function whyNoPredictions(
  predictor: Pick<PredictorService, 'stats' | 'maxStalenessMs'>,
  featureVectors: number,
  noChampion: () => string,
): string {
  const { vectors, skipped } = predictor.stats;
  if (featureVectors === 0) return 'no feature vector was made (no candle closed)';
  const parts: string[] = [];
  if (skipped.no_champion > 0)
    parts.push(`${n(skipped.no_champion)} ready vectors had no model: ${noChampion()}`);
  if (skipped.model_error > 0)
    parts.push(`the champion gave no usable output for ${n(skipped.model_error)} vectors (the log says why)`);
  if (skipped.stale > 0)
    parts.push(
      `${n(skipped.stale)} vectors were stale (older than ${predictor.maxStalenessMs / 1000} s when they reached the predictor)`,
    );
  const mismatched = skipped.invalid + skipped.other_set;
  if (mismatched > 0)
    parts.push(`${n(mismatched)} vectors did not fit the technical feature set (dead-lettered)`);
  if (parts.length > 0) return parts.join('; ');
  // Vectors warming up are the normal first hour of any run: the reason only when no vector got past the warm-up.
  if (skipped.not_ready > 0)
    return `none of the ${n(skipped.not_ready)} feature vectors was ready (the indicators warm up over 61 minutes of market time: replay a longer stretch)`;
  return `the predictor had read ${n(vectors)} of ${n(featureVectors)} feature vectors when the run ended`;
}
