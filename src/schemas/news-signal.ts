import { z } from 'zod';
import { EpochMs } from './common.ts';

/**
 * The sentiment of one news item for one coin. `availableAt` = when the signal existed (fetch time plus the
 * scoring time): features may use it from then on, never from `publishedAt`.
 */
export const NewsSignalSchema = z.object({
  v: z.literal(1),
  newsId: z.string().min(1),
  coin: z.string().regex(/^[A-Z0-9]{2,10}$/),
  score: z.number().min(-1).max(1),
  label: z.enum(['negative', 'neutral', 'positive']),
  confidence: z.number().min(0).max(1),
  reason: z.string().max(500),
  model: z.string().min(1),
  promptVersion: z.string().min(1),
  /** True when a baseline (lexicon) produced it, e.g. as the fallback of a failed LLM call. */
  baseline: z.boolean(),
  publishedAt: EpochMs,
  availableAt: EpochMs,
});
export type NewsSignal = z.infer<typeof NewsSignalSchema>;
