import type { FastifyInstance } from 'fastify';
import type { CandlesTable } from '../../candles/store/candles-table.ts';
import { log } from '../../core/log.ts';
import { CandleSchema } from '../../schemas/candle.ts';
import { pairToUrl } from '../../schemas/common.ts';
import type { ModelRegistry } from '../../training/registry/registry.ts';
import type { NewsView } from '../news-view.ts';
import type { PipelineHealthView } from '../pipeline-health.ts';
import { errors, fail } from '../reply.ts';
import {
  CandlesQuerySchema,
  jsonSchema,
  ModelHistorySchema,
  NewsQuerySchema,
  pageJson,
  zodQuery,
} from '../schemas.ts';

const DAY = 86_400_000;
const apiLog = log.child({ service: 'api' });
const candlesQuery = zodQuery(CandlesQuerySchema);
const newsQuery = zodQuery(NewsQuerySchema);
const loose = (description: string) => ({ type: 'object', additionalProperties: true, description });

/**
 * What the dashboard draws besides predictions and errors: `GET /v1/candles` (paged like `/v1/predictions`),
 * `GET /v1/model/history` (champion changes and rollbacks, and every version), `GET /v1/pipeline` (the health of
 * every pipeline) and `GET /v1/news` (the latest news with their sentiment).
 */
export function dashboardDataRoutes(deps: {
  candles?: CandlesTable;
  registry?: ModelRegistry;
  modelName: string;
  pipeline?: PipelineHealthView;
  news?: NewsView;
  maxRangeMs: number;
}) {
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/candles',
      {
        schema: {
          summary: '1-minute candles of a pair, paged by windowEnd',
          querystring: candlesQuery.querystring,
          response: { 200: pageJson(jsonSchema(CandleSchema)), ...errors(400, 401, 429, 503) },
        },
        validatorCompiler: candlesQuery.validatorCompiler,
      },
      async (req, reply) => {
        if (!deps.candles)
          return fail(reply, 503, 'no candles store: the monitor keeps the candles', 'not_available');
        const q = req.query as ReturnType<typeof CandlesQuerySchema.parse>;
        const to = q.to ?? Date.now() + 1;
        const from = q.from ?? to - DAY;
        if (from > to) return fail(reply, 400, 'from must not be after to');
        if (to - from > deps.maxRangeMs)
          return fail(reply, 400, `the range may span at most ${Math.round(deps.maxRangeMs / DAY)} days`);
        try {
          const limit = q.limit ?? 1000;
          const items = await deps.candles.page({ series: q.pair, from, to, limit, after: q.after });
          let next: number | null = null;
          if (items.length === limit) next = items[items.length - 1]!.windowEnd;
          return { pair: pairToUrl(q.pair), from, to, items, next };
        } catch (err) {
          apiLog.error({ err }, 'candles read failed');
          return fail(reply, 503, 'the candles store is unavailable', 'store_unavailable');
        }
      },
    );

    r.get(
      '/v1/model/history',
      {
        schema: {
          summary: "The model's history: champion changes and rollbacks, and every registered version",
          response: { 200: jsonSchema(ModelHistorySchema), ...errors(401, 429, 503) },
        },
      },
      async (_req, reply) => {
        if (!deps.registry) return fail(reply, 503, 'no model registry configured', 'registry_unavailable');
        try {
          const [changes, versions, champion] = await Promise.all([
            deps.registry.aliasHistory(deps.modelName),
            deps.registry.list(deps.modelName),
            deps.registry.alias(deps.modelName, 'champion'),
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
        } catch (err) {
          apiLog.error({ err }, 'model history failed');
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
          response: {
            200: loose('see PipelineHealth in src/api/pipeline-health.ts'),
            ...errors(401, 429, 503),
          },
        },
      },
      async (_req, reply) => {
        if (!deps.pipeline) return fail(reply, 503, 'pipeline health is not available', 'not_available');
        try {
          return await deps.pipeline.get();
        } catch (err) {
          apiLog.error({ err }, 'pipeline health failed');
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
