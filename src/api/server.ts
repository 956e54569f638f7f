import { STATUS_CODES } from 'node:http';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { log } from '../core/log.ts';
import type { PredictionsStore } from '../inference/predictions-store.ts';
import { Pair, pairFromUrl, pairToUrl } from '../schemas/common.ts';
import { PredictionSchema } from '../schemas/prediction.ts';
import type { ModelCard } from '../training/registry/registry.ts';
import type { LatestPredictions } from './latest.ts';
import { WsHub, type WsOptions } from './ws.ts';

/**
 * The prediction API (Fastify): REST under `/v1/` and the WebSocket stream `/v1/ws`. The OpenAPI 3.1 document
 * (`/v1/openapi.json`) is generated from the route schemas below, which are also the response serialisers, so the
 * document cannot drift from what is served (contract tests check every response against it).
 *
 * - `GET /v1/predictions/latest?pair=BTC-USD`: from memory, a pre-serialised body per pair, no I/O;
 * - `GET /v1/predictions?pair=&from=&to=&limit=&after=`: history from the store, paged (`next` → `after`);
 * - `GET /v1/model`: the champion's card summary; `GET /v1/health`: liveness; `GET /v1/ready`: 503 until the latest
 *   cache is filled and the bus subscription runs.
 *
 * API keys are optional: when configured (CRYPTOCAST_API_KEYS, from the environment only, never logged), every
 * route but health, ready and the OpenAPI document needs `x-api-key`, and each key has a token bucket (429 with
 * Retry-After when empty). Errors are `{ "error": code, "message": text }`.
 */
/** 2100-01-01: the latest timestamp a query may name (the topics' EpochMs bound). */
const MAX_EPOCH_MS = 4_102_444_800_000;

export interface ApiOptions {
  /** Accepted API keys; empty or absent: no authentication. */
  apiKeys?: readonly string[];
  /** Per-key token bucket: sustained requests per second and burst (default 50/s, burst 100). */
  ratePerSecond?: number;
  burst?: number;
  /** CORS: allowed origins (`*` for any); absent or empty: no CORS headers. */
  corsOrigins?: readonly string[];
  /** Widest history range (default 31 days). */
  maxRangeMs?: number;
  ws?: WsOptions;
}

export interface ApiDeps {
  latest: LatestPredictions;
  store: PredictionsStore;
  /** The current champion's card, or undefined when there is none. */
  model?: () => Promise<ModelCard | undefined>;
  options?: ApiOptions;
}

/** Reads the API's settings from the environment (keys come only from there). */
export function apiOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiOptions {
  const list = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const num = (name: string): number | undefined => {
    const s = env[name];
    if (s === undefined || s === '') return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${s}"`);
    return n;
  };
  return {
    apiKeys: list(env.CRYPTOCAST_API_KEYS),
    ratePerSecond: num('CRYPTOCAST_API_RATE'),
    burst: num('CRYPTOCAST_API_BURST'),
    corsOrigins: list(env.CRYPTOCAST_CORS_ORIGINS),
    ws: {
      maxFramesPerSecond: num('CRYPTOCAST_WS_MAX_FRAMES'),
      maxBufferedBytes: num('CRYPTOCAST_WS_MAX_BUFFER'),
    },
  };
}

// ---- schemas (JSON Schema 2020-12, as OpenAPI 3.1 takes them) ----

function jsonSchema(s: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { target: 'draft-2020-12', io: 'output' }) as Record<
    string,
    unknown
  >;
  return rest;
}

const PredictionJson = { ...jsonSchema(PredictionSchema), description: 'A prediction (pair as BTC/USD)' };

export const ErrorJson = {
  type: 'object',
  required: ['error', 'message'],
  additionalProperties: false,
  properties: {
    error: { type: 'string', description: 'machine-readable code, e.g. bad_request, not_found' },
    message: { type: 'string' },
  },
} as const;

const UrlPair = {
  type: 'string',
  pattern: '^[A-Za-z0-9]{2,12}[-/][A-Za-z0-9]{2,12}$',
  description: 'pair, with a dash: BTC-USD',
} as const;

