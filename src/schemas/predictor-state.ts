import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * The predictor's adaptive conformal state when it made the band of one prediction (exchange, pair, windowEnd):
 * α_t of the band's lower and upper side (src/inference/adaptive-conformal.ts). α_t sums every matured outcome since
 * the predictor started, so a warm-up from the feature store cannot rebuild it; a restarted predictor reads these
 * back from the topic and rebuilds the rest (the scores, the bands waiting for their outcome) exactly, with the
 * model's quantiles recorded here (whichever champion made them).
 */
export const AciStateSchema = z.object({
  v: z.literal(1),
  exchange: Exchange,
  pair: Pair,
  /** The prediction's windowEnd: the state is the one its band was made with (after the outcomes matured by then). */
  windowEnd: EpochMs,
  alphaLower: z.number().finite(),
  alphaUpper: z.number().finite(),
  /**
   * The champion's own p10 and p90 (bps of the close) the band was made from. A restart after a promotion predicts
   * the window again with the new champion; the old one's quantiles, taken from here, rebuild the scores it left.
   * Absent in records written before they were added: the forecast is then predicted again.
   */
  p10Bps: z.number().finite().optional(),
  p90Bps: z.number().finite().optional(),
});
export type AciState = z.infer<typeof AciStateSchema>;
