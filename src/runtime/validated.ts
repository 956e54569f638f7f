import type { z } from 'zod';
import { safeParse } from '../schemas/compiled-check.ts';

/**
 * Untrusted input is validated once, where it enters the system (a parser, a Kafka consumer); the objects a
 * schema produced are remembered here so that an in-process hop does not validate them again (on the
 * embedded default, re-checking every trade on publish would cost more than aggregating it). Anything not
 * produced by `validate` (derived values such as candles) is checked by the bus on publish.
 * Values are immutable once validated: services must not mutate what they receive.
 */
const validated = new WeakSet<object>();

export function validate<T>(schema: z.ZodType<T>, input: unknown): z.ZodSafeParseResult<T> {
  const r = safeParse(schema, input);
  if (r.success && typeof r.data === 'object' && r.data !== null) validated.add(r.data);
  return r;
}

export function isValidated(value: unknown): boolean {
  return typeof value === 'object' && value !== null && validated.has(value);
}
