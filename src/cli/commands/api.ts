import { startApi } from '../../api/api-service.ts';
import { openingStore } from '../../api/opening-store.ts';
import { apiOptionsFromEnv } from '../../api/server.ts';
import { openCandlesTable } from '../../candles/store/candles-table.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { DEFAULT_PREDICTIONS_STORE, openPredictionsStore } from '../../inference/store/open.ts';
import { type AlertRulesSetting, defaultRules, loadRules } from '../../monitoring/alerts/rules.ts';
import { openErrorsStore } from '../../monitoring/store/open.ts';
import { connectBus } from '../../runtime/connect.ts';
import { DEFAULT_REGISTRY, openRegistry } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../../training/registry/registry.ts';
import { apiPort } from '../flags.ts';

/**
 * `cryptocast service api`: the prediction API (REST + WebSocket) on `--port` (default 8080, CRYPTOCAST_API_PORT),
 * reading the `predictions` topic of `--bus`, history from the predictions `--store`, and the champion's card from
 * `--registry`. Settings from the environment: CRYPTOCAST_API_KEYS (comma list; when set every data route needs
 * `x-api-key`), CRYPTOCAST_API_RATE / CRYPTOCAST_API_BURST (per-key token bucket), CRYPTOCAST_CORS_ORIGINS,
 * CRYPTOCAST_API_HOST. Runs until SIGINT/SIGTERM.
 */
export async function apiService(opts: {
  bus?: string;
  store?: string;
  port?: string;
  registry?: string;
  name?: string;
  /** Where `/v1/quality`'s windows end: `wall` (live, default) or `event` (replays). */
  clock?: 'wall' | 'event';
  /** Pairs loaded from the store on a cold start (default CRYPTOCAST_PAIRS, else BTC/USD, ETH/USD). */
  pairs?: string;
  /** /metrics only on --metrics-port (served by `service`), not on `port`. */
  metricsPortOnly?: boolean;
  /** The monitor's rules file (`service monitor --alert-rules`): `/v1/quality`'s coverage band. Default: the shipped rules. */
  alertRules?: string;
  alertRulesSetting?: AlertRulesSetting;
}): Promise<void> {
  // A process of its own, the API does not know the monitor's rules: it is given the same file (the chart and the
  // compose file set CRYPTOCAST_ALERT_RULES for both), read and checked here as the monitor does.
  const alertRules = opts.alertRules ? loadRules(opts.alertRules, opts.alertRulesSetting) : defaultRules();
  const config = loadStreamConfig({ bus: opts.bus, pairs: opts.pairs });
  const port = apiPort(opts.port);
  const options = { ...apiOptionsFromEnv(), publicMetrics: !opts.metricsPortOnly };
  // A stop ends the wait for stores that are not there yet, as it ends the running service.
  const abort = new AbortController();
  const unlisten = onStopSignal((signal) => {
    log.info({ service: 'api', signal }, 'stopping');
    abort.abort();
  });
  const bus = await connectBus(config.bus);
  const storeUrl = opts.store ?? DEFAULT_PREDICTIONS_STORE;
  // The stores open in the background (a PostgreSQL that is down or does not answer is waited for): the API listens
  // at once, answers what needs a store with 503 store_unavailable naming it, and is ready as soon as they are open.
  const signal = abort.signal;
  const store = openingStore('the predictions store', openPredictionsStore(storeUrl, { signal }));
  // The monitoring pipeline's records live beside the predictions (same store URL).
  const errorsStore = openingStore('the errors store', openErrorsStore(storeUrl, { signal }));
  const candlesTable = openingStore('the candles store', openCandlesTable(storeUrl, { signal }));
  const stores = {
    'the predictions store': store,
    'the errors store': errorsStore,
    'the candles store': candlesTable,
  };
  const registry = await openRegistry(opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY);
  const closeAll = async () => {
    await registry.close();
    for (const s of Object.values(stores)) await s.close();
    // An opening that the stop cut short has closed what it held once it settles.
    await Promise.allSettled(Object.values(stores).map((s) => s.opened));
    await bus.close();
  };
  let api: Awaited<ReturnType<typeof startApi>>;
  try {
    api = await startApi({
      bus,
      store,
      pairs: config.pairs,
      registry,
      modelName: opts.name ?? setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME,
      port,
      host: setting('CRYPTOCAST_API_HOST'),
      options,
      errorsStore,
      qualityClock: opts.clock ?? 'wall',
      alertRules,
      candlesTable,
      storesOpen: {
        what: () =>
          Object.entries(stores)
            .filter(([, s]) => !s.isOpen)
            .map(([name]) => name),
        opened: Promise.all(Object.values(stores).map((s) => s.opened)),
      },
    });
  } catch (err) {
    abort.abort();
    await closeAll();
    unlisten();
    throw err;
  }
  log.info(
    { service: 'api', bus: config.bus, port: api.port, apiKeys: (options.apiKeys?.length ?? 0) > 0 },
    `running: dashboard on http://127.0.0.1:${api.port}/`,
  );
  // Ready: the probe on --metrics-port turns 200. A store that cannot open (a refused password, a path that is not a
  // DuckDB file) ends the service with its error, as it did when the stores were opened before listening.
  let failure: unknown;
  api.ready.then(
    () => markStarted(),
    (err: unknown) => {
      if (!abort.signal.aborted) failure = err;
      abort.abort();
    },
  );
  await new Promise<void>((resolve) => {
    if (abort.signal.aborted) resolve();
    else abort.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await api.close();
  await closeAll();
  unlisten();
  if (failure !== undefined) throw failure;
}
