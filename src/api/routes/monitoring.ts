import type { FastifyInstance, FastifyReply } from 'fastify';
import { coverageAlertBand, type Rule } from '../../monitoring/alerts/rules.ts';
import { figures } from '../../monitoring/rolling-quality.ts';
import { pairToUrl } from '../../schemas/common.ts';
import { PredictionErrorSchema } from '../../schemas/prediction-error.ts';
import type { ModelCard } from '../../training/registry/registry.ts';
import type { ErrorsFeed } from '../errors-feed.ts';
import { StoreNotOpenError } from '../opening-store.ts';
import type { OutageLog } from '../outage-log.ts';
import { errors, fail, storeUnavailable } from '../reply.ts';
import {
  ErrorsQuerySchema,
  jsonSchema,
  pageJson,
  type Quality,
  QualityQuerySchema,
  QualitySchema,
  zodQuery,
} from '../schemas.ts';
import { answeringWithin, answerWithin } from '../store-deadline.ts';

const DAY = 86_400_000;
const errorsQuery = zodQuery(ErrorsQuerySchema);
const qualityQuery = zodQuery(QualityQuerySchema);

/** 404 naming the pairs that have records, or undefined when `pair` is one of them. */
async function unknownPair(
  feed: ErrorsFeed,
  pair: string,
  reply: FastifyReply,
  timeoutMs: number,
  outage: OutageLog,
) {
  // Only a failure is told to the outage log: an answer may come from the feed's cached pair list (60 s), which
  // says nothing of the store.
  const known = await answerWithin(feed.allPairs(), 'errors store', timeoutMs).catch((err: unknown) => {
    if (!(err instanceof StoreNotOpenError)) outage.failed(err);
    throw err;
  });
  if (known.includes(pair)) return undefined;
  return fail(
    reply,
    404,
    `no error records for ${pairToUrl(pair)}; pairs with records: ${known.map(pairToUrl).join(', ') || 'none yet (is the monitor running?)'}`,
  );
}

type Summary = Record<string, unknown> & { per_pair?: Record<string, Record<string, unknown>> };
const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const ci = (x: unknown) =>
  Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === 'number')
    ? (x as [number, number])
    : null;

/** The champion card's walk-forward figures for a pair (or pooled over its pairs when it was not trained on it). */
export function walkForward(card: ModelCard, pair: string): NonNullable<Quality['champion']>['walkForward'] {
  const summary = card.summary as Summary;
  const own = summary.per_pair?.[pair];
  const s = own ?? summary;
  return {
    scope: own ? pair : 'all pairs',
    n: num(s.n),
    mae: num(s.mae_model),
    persistenceMae: num(s.mae_persistence),
    skill: num(s.skill),
    dmPvalue: num(s.dm_pvalue),
    directionalAccuracy: num(s.direction_accuracy),
    directionalCi95: ci(s.direction_ci95),
    coverage: num(s.coverage_p10_p90),
  };
}

/**
 * `GET /v1/errors`: the error records of a pair, paged by windowEnd like `/v1/predictions`.
 * `GET /v1/quality?pair=`: the rolling windows (every model version together, and each version), ending at the
 * stream's clock, beside the champion's walk-forward figures.
 */
