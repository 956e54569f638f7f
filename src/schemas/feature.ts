import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * A feature vector of one closed candle: the values of a versioned feature set, in the set's column order
 * (null while an indicator warms up). `ready` = every column has a value.
 */
export const FeatureVectorSchema = z.object({
  v: z.literal(1),
  featureSet: z.string().min(1),
  featureSetVersion: z.number().int().positive(),
  exchange: Exchange,
  pair: Pair,
  windowStart: EpochMs,
  windowEnd: EpochMs,
  close: z.number().finite().positive(),
  ready: z.boolean(),
  values: z.array(z.number().finite().nullable()),
});
export type FeatureVectorRecord = z.infer<typeof FeatureVectorSchema>;
