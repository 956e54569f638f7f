import type { CandlesTable } from '../candles/store/candles-table.ts';
import { listenError } from '../core/listen-error.ts';
import { log } from '../core/log.ts';
import type { PredictionsStore } from '../inference/predictions-store.ts';
import type { Rule } from '../monitoring/alerts/rules.ts';
import type { ErrorsStore } from '../monitoring/store/errors-store.ts';
import type { Bus } from '../runtime/bus.ts';
import { topics } from '../schemas/topics.ts';
import type { ModelCard, ModelRegistry } from '../training/registry/registry.ts';
import { AlertsView } from './alerts-view.ts';
import { cachedFor } from './cached.ts';
import { CandlesFeed } from './candles-feed.ts';
import { ErrorsFeed } from './errors-feed.ts';
import { LatestPredictions } from './latest.ts';
import { NewsView } from './news-view.ts';
import { PipelineHealthView } from './pipeline-health.ts';
import { type ApiOptions, buildApi } from './server.ts';

export interface StartApiOptions {
  bus: Bus;
  store: PredictionsStore;
  /** Pairs loaded from the store on a cold start (canonical, `BTC/USD`). */
  pairs: readonly string[];
  registry?: ModelRegistry;
  modelName?: string;
  port: number;
  host?: string;
  options?: ApiOptions;
  /** Consumer group for the predictions topic (default unique per instance). */
  group?: string;
  /** The monitoring pipeline's store: enables `/v1/errors`, `/v1/quality` and the `errors` channel. */
  errorsStore?: ErrorsStore;
  /** Where the rolling windows and a history request without `to` end: the newest record (`event`, replays) or now (`wall`). */
  qualityClock?: 'event' | 'wall';
  /** The alert rules the monitor evaluates: `/v1/quality`'s coverage band (default: the shipped rules). */
  alertRules?: readonly Rule[];
  /** The candles the monitor keeps: `/v1/candles` and the `candles` channel (the dashboard). */
  candlesTable?: CandlesTable;
  /**
   * The stores above are still opening (`openingStore` stand-ins: a PostgreSQL that is late or unreachable must not
   * keep the API from listening). `startApi` then resolves once listening; requests that need a store answer 503
   * `store_unavailable`, `/v1/ready` says what it waits for, and the feeds start (ready) once this resolves — `ready`
   * of the running API settles with them. Absent: the stores are open, and `startApi` resolves once ready.
   */
  storesOpen?: { what: () => string[]; opened: Promise<unknown> };
}

export interface RunningApi {
  readonly app: ReturnType<typeof buildApi>;
  readonly latest: LatestPredictions;
  readonly errors: ErrorsFeed | undefined;
  readonly candles: CandlesFeed | undefined;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Resolves once the feeds run (`/v1/ready` 200); rejects if they could not start (e.g. a store failed to open). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** The champion's card, re-read from the registry at most every `ttlMs` (the registry may be a remote MLflow). */
export function championCard(
  registry: ModelRegistry,
  name: string,
  ttlMs = 30_000,
): () => Promise<ModelCard | undefined> {
  return cachedFor(ttlMs, async () => {
    const version = await registry.alias(name, 'champion');
    return version === undefined ? undefined : registry.get(name, version);
  });
}

/**
 * The API service: subscribes to `predictions` (a group of its own), serves as soon as it listens (`/v1/ready`
 * says 503 until the stores are open and the latest cache is filled), and stops in order: HTTP and WebSocket first,
 * then the subscriptions.
 */
export async function startApi(o: StartApiOptions): Promise<RunningApi> {
  const latest = new LatestPredictions();
  const errors =
    o.errorsStore === undefined
      ? undefined
      : new ErrorsFeed(o.errorsStore, { clock: o.qualityClock ?? 'wall' });
  const candles = o.candlesTable === undefined ? undefined : new CandlesFeed(o.candlesTable);
  const alerts = new AlertsView();
  const news = new NewsView();
  const clock = o.qualityClock ?? 'wall';
  let storesOpen = o.storesOpen === undefined;
  let viewsStarted = false;
  const app = buildApi({
    latest,
    store: o.store,
    model: o.registry === undefined ? undefined : championCard(o.registry, o.modelName ?? 'cryptocast-price'),
    options: o.options,
    errors,
    alertRules: o.alertRules,
    candles: o.candlesTable && candles ? { table: o.candlesTable, feed: candles } : undefined,
    registry: o.registry,
    modelName: o.modelName ?? 'cryptocast-price',
    pipeline: new PipelineHealthView({ bus: o.bus, latest, alerts, clock }),
    news,
    clock,
    waitingFor: () => (storesOpen ? undefined : o.storesOpen?.what()),
    viewsStarted: () => viewsStarted,
  });
  try {
    await app.listen({ port: o.port, host: o.host ?? '0.0.0.0' });
  } catch (err) {
    await app.close();
    throw listenError(err, o.port, '--port', o.host);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : o.port;
  let stopped = false;
  const stopFeeds = async () => {
    await latest.stop();
    await errors?.stop();
    await candles?.stop();
    await alerts.stop();
    await news.stop();
  };
  const ready = (async () => {
    if (o.storesOpen !== undefined) {
      await o.storesOpen.opened;
      storesOpen = true;
    }
    if (stopped) return;
    await o.bus.ensureTopics([topics.predictions, ...(errors ? [topics.predictionErrors] : [])]);
    await latest.start({ bus: o.bus, store: o.store, pairs: o.pairs, group: o.group });
    await errors?.start({
      bus: o.bus,
      pairs: o.pairs,
      group: o.group === undefined ? undefined : `${o.group}-errors`,
    });
    await candles?.start({
      bus: o.bus,
      pairs: o.pairs,
      group: o.group === undefined ? undefined : `${o.group}-candles`,
    });
    await alerts.start(o.bus);
    await news.start(o.bus);
    viewsStarted = true;
    log.info({ service: 'api', port, pairs: latest.knownPairs() }, 'api ready');
  })();
  if (o.storesOpen === undefined) {
    try {
      await ready;
    } catch (err) {
      await app.close();
      await stopFeeds();
      throw err;
    }
  } else {
    ready.catch(() => {}); // the caller awaits `ready` for the error
    log.info({ service: 'api', port }, 'api listening: waiting for its stores');
  }
  return {
    app,
    latest,
    errors,
    candles,
    port,
    ready,
    close: async () => {
      stopped = true;
      await app.close();
      // Feeds that are starting are let finish first, or a subscription made after the stop would stay open.
      if (storesOpen) await ready.catch(() => {});
      await stopFeeds();
    },
  };
}
