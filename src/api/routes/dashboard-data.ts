import type { FastifyInstance } from 'fastify';
import type { CandlesTable } from '../../candles/store/candles-table.ts';
import { log } from '../../core/log.ts';
import type { DashboardSeries } from '../../dashboard/series.ts';
import type { PredictionsStore } from '../../inference/predictions-store.ts';
import type { ErrorsStore } from '../../monitoring/store/errors-store.ts';
import { PublicCandleSchema } from '../../schemas/candle.ts';
import { pairToUrl } from '../../schemas/common.ts';
import type { ModelRegistry } from '../../training/registry/registry.ts';
import { cachedFor } from '../cached.ts';
import type { NewsView } from '../news-view.ts';
import { toldByOutageLog } from '../outage-log.ts';
import type { PipelineHealthView } from '../pipeline-health.ts';
import { errors, fail, storeUnavailable } from '../reply.ts';
import {
  CandlesQuerySchema,
  jsonSchema,
  type ModelHistory,
  ModelHistorySchema,
  NewsQuerySchema,
  NoQuerySchema,
  pageJson,
  SeriesQuerySchema,
  zodQuery,
} from '../schemas.ts';

const DAY = 86_400_000;
const apiLog = log.child({ service: 'api' });
const candlesQuery = zodQuery(CandlesQuerySchema);
const newsQuery = zodQuery(NewsQuerySchema);
const seriesQuery = zodQuery(SeriesQuerySchema);
const noQuery = zodQuery(NoQuerySchema);
const HISTORY_TTL_MS = 30_000;
const loose = (description: string) => ({ type: 'object', additionalProperties: true, description });

/**
 * What the dashboard draws besides predictions and errors: `GET /v1/candles` (paged like `/v1/predictions`),
 * `GET /v1/model/history` (champion changes and rollbacks, and every version), `GET /v1/pipeline` (the health of
 * every pipeline) and `GET /v1/news` (the latest news with their sentiment).
 */
