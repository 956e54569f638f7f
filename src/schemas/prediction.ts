import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * One prediction: the close of `pair` at `targetTs = windowEnd + horizonMs`, made from the feature vector of the
 * candle that closed at `windowEnd` by model `modelName` v`modelVersion`. Identified by (pair, windowEnd,
 * modelVersion): publishing it again is harmless (sinks upsert). `latencyMs` = publication time − windowEnd (the
 * candle close), so freshness is measured where it matters.
 */
export const PredictionSchema = z.object({
  v: z.literal(1),
  exchange: Exchange,
  pair: Pair,
  /** The feature timestamp: the close of the candle whose features were used. */
  windowEnd: EpochMs,
  horizonMs: z.number().int().positive(),
  targetTs: EpochMs,
  /** Close at windowEnd, and the prediction for targetTs: return (bps) and price, with the p10–p90 interval. */
  close: z.number().finite().positive(),
  predictedReturnBps: z.number().finite(),
  predictedClose: z.number().finite().positive(),
  p10: z.number().finite().positive(),
  p90: z.number().finite().positive(),
  modelName: z.string().min(1),
  modelVersion: z.number().int().positive(),
  featureSet: z.string().min(1),
  featureSetVersion: z.number().int().positive(),
  /** When it was published (epoch ms), and how long after the candle close. */
  createdAt: EpochMs,
  latencyMs: z.number().finite().nonnegative(),
});
export type Prediction = z.infer<typeof PredictionSchema>;
