import type { FastifyInstance } from 'fastify';
import type { PredictionsStore } from '../../inference/predictions-store.ts';
import { pairToUrl } from '../../schemas/common.ts';
import type { LatestPredictions } from '../latest.ts';
import { errors, fail, storeUnavailable } from '../reply.ts';
import { HistoryQuerySchema, LatestQuerySchema, PredictionJson, pageJson, zodQuery } from '../schemas.ts';

const DAY = 86_400_000;
const historyQuery = zodQuery(HistoryQuerySchema);
const latestQuery = zodQuery(LatestQuerySchema);

/** True when the query names no parameter but `pair` (the hot path's check: no allocation, no validator). */
function onlyPair(query: Record<string, unknown>): boolean {
  for (const name in query) if (name !== 'pair') return false;
  return true;
}

/**
 * `GET /v1/predictions/latest?pair=BTC-USD`: from memory, a pre-serialised body per pair, no I/O.
 * `GET /v1/predictions?pair=&from=&to=&limit=&after=&modelVersion=`: history from the store, paged (`next` → `after`).
 */
export function predictionRoutes(deps: {
  latest: LatestPredictions;
  store: PredictionsStore;
  maxRangeMs: number;
  /** Where a range without `to` ends, for a pair (ApiDeps.clock). */
  defaultEnd: (pair: string) => number;
}) {
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/predictions/latest',
      {
        schema: {
          summary: 'The latest prediction for a pair',
          querystring: latestQuery.querystring,
          response: { 200: PredictionJson, ...errors(400, 401, 404, 429, 503) },
        },
        // Validated by hand below: the hit path is one map lookup and a look at the parameter names.
        validatorCompiler: () => () => true,
      },
      (req, reply) => {
        const query = req.query as Record<string, unknown>;
        const q = query.pair;
        if (typeof q === 'string' && onlyPair(query)) {
          const body = deps.latest.bodyFor(q);
          if (body !== undefined)
            return reply.header('content-type', 'application/json; charset=utf-8').send(body);
        }
        // Off the hit path (another spelling of the pair, a pair not served, a parameter too many): the route's zod
        // schema, so a refusal reads as every other route's.
        const checked = latestQuery.check(query);
        if ('error' in checked) return fail(reply, 400, checked.error.message);
        const pair = checked.value.pair;
        const body = deps.latest.bodyFor(pairToUrl(pair));
        if (body !== undefined)
          return reply.header('content-type', 'application/json; charset=utf-8').send(body);
        // Before the cache is loaded (the stores still opening, the feed starting) a miss says nothing of the pair.
        if (!deps.latest.ready) return fail(reply, 503, 'loading the latest predictions', 'not_ready');
        return fail(reply, 404, `no prediction for ${pairToUrl(pair)} yet`);
      },
    );

    r.get(
      '/v1/predictions',
      {
        schema: {
          summary: 'Prediction history for a pair, paged by windowEnd',
          querystring: historyQuery.querystring,
          response: { 200: pageJson(PredictionJson), ...errors(400, 401, 429, 503) },
        },
        validatorCompiler: historyQuery.validatorCompiler,
      },
      async (req, reply) => {
        const q = req.query as ReturnType<typeof HistoryQuerySchema.parse>;
        const to = q.to ?? deps.defaultEnd(q.pair);
        const from = q.from ?? to - DAY;
        if (from > to) return fail(reply, 400, 'from must not be after to');
        if (to - from > deps.maxRangeMs)
          return fail(reply, 400, `the range may span at most ${Math.round(deps.maxRangeMs / DAY)} days`);
        const opts = { limit: q.limit ?? 100, after: q.after, modelVersion: q.modelVersion };
        try {
          const items = await deps.store.history(q.pair, from, to, opts);
          let next: number | null = null;
          if (items.length > 0) {
            // A page may end short of `limit` at a windowEnd boundary: one row past it says whether there is more.
            const last = items[items.length - 1]!.windowEnd;
            const more = await deps.store.history(q.pair, from, to, { ...opts, limit: 1, after: last });
            if (more.length > 0) next = last;
          }
          return { pair: pairToUrl(q.pair), from, to, items, next };
        } catch (err) {
          return storeUnavailable(
            reply,
            err,
            'the predictions store is unavailable',
            'predictions history failed',
          );
        }
      },
    );
  };
}
