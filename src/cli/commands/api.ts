import { startApi } from '../../api/api-service.ts';
import { apiOptionsFromEnv } from '../../api/server.ts';
import { openCandlesTable } from '../../candles/store/candles-table.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { DEFAULT_PREDICTIONS_STORE, openPredictionsStore } from '../../inference/store/open.ts';
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
}): Promise<void> {
  const config = loadStreamConfig({ bus: opts.bus, pairs: opts.pairs });
  const port = apiPort(opts.port);
  const options = apiOptionsFromEnv();
  const bus = await connectBus(config.bus);
  const storeUrl = opts.store ?? DEFAULT_PREDICTIONS_STORE;
  const store = await openPredictionsStore(storeUrl);
  const errorsStore = await openErrorsStore(storeUrl);
  const candlesTable = await openCandlesTable(storeUrl);
  const registry = await openRegistry(opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY);
  const api = await startApi({
    bus,
    store,
    pairs: config.pairs,
    registry,
    modelName: opts.name ?? setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME,
    port,
    host: setting('CRYPTOCAST_API_HOST'),
    options,
    // The monitoring pipeline's records live beside the predictions (same store URL).
    errorsStore,
    qualityClock: opts.clock ?? 'wall',
    candlesTable,
  });
  markStarted();
  log.info(
    { service: 'api', bus: config.bus, port: api.port, apiKeys: (options.apiKeys?.length ?? 0) > 0 },
    `running: dashboard on http://127.0.0.1:${api.port}/`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ service: 'api', signal }, 'stopping');
      resolve();
    };
    onStopSignal(stop);
  });
  await api.close();
  await registry.close();
  await errorsStore.close();
  await candlesTable.close();
  await store.close();
  await bus.close();
}
