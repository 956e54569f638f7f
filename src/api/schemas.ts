import type { FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { Pair, pairFromUrl } from '../schemas/common.ts';
import { PredictionSchema } from '../schemas/prediction.ts';
import { ModelCardSchema } from '../training/registry/registry.ts';

/**
 * The API's schemas, all derived from zod: the topic and registry schemas for what is served, and zod query
 * schemas for what is accepted. JSON Schema (for the OpenAPI document and Fastify's fast serialisers) is generated
 * from them, so documentation, validation and serialisation cannot drift apart.
 */

/** 2100-01-01: the latest timestamp a query may name (the topics' EpochMs bound). */
export const MAX_EPOCH_MS = 4_102_444_800_000;

export function jsonSchema(s: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(s, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return rest;
}

export const PredictionJson = {
  ...jsonSchema(PredictionSchema),
  description: 'A prediction (pair as BTC/USD)',
};

/** A pair in a URL: `BTC-USD` (any case); parsed to the canonical `BTC/USD`. */
export const UrlPairSchema = z
  .string()
  .regex(/^[A-Za-z0-9]{2,12}[-/][A-Za-z0-9]{2,12}$/, 'pair must look like BTC-USD')
  .transform(pairFromUrl)
  .pipe(Pair)
  .describe('pair, with a dash: BTC-USD');

/**
 * A whole number in a query string, between `min` and `max`. Strict on purpose: "Infinity", "1e400", "NaN", "1.5"
 * and "" are refused with a 400 (JSON Schema coercion let some of them through to the store).
 */
export const queryInt = (min: number, max: number, description?: string) => {
  const s = z
    .string()
    .regex(/^\d{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
  return description === undefined ? s : s.describe(description);
};

/**
 * Route options validating the query string with a zod schema: the OpenAPI document gets its JSON Schema, and the
 * handler gets the parsed value (`req.query`). Errors read `querystring/<field> <message>`, answered as 400. `check`
 * is the same validation, for a route that validates by hand (`/v1/predictions/latest`) off its hot path.
 */
export function zodQuery<T extends z.ZodType>(schema: T) {
  const check = (data: unknown): { value: z.output<T> } | { error: Error } => {
    const r = schema.safeParse(data);
    if (r.success) return { value: r.data };
    const issue = r.error.issues[0]!;
    return { error: new Error(`querystring/${issue.path.join('/') || '(root)'} ${issue.message}`) };
  };
  const compiler: FastifySchemaCompiler<unknown> = () => check;
  return { querystring: jsonSchema(schema, 'input'), validatorCompiler: compiler, check };
}

/** The query of a route that takes no parameter: any is refused, as the routes with parameters refuse unknown ones. */
export const NoQuerySchema = z.strictObject({});

export const HistoryQuerySchema = z.strictObject({
  pair: UrlPairSchema,
  from: queryInt(0, MAX_EPOCH_MS, 'windowEnd ≥ from, epoch ms (default: to − 1 day)').optional(),
  to: queryInt(0, MAX_EPOCH_MS, 'windowEnd < to, epoch ms (default: now)').optional(),
  limit: queryInt(1, 1000, 'page size, 1–1000 (default 100)').optional(),
  after: queryInt(0, MAX_EPOCH_MS, 'the `next` of the previous page').optional(),
  modelVersion: queryInt(1, 2_147_483_647).optional(),
});

export const LatestQuerySchema = z.strictObject({ pair: UrlPairSchema });

/** A page of a time-ordered resource. */
export function pageJson(itemJson: Record<string, unknown>) {
  return {
    type: 'object',
    required: ['pair', 'from', 'to', 'items', 'next'],
    additionalProperties: false,
    properties: {
      pair: { type: 'string', description: 'the pair, with a dash' },
      from: { type: 'integer', description: 'windowEnd ≥ from (epoch ms)' },
      to: { type: 'integer', description: 'windowEnd < to (epoch ms)' },
      items: { type: 'array', items: itemJson },
      next: {
        type: ['integer', 'null'],
        description: 'pass as `after` (same pair, from, to) for the next page; null on the last page',
      },
    },
  } as const;
}

/** What `/v1/model` serves of the champion's card: everything but the parameters, folds and artifact list. */
export const ModelSummarySchema = ModelCardSchema.pick({
  name: true,
  version: true,
  createdAt: true,
  codeVersion: true,
  horizonMs: true,
  target: true,
  featureSets: true,
  pairs: true,
  trainingWindow: true,
  datasetFingerprint: true,
  summary: true,
  gate: true,
}).extend({ features: z.number().int().describe('number of input columns') });
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

// ---- monitoring ----

export const ErrorsQuerySchema = HistoryQuerySchema;

export const QualityQuerySchema = z.strictObject({ pair: UrlPairSchema });

const nullableNumber = z.number().nullable();

/** The figures of one rolling window (see monitoring/rolling-quality.ts), prices in the pair's quote currency. */
export const QualityFiguresSchema = z.object({
  fromTs: z.number().int().describe('window start (exclusive), epoch ms'),
  toTs: z.number().int().describe('window end (inclusive), epoch ms'),
  count: z.number().int().describe('scored predictions'),
  unscorable: z.number().int(),
  mae: nullableNumber,
  rmse: nullableNumber,
  bias: nullableNumber.describe('mean of predicted − actual: positive = predicts too high'),
  persistenceMae: nullableNumber,
  skill: nullableNumber.describe('1 − MAE / persistence MAE: positive = better than persistence'),
  directionalAccuracy: nullableNumber,
  directionalCi95: z.array(z.number()).nullable().describe('Wilson 95 % interval: [low, high]'),
  ties: z.number().int(),
  coverage: nullableNumber.describe('share of actual closes inside [p10, p90]; target 0.8'),
});

const WindowsSchema = z.record(z.string(), QualityFiguresSchema);

export const WalkForwardSchema = z.object({
  scope: z
    .string()
    .describe('the pair the figures are of, or "all pairs" when the champion was not trained on it'),
  n: nullableNumber,
  mae: nullableNumber,
  persistenceMae: nullableNumber,
  skill: nullableNumber,
  dmPvalue: nullableNumber,
  directionalAccuracy: nullableNumber,
  directionalCi95: z.array(z.number()).nullable().describe('[low, high]'),
  coverage: nullableNumber,
});

export const QualitySchema = z.object({
  pair: z.string(),
  clock: z.number().describe('where the windows end (epoch ms)'),
  clockKind: z.enum(['event', 'wall']),
  coverageTarget: z.number(),
  coverageAlertBand: z
    .object({
      rule: z.string(),
      window: z.string(),
      low: z.number(),
      high: z.number(),
    })
    .nullable()
    .describe(
      "the alert rules' coverage band for this pair (the first coverage_outside rule that watches it): the monitor alerts when the window's coverage is outside [low, high]; null when no rule watches it",
    ),
  windows: WindowsSchema.describe('every model version together'),
  models: z.array(
    z.object({ modelName: z.string(), modelVersion: z.number().int(), windows: WindowsSchema }),
  ),
  champion: z
    .object({ name: z.string(), version: z.number().int(), walkForward: WalkForwardSchema })
    .nullable()
    .describe("the champion's walk-forward figures from its model card, beside the live ones"),
});
export type Quality = z.infer<typeof QualitySchema>;

// ---- dashboard data ----

export const CandlesQuerySchema = HistoryQuerySchema.omit({ modelVersion: true }).extend({
  // A day of minutes in one page (the dashboard's draw): its own default, documented as it is.
  limit: queryInt(1, 1000, 'page size, 1–1000 (default 1000)').optional(),
});

export const ModelHistorySchema = z.object({
  name: z.string(),
  champion: z.number().int().nullable(),
  changes: z
    .array(
      z.object({
        alias: z.string(),
        version: z.number().int().nullable(),
        previous: z.number().int().nullable(),
        at: z.number(),
        reason: z.string(),
      }),
    )
    .describe('alias changes, oldest first: promotions, rollbacks'),
  versions: z.array(
    z.object({
      version: z.number().int(),
      createdAt: z.number(),
      trainingWindow: z.object({ from: z.number(), to: z.number() }),
      skill: z.number().nullable(),
      promoted: z.boolean().nullable(),
    }),
  ),
});
export type ModelHistory = z.infer<typeof ModelHistorySchema>;

export const NewsQuerySchema = z.strictObject({
  limit: queryInt(1, 200, 'items, newest first (default 50)').optional(),
});

export const SeriesQuerySchema = z.strictObject({
  pair: UrlPairSchema,
  days: queryInt(1, 31, 'days before the newest record (default 7)').optional(),
});
