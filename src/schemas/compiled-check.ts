import { Ajv, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import { PredictionErrorSchema } from './prediction-error.ts';
import { TradeEventSchema, TradeSchema, WatermarkSchema } from './trade.ts';

/**
 * The schemas every trade passes through where it enters the system (a replay's parser, a live connector, the JSON
 * trades topic), checked by a function ajv compiles from the schema's own JSON Schema: zod's walk cost about 1 µs a
 * trade, as much as the whole in-process path from trades to candles. And the monitor's verdicts, checked as they
 * are published (23 fields: zod took 30–40 µs each, about 1 % of a replay).
 *
 * Only schemas whose JSON Schema states everything they check belong here: no `refine` (which the JSON Schema would
 * drop silently), no transform, no default. test/unit/schemas/compiled-check.test.ts holds each to zod on random
 * values, near every bound.
 */
const COMPILED: readonly z.ZodType[] = [
  TradeSchema,
  WatermarkSchema,
  TradeEventSchema,
  PredictionErrorSchema,
];

/** Each schema's compiled check, or null for one not listed: one lookup per value on every topic. */
const checks = new Map<z.ZodType, ValidateFunction | null>();
let ajv: Ajv | undefined;

function compiled(schema: z.ZodType): ValidateFunction | null {
  let check = checks.get(schema);
  if (check === undefined) {
    // Compiled on first use: a process that never sees a trade does not pay for it. Output mode: unknown keys are
    // refused (additionalProperties: false), where zod strips them.
    check = null;
    if (COMPILED.includes(schema)) {
      ajv ??= new Ajv();
      check = ajv.compile(z.toJSONSchema(schema, { target: 'draft-07', io: 'output' }));
    }
    checks.set(schema, check);
  }
  return check;
}

/**
 * `schema.safeParse(input)`, faster for the schemas above. A value their compiled check accepts is one zod accepts
 * unchanged (no unknown key to strip, nothing to fill in), so it is the result as it is; anything else (a key zod
 * would strip, a value out of bounds, a wrong type) goes to zod, for its result and its message.
 */
export function safeParse<T>(schema: z.ZodType<T>, input: unknown): z.ZodSafeParseResult<T> {
  if (compiled(schema)?.(input) === true) return { success: true, data: input as T };
  return schema.safeParse(input);
}