const HistoryJson = {
  type: 'object',
  required: ['pair', 'from', 'to', 'items', 'next'],
  additionalProperties: false,
  properties: {
    pair: { type: 'string', description: 'the pair, with a dash' },
    from: { type: 'integer', description: 'windowEnd ≥ from (epoch ms)' },
    to: { type: 'integer', description: 'windowEnd < to (epoch ms)' },
    items: { type: 'array', items: PredictionJson },
    next: {
      type: ['integer', 'null'],
      description: 'pass as `after` (same pair, from, to) for the next page; null on the last page',
    },
  },
} as const;

const ModelJson = {
  type: 'object',
  required: [
    'name',
    'version',
    'createdAt',
    'codeVersion',
    'horizonMs',
    'target',
    'featureSets',
    'features',
    'pairs',
    'trainingWindow',
    'datasetFingerprint',
    'summary',
  ],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    createdAt: { type: 'integer' },
    codeVersion: { type: 'string' },
    horizonMs: { type: 'integer' },
    target: { type: 'string' },
    featureSets: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'version'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, version: { type: 'integer' } },
      },
    },
    features: { type: 'integer', description: 'number of input columns' },
    pairs: { type: 'array', items: { type: 'string' } },
    trainingWindow: {
      type: 'object',
      required: ['from', 'to'],
      additionalProperties: false,
      properties: { from: { type: 'integer' }, to: { type: 'integer' } },
    },
    datasetFingerprint: { type: 'string' },
    summary: { type: 'object', additionalProperties: true, description: 'walk-forward summary metrics' },
    gate: {
      type: 'object',
      required: ['promoted', 'reasons'],
      additionalProperties: false,
      properties: { promoted: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } } },
    },
  },
} as const;

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorJson]));

// ---- rate limit ----

/** A token bucket per API key: `rate` tokens a second, at most `burst`. */
class Buckets {
  private readonly rate: number;
  private readonly burst: number;
  private readonly tokens = new Map<string, { n: number; at: number }>();
  constructor(rate: number, burst: number) {
    this.rate = rate / 1000;
    this.burst = burst;
  }
  /** 0 when a token was taken, else the milliseconds until one is available. */
  take(key: string, now: number): number {
    let b = this.tokens.get(key);
    if (b === undefined) {
      b = { n: this.burst, at: now };
      this.tokens.set(key, b);
    } else {
      b.n = Math.min(this.burst, b.n + (now - b.at) * this.rate);
      b.at = now;
    }
    if (b.n >= 1) {
      b.n -= 1;
      return 0;
    }
    return Math.ceil((1 - b.n) / this.rate);
  }
}

const hubs = new WeakMap<object, WsHub>();

/** The WebSocket hub of an API built by `buildApi` (stats, tests). */
export function wsHubOf(app: object): WsHub | undefined {
  return hubs.get(app);
}

function fail(reply: FastifyReply, status: number, message: string, error?: string): FastifyReply {
  return reply.code(status).send({ error: error ?? errorCode(status), message });
}

/**
 * A refusal before routing. A refused WebSocket upgrade has no HTTP connection to keep alive (and the WebSocket
 * plugin, whose hooks come later, would not close it): the socket is closed once the answer is out.
 */
function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
  error?: string,
): void {
  if (req.headers.upgrade !== undefined) reply.raw.once('finish', () => req.raw.socket?.destroy());
  fail(reply, status, message, error);
}