export function monitoringRoutes(deps: {
  errors: ErrorsFeed;
  model?: () => Promise<ModelCard | undefined>;
  maxRangeMs: number;
  /** How long a store read may take (then 503, as a failed read). */
  storeTimeoutMs: number;
  /** The errors store's outage log (shared with the other routes that read it). */
  outage: OutageLog;
  /** The monitor's alert rules, for the coverage band `/v1/quality` serves. */
  alertRules: readonly Rule[];
}) {
  // The errors feed's store is shared with the feed itself (its start-up rebuild is not timed): only the routes' reads.
  const store = answeringWithin(deps.errors.spec, 'errors store', deps.storeTimeoutMs, deps.outage);
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/errors',
      {
        schema: {
          summary: 'Error records of matured predictions for a pair, paged by windowEnd',
          querystring: errorsQuery.querystring,
          response: { 200: pageJson(jsonSchema(PredictionErrorSchema)), ...errors(400, 401, 404, 429, 503) },
        },
        validatorCompiler: errorsQuery.validatorCompiler,
      },
      async (req, reply) => {
        const q = req.query as ReturnType<typeof ErrorsQuerySchema.parse>;
        // As /v1/predictions: on the event clock the range ends at the pair's own newest record (the clock is the
        // newest of all pairs: a pair whose records end days earlier read an empty day).
        const newest = deps.errors.clockKind === 'event' ? deps.errors.latest(q.pair)?.windowEnd : undefined;
        const to = q.to ?? (newest ?? deps.errors.clock()) + 1;
        const from = q.from ?? to - DAY;
        if (from > to) return fail(reply, 400, 'from must not be after to');
        if (to - from > deps.maxRangeMs)
          return fail(reply, 400, `the range may span at most ${Math.round(deps.maxRangeMs / DAY)} days`);
        try {
          const missing = await unknownPair(deps.errors, q.pair, reply, deps.storeTimeoutMs, deps.outage);
          if (missing) return missing;
          const opts = { limit: q.limit ?? 100, after: q.after, modelVersion: q.modelVersion };
          const items = await store.history(q.pair, from, to, opts);
          let next: number | null = null;
          if (items.length > 0) {
            const last = items[items.length - 1]!.windowEnd;
            const more = await store.history(q.pair, from, to, { ...opts, limit: 1, after: last });
            if (more.length > 0) next = last;
          }
          return { pair: pairToUrl(q.pair), from, to, items, next };
        } catch (err) {
          return storeUnavailable(reply, err, 'the errors store is unavailable', 'errors history failed');
        }
      },
    );

    r.get(
      '/v1/quality',
      {
        schema: {
          summary:
            'Rolling quality of the live predictions against persistence, beside the walk-forward figures',
          querystring: qualityQuery.querystring,
          response: { 200: jsonSchema(QualitySchema), ...errors(400, 401, 404, 429, 503) },
        },
        validatorCompiler: qualityQuery.validatorCompiler,
      },
      async (req, reply) => {
        const { pair } = req.query as ReturnType<typeof QualityQuerySchema.parse>;
        try {
          const missing = await unknownPair(deps.errors, pair, reply, deps.storeTimeoutMs, deps.outage);
          if (missing) return missing;
        } catch (err) {
          return storeUnavailable(reply, err, 'the errors store is unavailable', 'errors store failed');
        }
        const q = deps.errors.quality;
        const end = deps.errors.clock();
        const windowsOf = (model?: { name: string; version: number }) =>
          Object.fromEntries(
            Object.entries(q.windows).map(([name, ms]) => {
              const toTs = Math.floor(end / 60_000) * 60_000;
              return [name, { fromTs: toTs - ms, toTs, ...figures(q.sums(pair, ms, end, model)) }];
            }),
          );
        let card: ModelCard | undefined;
        try {
          card = await deps.model?.();
        } catch {
          card = undefined; // the live figures do not depend on the registry
        }
        const body: Quality = {
          pair: pairToUrl(pair),
          clock: end,
          clockKind: deps.errors.clockKind,
          coverageTarget: 0.8,
          coverageAlertBand: coverageAlertBand(deps.alertRules, pair),
          windows: windowsOf(),
          models: q
            .series(pair)
            .sort((a, b) => a.modelName.localeCompare(b.modelName) || a.modelVersion - b.modelVersion)
            .map((s) => ({
              modelName: s.modelName,
              modelVersion: s.modelVersion,
              windows: windowsOf({ name: s.modelName, version: s.modelVersion }),
            })),
          champion: card
            ? { name: card.name, version: card.version, walkForward: walkForward(card, pair) }
            : null,
        };
        return body;
      },
    );
  };
}
