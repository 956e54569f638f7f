import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * Where one (exchange, pair) stood in the `trades` log after the trades stage last published for it: the record of the
 * compacted `trades.resume` topic (key `exchange|pair`, the latest kept). A restart reads the topic whole, so a pair
 * quiet for longer than the stretch of `trades` it reads back (its exchange down, or not followed for a while) is
 * refilled from where it stopped instead of starting afresh (docs/connectors.md, "restart").
 */
export const ResumePointRecordSchema = z.object({
  v: z.literal(1),
  exchange: Exchange,
  pair: Pair,
  /** Highest numeric trade id published (exchanges that number trades). */
  lastId: z.number().int().nonnegative().optional(),
  /** Latest trade time published. */
  lastTs: EpochMs.optional(),
  /** Latest watermark published. */
  watermarkTs: EpochMs.optional(),
  /**
   * The ids of the published trades of the second up to `lastTs` (`REFILL_OVERLAP_MS`): a refill by time asks from a
   * second before, and delivers them again; marked seen on restart, they are not published twice.
   */
  recentIds: z.array(z.string()),
});
export type ResumePointRecord = z.infer<typeof ResumePointRecordSchema>;