export function dashboardDataRoutes(deps: {
  candles?: CandlesTable;
  predictions?: PredictionsStore;
  errors?: ErrorsStore;
  registry?: ModelRegistry;
  modelName: string;
  pipeline?: PipelineHealthView;
  news?: NewsView;
  maxRangeMs: number;
  /** Where a range without `to` ends, for a pair (ApiDeps.clock). */
  defaultEnd: (pair: string) => number;
}) {
  // Three registry calls and, on MLflow, a card download per registered version: asked at most every 30 s, however
  // many dashboards poll (a new model is registered every few hours).
  const registry = deps.registry;
  const modelHistory =
    registry &&
    cachedFor(HISTORY_TTL_MS, async (): Promise<ModelHistory> => {
      const [changes, versions, champion] = await Promise.all([
        registry.aliasHistory(deps.modelName),
        registry.list(deps.modelName),
        registry.alias(deps.modelName, 'champion'),
      ]);
      return {
        name: deps.modelName,
        champion: champion ?? null,
        changes: changes.filter((c) => c.alias === 'champion').sort((a, b) => a.at - b.at),
        versions: versions.map((c) => ({
          version: c.version,
          createdAt: c.createdAt,
          trainingWindow: c.trainingWindow,
          skill: typeof c.summary.skill === 'number' ? c.summary.skill : null,
          promoted: c.gate?.promoted ?? null,
        })),
      };
    });
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/candles',
      {
        schema: {
          summary: '1-minute candles of a pair, paged by windowEnd',
          querystring: candlesQuery.querystring,
          response: { 200: pageJson(jsonSchema(PublicCandleSchema)), ...errors(400, 401, 429, 503) },
        },
        validatorCompiler: candlesQuery.validatorCompiler,
      },
      async (req, reply) => {
        if (!deps.candles)
          return fail(reply, 503, 'no candles store: the monitor keeps the candles', 'not_available');
        const q = req.query as ReturnType<typeof CandlesQuerySchema.parse>;
        const to = q.to ?? deps.defaultEnd(q.pair);
        const from = q.from ?? to - DAY;
        if (from > to) return fail(reply, 400, 'from must not be after to');
        if (to - from > deps.maxRangeMs)
          return fail(reply, 400, `the range may span at most ${Math.round(deps.maxRangeMs / DAY)} days`);
        try {
          const limit = q.limit ?? 1000;
          const items = await deps.candles.page({ series: q.pair, from, to, limit, after: q.after });
          // One row past the page says whether there is more (a full last page said `next` and led to an empty one).
          let next: number | null = null;
          if (items.length === limit) {
            const last = items[items.length - 1]!.windowEnd;
            const more = await deps.candles.page({ series: q.pair, from, to, limit: 1, after: last });
            if (more.length > 0) next = last;
          }
          return { pair: pairToUrl(q.pair), from, to, items, next };
        } catch (err) {
          return storeUnavailable(reply, err, 'the candles store is unavailable', 'candles read failed');
        }
      },
    );

    r.get(
      '/v1/dashboard/series',
      {
        schema: {
          summary:
            "A pair's candles, predictions and error records of the last days, as columns (the dashboard's first paint)",
          querystring: seriesQuery.querystring,
          response: {
            200: loose('DashboardSeries (src/dashboard/series.ts)'),
            ...errors(400, 401, 404, 429, 503),
          },
        },
        validatorCompiler: seriesQuery.validatorCompiler,
      },
      async (req, reply) => {
        const q = req.query as ReturnType<typeof SeriesQuerySchema.parse>;
        if (!deps.predictions) return fail(reply, 503, 'no predictions store', 'not_available');
        try {
          // The window ends at the pair's newest prediction (a replay of last year shows last year).
          const newest = await deps.predictions.latest(q.pair);
          if (newest === undefined) return fail(reply, 404, `no predictions for ${pairToUrl(q.pair)}`);
          const to = newest.targetTs + 60_000;
          const from = to - (q.days ?? 7) * DAY;
          const none = async () => ({}) as Record<string, (number | null)[]>;
          const [cs, ps, es] = await Promise.all([
            deps.candles?.columns(q.pair, from, to, ['window_end', 'open', 'high', 'low', 'close']) ?? none(),
            deps.predictions.columns(q.pair, from, to, [
              'target_ts',
              'window_end',
              'model_version',
              'predicted_close',
              'p10',
              'p90',
              'latency_ms',
            ]),
            deps.errors?.columns(q.pair, from, to, [
              'target_ts',
              'window_end',
              'model_version',
              'abs_error',
              'persistence_abs_error',
              'direction_hit',
              'direction_tie',
            ]) ?? none(),
          ]);
          const n = (x: (number | null)[] | undefined) => (x ?? []) as number[];
          const body: DashboardSeries = {
            pair: pairToUrl(q.pair),
            from,
            to,
            candles: { t: n(cs.window_end), o: n(cs.open), h: n(cs.high), l: n(cs.low), c: n(cs.close) },
            predictions: {
              t: n(ps.target_ts),
              w: n(ps.window_end),
              v: n(ps.model_version),
              p: n(ps.predicted_close),
              lo: n(ps.p10),
              hi: n(ps.p90),
              lat: n(ps.latency_ms),
            },
            errors: {
              t: n(es.target_ts),
              w: n(es.window_end),
              v: n(es.model_version),
              e: es.abs_error ?? [],
              pe: es.persistence_abs_error ?? [],
              // 1 hit, 0 miss, -1 tie, null unscorable
              hit: (es.abs_error ?? []).map((a, i) =>
                a === null ? null : es.direction_tie?.[i] === 1 ? -1 : (es.direction_hit?.[i] ?? null),
              ),
            },
          };
          // Plain JSON.stringify of number arrays: faster than a schema serialiser for 60,000 numbers.
          return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body));
        } catch (err) {
          return storeUnavailable(reply, err, 'a store is unavailable', 'dashboard series failed');
        }
      },
    );

    r.get(
      '/v1/model/history',
      {
        schema: {
          summary: "The model's history: champion changes and rollbacks, and every registered version",
          querystring: noQuery.querystring,
          response: { 200: jsonSchema(ModelHistorySchema), ...errors(400, 401, 429, 503) },
        },
        validatorCompiler: noQuery.validatorCompiler,
      },
      async (_req, reply) => {
        if (!modelHistory) return fail(reply, 503, 'no model registry configured', 'registry_unavailable');
        try {
          return await modelHistory();
        } catch (err) {
          if (!toldByOutageLog(err)) apiLog.error({ err }, 'model history failed');
          return fail(reply, 503, 'the model registry is unavailable', 'registry_unavailable');
        }
      },
    );

    r.get(
      '/v1/pipeline',
      {
        schema: {
          summary:
            'Health of every pipeline: last message per topic, consumer lag, dead letters, staleness, latency, alerts',
          querystring: noQuery.querystring,
          response: {
            200: loose('see PipelineHealth in src/api/pipeline-health.ts'),
            ...errors(400, 401, 429, 503),
          },
        },
        validatorCompiler: noQuery.validatorCompiler,
      },
      async (_req, reply) => {
        if (!deps.pipeline) return fail(reply, 503, 'pipeline health is not available', 'not_available');
        try {
          return await deps.pipeline.get();
        } catch (err) {
          if (!toldByOutageLog(err)) apiLog.error({ err }, 'pipeline health failed');
          return fail(reply, 503, 'the transport is unavailable', 'bus_unavailable');
        }
      },
    );

    r.get(
      '/v1/news',
      {
        schema: {
          summary:
            'The latest news with their sentiment per coin (empty when the news pipeline does not run)',
          querystring: newsQuery.querystring,
          response: { 200: loose('{ items: NewsEntry[] } (src/api/news-view.ts)'), ...errors(400, 401, 429) },
        },
        validatorCompiler: newsQuery.validatorCompiler,
      },
      async (req) => {
        const q = req.query as ReturnType<typeof NewsQuerySchema.parse>;
        return { items: deps.news?.latest(q.limit ?? 50) ?? [] };
      },
    );
  };
}