function errorCode(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

const DAY = 86_400_000;
const apiLog = log.child({ service: 'api' });

/** Builds the API (not listening): `await app.listen({ port })`, or `app.inject()` in tests. */
export function buildApi(deps: ApiDeps) {
  const o = deps.options ?? {};
  const maxRangeMs = o.maxRangeMs ?? 31 * DAY;
  const app = Fastify({
    // No Fastify logger: with one, every request pays for a child logger and the response-time bookkeeping (half
    // again the bare server's CPU per request, measured by bench/api.ts). Errors are logged here, with pino.
    logger: false,
    return503OnClosing: true,
  });
  const hub = new WsHub(deps.latest, deps.store, o.ws);
  hubs.set(app, hub);
  app.addHook('onClose', async () => hub.close());

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
          '{"type":"unsubscribe","pairs":[…]} stops them.',
      },
      components:
        (o.apiKeys?.length ?? 0) > 0
          ? { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } } }
          : {},
      security: (o.apiKeys?.length ?? 0) > 0 ? [{ apiKey: [] }] : [],
    },
  });
  if ((o.corsOrigins?.length ?? 0) > 0) {
    const origins = o.corsOrigins!;
    app.register(cors, { origin: origins.includes('*') ? '*' : [...origins], methods: ['GET'] });
  }

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err.validation !== undefined) return fail(reply, 400, err.message);
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return fail(reply, status, err.message);
    apiLog.error({ err, url: req.routeOptions.url }, 'request failed');
    return fail(reply, status, 'internal error');
  });
  app.setNotFoundHandler((req, reply) =>
    fail(reply, 404, `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 100)}`),
  );

  const keys = new Set(o.apiKeys ?? []);
  if (keys.size > 0) {
    const buckets = new Buckets(o.ratePerSecond ?? 50, o.burst ?? 100);
    app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      if ((req.routeOptions.config as { public?: boolean }).public === true) return done();
      const key = req.headers['x-api-key'];
      if (typeof key !== 'string' || !keys.has(key)) {
        refuse(req, reply, 401, 'a valid x-api-key header is required');
        return;
      }
      const wait = buckets.take(key, Date.now());
      if (wait > 0) {
        reply.header('retry-after', String(Math.max(1, Math.ceil(wait / 1000))));
        refuse(req, reply, 429, 'rate limit exceeded for this API key', 'rate_limited');
        return;
      }
      done();
    });
  }

  app.register(async (r) => {
    r.get(
      '/v1/predictions/latest',
      {
        schema: {
          summary: 'The latest prediction for a pair',
          querystring: {
            type: 'object',
            required: ['pair'],
            properties: { pair: UrlPair },
          },
          response: { 200: PredictionJson, ...errors(400, 401, 404, 429) },
        },
        // Validated by hand below: the hit path is one map lookup.
        validatorCompiler: () => () => true,
      },
      (req, reply) => {
        const q = (req.query as { pair?: unknown }).pair;
        if (typeof q === 'string') {
          const body = deps.latest.bodyFor(q);
          if (body !== undefined)
            return reply.header('content-type', 'application/json; charset=utf-8').send(body);
        }
        const pair = typeof q === 'string' ? pairFromUrl(q) : '';
        if (!Pair.safeParse(pair).success)
          return fail(reply, 400, 'query parameter pair must look like BTC-USD');
        const body = deps.latest.bodyFor(pairToUrl(pair));
        if (body !== undefined)
          return reply.header('content-type', 'application/json; charset=utf-8').send(body);
        return fail(reply, 404, `no prediction for ${pairToUrl(pair)} yet`);
      },
    );

    r.get(
      '/v1/predictions',
      {
        schema: {
          summary: 'Prediction history for a pair, paged by windowEnd',
          querystring: {
            type: 'object',
            required: ['pair'],
            additionalProperties: false,
            properties: {
              pair: UrlPair,
              // Upper bounds keep every value a safe integer (and the stores' BIGINTs): a bad number is a 400.
              from: {
                type: 'integer',
                minimum: 0,
                maximum: MAX_EPOCH_MS,
                description: 'windowEnd ≥ from, epoch ms (default: to − 1 day)',
              },
              to: {
                type: 'integer',
                minimum: 0,
                maximum: MAX_EPOCH_MS,
                description: 'windowEnd < to, epoch ms (default: now)',
              },
              limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
              after: {
                type: 'integer',
                minimum: 0,
                maximum: MAX_EPOCH_MS,
                description: 'the `next` of the previous page',
              },
              modelVersion: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
            },
          },
          response: { 200: HistoryJson, ...errors(400, 401, 429, 503) },
        },
      },
      async (req, reply) => {
        const q = req.query as {
          pair: string;
          from?: number;
          to?: number;
          limit: number;
          after?: number;
          modelVersion?: number;
        };
        const pair = pairFromUrl(q.pair);
        if (!Pair.safeParse(pair).success)
          return fail(reply, 400, 'query parameter pair must look like BTC-USD');
        const to = q.to ?? Date.now() + 1;
        const from = q.from ?? to - DAY;
        if (from > to) return fail(reply, 400, 'from must not be after to');
        if (to - from > maxRangeMs)
          return fail(reply, 400, `the range may span at most ${Math.round(maxRangeMs / DAY)} days`);
        const opts = { limit: q.limit, after: q.after, modelVersion: q.modelVersion };
        let items: Awaited<ReturnType<PredictionsStore['history']>>;
        let next: number | null = null;
        try {
          items = await deps.store.history(pair, from, to, opts);
          if (items.length > 0) {
            // A page may end short of `limit` at a windowEnd boundary: one row past it says whether there is more.
            const last = items[items.length - 1]!.windowEnd;
            const more = await deps.store.history(pair, from, to, { ...opts, limit: 1, after: last });
            if (more.length > 0) next = last;
          }
        } catch (err) {
          apiLog.error({ err }, 'predictions history failed');
          return fail(reply, 503, 'the predictions store is unavailable', 'store_unavailable');
        }
        return { pair: pairToUrl(pair), from, to, items, next };
      },
    );

    r.get(
      '/v1/model',
      {
        schema: {
          summary: 'The champion model serving predictions',
          response: { 200: ModelJson, ...errors(401, 404, 429, 503) },
        },
      },
      async (_req, reply) => {
        let card: ModelCard | undefined;
        try {
          card = await deps.model?.();
        } catch (err) {
          apiLog.error({ err }, 'model registry lookup failed');
          return fail(reply, 503, 'the model registry is unavailable', 'registry_unavailable');
        }
        if (card === undefined) return fail(reply, 404, 'no champion model');
        return {
          name: card.name,
          version: card.version,
          createdAt: card.createdAt,
          codeVersion: card.codeVersion,
          horizonMs: card.horizonMs,
          target: card.target,
          featureSets: card.featureSets,
          features: card.columns.length,
          pairs: card.pairs,
          trainingWindow: card.trainingWindow,
          datasetFingerprint: card.datasetFingerprint,
          summary: card.summary,
          ...(card.gate === undefined ? {} : { gate: card.gate }),
        };
      },
    );

    r.get(
      '/v1/health',
      {
        config: { public: true },
        schema: {
          summary: 'Liveness',
          response: {
            200: {
              type: 'object',
              required: ['status', 'uptimeS'],
              additionalProperties: false,
              properties: { status: { type: 'string', const: 'ok' }, uptimeS: { type: 'number' } },
            },
          },
        },
      },
      async () => ({ status: 'ok' as const, uptimeS: Math.round(process.uptime()) }),
    );

    r.get(
      '/v1/ready',
      {
        config: { public: true },
        schema: {
          summary: 'Readiness: the latest predictions are loaded and the predictions topic is subscribed',
          response: {
            200: {
              type: 'object',
              required: ['status', 'pairs', 'clients'],
              additionalProperties: false,
              properties: {
                status: { type: 'string', const: 'ready' },
                pairs: { type: 'array', items: { type: 'string' } },
                clients: { type: 'integer', description: 'WebSocket connections' },
              },
            },
            503: ErrorJson,
          },
        },
      },
      async (_req, reply) => {
        if (!deps.latest.ready) return fail(reply, 503, 'loading the latest predictions', 'not_ready');
        return {
          status: 'ready' as const,
          pairs: deps.latest.knownPairs().map(pairToUrl),
          clients: hub.size,
        };
      },
    );

    r.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
      app.swagger(),
    );
  });

  // The WebSocket plugin wraps the handler of every route of its context: kept to a context of its own, so the
  // REST routes stay unwrapped.
  app.register(async (r) => {
    await r.register(websocket, { options: { maxPayload: 4096 } });
    r.get(
      '/v1/ws',
      {
        websocket: true,
        schema: {
          summary: 'Live predictions over WebSocket',
          description:
            'Send {"type":"subscribe","pairs":["BTC-USD"],"since":<epoch ms, optional>}: predictions with windowEnd > since are replayed, then live ones follow as {"type":"prediction","data":{…}}, with neither gaps nor duplicates. {"type":"unsubscribe","pairs":[…]} stops. Malformed frames get {"type":"error",…}; flooding closes with 1008, a client that does not read closes with 1013.',
        },
      },
      (socket) => hub.accept(socket),
    );
  });
  return app;
}
