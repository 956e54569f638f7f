import type { Duplex } from 'node:stream';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import type { CandlesTable } from '../candles/store/candles-table.ts';
import { log } from '../core/log.ts';
import type { PredictionsStore } from '../inference/predictions-store.ts';
import { defaultRules, type Rule } from '../monitoring/alerts/rules.ts';
import type { ModelCard, ModelRegistry } from '../training/registry/registry.ts';
import { registerAuth } from './auth.ts';
import type { CandlesFeed } from './candles-feed.ts';
import type { ErrorsFeed } from './errors-feed.ts';
import type { Feed, FeedRecord } from './feed.ts';
import type { LatestPredictions } from './latest.ts';
import type { NewsView } from './news-view.ts';
import type { ApiOptions } from './options.ts';
import { OutageLog } from './outage-log.ts';
import type { PipelineHealthView } from './pipeline-health.ts';
import { fail, rawError } from './reply.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { dashboardDataRoutes } from './routes/dashboard-data.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes, observeDurations } from './routes/metrics.ts';
import { modelRoutes } from './routes/model.ts';
import { monitoringRoutes } from './routes/monitoring.ts';
import { predictionRoutes } from './routes/predictions.ts';
import { wsRoutes } from './routes/ws.ts';
import { answeringWithin, answerWithin } from './store-deadline.ts';
import { WsHub } from './ws.ts';

export { type ApiOptions, apiOptionsFromEnv } from './options.ts';

/**
 * The prediction API (Fastify): REST under `/v1/` and the WebSocket stream `/v1/ws`, one plugin per resource
 * (`routes/`). The OpenAPI 3.1 document (`/v1/openapi.json`) is generated from the route schemas, which are derived
 * from zod and are also the response serialisers, so the document cannot drift from what is served (contract tests
 * check every response against it).
 *
 * Authentication (optional API keys, per-key and per-address rate limits) is `auth.ts`. Errors are
 * `{ "error": code, "message": text }`; a known path asked with another method answers 405 with `Allow`.
 */
export interface ApiDeps {
  latest: LatestPredictions;
  store: PredictionsStore;
  /** The current champion's card, or undefined when there is none. */
  model?: () => Promise<ModelCard | undefined>;
  options?: ApiOptions;
  /** The monitoring pipeline's records: `/v1/errors`, `/v1/quality` and the WebSocket `errors` channel. */
  errors?: ErrorsFeed;
  /**
   * The alert rules the monitor evaluates (`--alert-rules`; default: the shipped rules): `/v1/quality` serves their
   * coverage band, which the dashboard colours the coverage cells by.
   */
  alertRules?: readonly Rule[];
  /** The dashboard's data: candles (`/v1/candles`, channel `candles`), model history, pipeline health, news. */
  candles?: { table: CandlesTable; feed: CandlesFeed };
  registry?: ModelRegistry;
  modelName?: string;
  pipeline?: PipelineHealthView;
  news?: NewsView;
  /**
   * Where a history request without `to` ends: now (`wall`, the default, live), or on a replay (`event`) at the
   * pair's newest record, as `/v1/errors` does — the last day of a recording, not an empty "last day" of wall time.
   */
  clock?: 'wall' | 'event';
  /** What the API is still waiting for before it can be ready (stores being opened), for `/v1/ready`'s 503. */
  waitingFor?: () => readonly string[] | undefined;
  /**
   * False until every view the API serves has started (errors, candles, alerts, news: each reads its topic's tail on
   * start), for `/v1/ready`'s 503; absent: only the latest predictions are waited for.
   */
  viewsStarted?: () => boolean;
}

const hubs = new WeakMap<object, WsHub>();

/** The WebSocket hub of an API built by `buildApi` (stats, tests). */
export function wsHubOf(app: object): WsHub | undefined {
  return hubs.get(app);
}

const DAY = 86_400_000;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const apiLog = log.child({ service: 'api' });

