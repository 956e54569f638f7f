import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';

/**
 * The monitoring pipeline's verdict on one prediction, once its target minute has closed (or could not): one record
 * per (exchange, pair, windowEnd, modelName, modelVersion), on the `predictions.errors` topic and in the errors
 * store. Re-scoring the same prediction gives the same record (sinks upsert on that key) — with one exception: a
 * prediction timed out (`target_not_closed_in_time`) whose candle came late after all is scored then, and that
 * record supersedes the unscorable one (the topic carries both, in that order).
 *
 * Signs: `error = predictedClose − actualClose` (positive: the model predicted too high), `pctError` in percent of
 * the actual close. The persistence baseline predicts the close at windowEnd (`close`) for targetTs.
 * Direction: the predicted move (predictedClose vs close) against the actual move (actualClose vs close); a move of
 * exactly zero on either side is a tie, excluded from the hit rate and counted (`directionHit` null).
 */
export const ERROR_STATUSES = ['scored', 'unscorable'] as const;
export const UNSCORABLE_REASONS = [
  'no_candle_at_target',
  'target_not_closed_in_time',
  'target_before_retention',
] as const;

export const PredictionErrorSchema = z.object({
  v: z.literal(1),
  status: z.enum(ERROR_STATUSES),
  exchange: Exchange,
  pair: Pair,
  /** The prediction's key: its feature timestamp, model name and version. */
  windowEnd: EpochMs,
  modelName: z.string().min(1),
  modelVersion: z.number().int().positive(),
  horizonMs: z.number().int().positive(),
  targetTs: EpochMs,
  /** The close at windowEnd (what persistence predicts), the prediction and its p10–p90 interval. */
  close: z.number().finite().positive(),
  predictedClose: z.number().finite().positive(),
  p10: z.number().finite().positive(),
  p90: z.number().finite().positive(),
  /** The close of the candle that ended at targetTs; null when unscorable. */
  actualClose: z.number().finite().positive().nullable(),
  error: z.number().finite().nullable(),
  absError: z.number().finite().nonnegative().nullable(),
  pctError: z.number().finite().nullable(),
  /** |close − actualClose|: the persistence baseline's absolute error on the same point. */
  persistenceAbsError: z.number().finite().nonnegative().nullable(),
  /** Predicted and actual direction agree; null on a tie (either move is exactly zero) or when unscorable. */
  directionHit: z.boolean().nullable(),
  directionTie: z.boolean(),
  /** actualClose within [p10, p90]. */
  inBand: z.boolean().nullable(),
  /** When it was scored (the stream's clock: event time on a replay, wall time live), and how long after targetTs. */
  scoredAt: EpochMs,
  latenessMs: z.number().finite().nonnegative(),
  /**
   * Why no actual close: the pair's candles passed targetTs without one (a gap), none came within the timeout (the
   * pair stopped), or the prediction arrived after its target minute had left the monitor's memory.
   */
  reason: z.enum(UNSCORABLE_REASONS).nullable(),
});
export type PredictionError = z.infer<typeof PredictionErrorSchema>;

/** The key one record per prediction is kept under. */
export const errorKey = (
  e: Pick<PredictionError, 'exchange' | 'pair' | 'windowEnd' | 'modelName' | 'modelVersion'>,
) => `${e.exchange}|${e.pair}|${e.windowEnd}|${e.modelName}|${e.modelVersion}`;

/** Whether a record may still be superseded (`supersedes`): a time-out. */
export const revisable = (e: Pick<PredictionError, 'reason'>): boolean =>
  e.reason === 'target_not_closed_in_time';

/**
 * Whether record `next` supersedes `held`, a record of the same prediction (the same key): only a scored record a
 * time-out (`target_not_closed_in_time`: its candle came late after all); nothing else replaces a record.
 */
export const supersedes = (
  next: Pick<PredictionError, 'status'>,
  held: Pick<PredictionError, 'reason'>,
): boolean => revisable(held) && next.status === 'scored';
