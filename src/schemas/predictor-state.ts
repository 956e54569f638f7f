import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * The predictor's adaptive conformal state when it made the band of one prediction (exchange, pair, windowEnd):
 * α_t of the band's lower and upper side (src/inference/adaptive-conformal.ts). α_t sums every matured outcome since
 * the predictor started, so a warm-up from the feature store cannot rebuild it; a restarted predictor reads these
 * back from the tail of the topic and rebuilds the rest (the scores, the bands waiting for their outcome) exactly.
 */
export const AciStateSchema = z.object({
  v: z.literal(1),
  exchange: Exchange,
  pair: Pair,
  /** The prediction's windowEnd: the state is the one its band was made with (after the outcomes matured by then). */
  windowEnd: EpochMs,
  alphaLower: z.number().finite(),
  alphaUpper: z.number().finite(),
});
export type AciState = z.infer<typeof AciStateSchema>;