/**
 * A request Node could not parse (a header block over its limit, a malformed request line): answered on the raw
 * socket, which is then closed, in the API's error shape. A reset or already closed socket gets nothing.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request line and headers exceed 16 KiB']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request was not received in time']
        : [400, 'the request is not valid HTTP/1.1'];
  rawError(socket, status, message);
}

/** Builds the API (not listening): `await app.listen({ port })`, or `app.inject()` in tests. */
export function buildApi(deps: ApiDeps) {
  const o = deps.options ?? {};
  const requestTimeout = o.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    // No Fastify logger: with one, every request pays for a child logger and the response-time bookkeeping (half
    // again the bare server's CPU per request, measured by bench/api.ts). Errors are logged here, with pino.
    logger: false,
    // Fastify's own 503 while closing is `{ error: 'Service Unavailable', statusCode }`: the onRequest hook below
    // answers instead, in the API's shape (Fastify still adds `Connection: close`).
    return503OnClosing: false,
    // Fastify's default is no limit: a client sending a request (a body to an unknown route) a byte at a time held
    // its connection for ever. Node checks the limit every `connectionsCheckingInterval`.
    requestTimeout,
    http: {
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(30_000, requestTimeout / 2),
    },
    // What Fastify answers by itself (a URL it cannot decode, a header block over Node's 16 KiB) gets the API's
    // error shape too, not Fastify's own `{ error, code, statusCode }`, and no echo of a URL that may be 16 KiB long.
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode ?? 400;
      const message =
        err.code === 'FST_ERR_BAD_URL'
          ? 'the URL is not valid: a % must be followed by two hex digits'
          : err.message;
      return fail(reply, status, message);
    },
    clientErrorHandler: clientError,
    // The client's address (req.ip, by which failed keys are limited) from X-Forwarded-For only as far as the configured
    // proxies say it; without them every client behind an Ingress was the controller, one budget for everyone.
    ...(o.trustProxy === undefined ? {} : { trustProxy: [...o.trustProxy] }),
  });
  deps.latest.useStore(deps.store);
  const feeds = [
    deps.latest,
    ...(deps.errors ? [deps.errors] : []),
    ...(deps.candles ? [deps.candles.feed] : []),
  ] as unknown as Feed<FeedRecord>[];
  const hub = new WsHub(feeds, o.ws);
  hubs.set(app, hub);
  app.addHook('onClose', async () => hub.close());
  // Closing: requests still arriving on open connections (keep-alive, pipelined) are refused before any other hook,
  // so a load balancer or client retries elsewhere. preClose runs as soon as Fastify starts closing.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_req, reply, done) => {
    // Every answer is as of now (the latest prediction changes each minute): no cache between the API and its client
    // may keep it — a CDN's default TTL (a day) would serve yesterday's /v1/predictions/latest. The dashboard's
    // assets say otherwise themselves.
    reply.header('cache-control', 'no-store');
    if (!closing) return done();
    fail(
      reply,
      503,
      'the API is shutting down: retry (another instance, or this one once restarted)',
      'service_unavailable',
    );
  });

  const keyed = (o.apiKeys?.length ?? 0) > 0;
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'cryptocast prediction API',
        version: '1',
        description:
          'BTC and ETH prices predicted 5 minutes ahead. Pairs in URLs use a dash (BTC-USD); timestamps are epoch ms UTC. ' +
          'Live predictions: WebSocket GET /v1/ws; send {"type":"subscribe","pairs":["BTC-USD"],"since":<epoch ms, optional>} ' +
          'to replay those with windowEnd > since, then receive live ones as {"type":"prediction","data":{…}} (no gaps, no duplicates); ' +
          '{"type":"unsubscribe","pairs":[…]} stops them. A resume it could not replay (its store too slow, or the key\'s rate limit) ' +
          'gets {"type":"error","error":"replay_failed" or "rate_limited","channel":…,"pair":…,"message":…} before that pair\'s ' +
          'live records: unsubscribe and subscribe the channel again from the same since (with back-off) to fill the gap.',
      },
      components: keyed
        ? { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } } }
        : {},
      security: keyed ? [{ apiKey: [] }] : [],
    },
  });
  if ((o.corsOrigins?.length ?? 0) > 0) {
    const origins = o.corsOrigins!;
    app.register(cors, {
      origin: origins.includes('*') ? '*' : [...origins],
      methods: ['GET'],
      // An OPTIONS that is not a preflight (no Origin, no Access-Control-Request-Method) got the plugin's text/plain
      // 400 "Invalid Preflight Request", outside the error catalogue.
      strictPreflight: false,
      // A browser may read Retry-After on a 429 only if it is exposed.
      exposedHeaders: ['Retry-After'],
    });
  }

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err.validation !== undefined) return fail(reply, 400, err.message);
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return fail(reply, status, err.message);
    apiLog.error({ err, url: req.routeOptions.url }, 'request failed');
    return fail(reply, status, 'internal error');
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = METHODS.filter((m) => m !== req.method && app.hasRoute({ method: m, url: path }));
    if (allowed.length > 0)
      return reply
        .header('allow', allowed.join(', '))
        .code(405)
        .send({
          error: 'method_not_allowed',
          message: `${req.method} is not allowed on ${path}: use ${allowed.join(', ')}`,
        });
    return fail(reply, 404, `no route ${req.method} ${path.slice(0, 100)}`);
  });

  // A request with `Connection: Upgrade` arrives through Node's 'upgrade' event: its socket has left the HTTP server
  // (no keep-alive, no timeouts). Anywhere but the WebSocket route (which takes the socket over, and never finishes
  // a reply) the answer is the last thing on it: close it once sent, or it stays open as long as the client likes.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.headers.upgrade !== undefined && /\bupgrade\b/i.test(req.headers.connection ?? ''))
      reply.raw.once('finish', () => req.raw.socket?.destroy());
    done();
  });
  observeDurations(app);
  registerAuth(app, o);
  const endAt = (newest: number | undefined) =>
    deps.clock === 'event' && newest !== undefined ? newest + 1 : Date.now() + 1;
  // The routes read the stores, and the bus (the pipeline view), through a deadline: a store or broker that hangs
  // answers 503, not never (store-deadline.ts).
  const storeTimeoutMs = o.storeTimeoutMs ?? 10_000;
  // One outage log per store (the routes that read it share it): a store that fails is logged once, not per request.
  const outages = new Map<string, OutageLog>();
  const outageOf = (what: string) => {
    let outage = outages.get(what);
    if (outage === undefined) {
      outage = new OutageLog({ what });
      outages.set(what, outage);
    }
    return outage;
  };
  const inTime = <T extends object>(store: T, what: string) =>
    answeringWithin(store, what, storeTimeoutMs, outageOf(what));
  app.register(
    predictionRoutes({
      latest: deps.latest,
      store: inTime(deps.store, 'predictions store'),
      maxRangeMs: o.maxRangeMs ?? 31 * DAY,
      defaultEnd: (pair) => endAt(deps.latest.latest(pair)?.windowEnd),
    }),
  );
  // The registry too (a remote MLflow: each call may take its 30-s timeout, and a card download four times that).
  const registry = deps.registry && inTime(deps.registry, 'model registry');
  const champion = deps.model;
  const model =
    champion &&
    (() => answerWithin(champion(), 'model registry', storeTimeoutMs, outageOf('model registry')));
  app.register(modelRoutes({ model }));
  if (deps.errors)
    app.register(
      monitoringRoutes({
        errors: deps.errors,
        model,
        maxRangeMs: o.maxRangeMs ?? 31 * DAY,
        storeTimeoutMs,
        outage: outageOf('errors store'),
        alertRules: deps.alertRules ?? defaultRules(),
      }),
    );
  app.register(
    healthRoutes({ latest: deps.latest, hub, waitingFor: deps.waitingFor, viewsStarted: deps.viewsStarted }),
  );
  app.register(metricsRoutes({ hub, serve: o.publicMetrics !== false }));
  app.register(
    dashboardDataRoutes({
      candles: deps.candles && inTime(deps.candles.table, 'candles store'),
      predictions: inTime(deps.store, 'predictions store'),
      errors: deps.errors && inTime(deps.errors.store, 'errors store'),
      registry,
      modelName: deps.modelName ?? 'cryptocast-price',
      pipeline: deps.pipeline && inTime(deps.pipeline, 'bus'),
      news: deps.news,
      maxRangeMs: o.maxRangeMs ?? 31 * DAY,
      defaultEnd: (pair) => endAt(deps.candles?.feed.latest(pair)?.windowEnd),
    }),
  );
  app.register(async (r) => {
    r.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
      app.swagger(),
    );
  });
  app.register(wsRoutes({ hub }));
  app.register(dashboardRoutes());
  return app;
}
