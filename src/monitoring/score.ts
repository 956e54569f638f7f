import type { Prediction } from '../schemas/prediction.ts';
import type { PredictionError } from '../schemas/prediction-error.ts';

/** What scoring reads of a prediction: a prediction, or the unscorable verdict of one (which carries it all). */
export type Scorable = Pick<
  Prediction,
  | 'exchange'
  | 'pair'
  | 'windowEnd'
  | 'modelName'
  | 'modelVersion'
  | 'horizonMs'
  | 'targetTs'
  | 'close'
  | 'predictedClose'
  | 'p10'
  | 'p90'
>;

/**
 * Scoring one prediction against the close of its target minute (pure). See `PredictionErrorSchema` for the signs.
 * The prediction's fields are written out in each record, here and in `unscorable`, not spread from a helper's
 * object: one object per verdict instead of two (the fields and their order, the records' JSON, are the same).
 */
export function scorePrediction(p: Scorable, actualClose: number, scoredAt: number): PredictionError {
  const error = p.predictedClose - actualClose;
  const predictedMove = p.predictedClose - p.close;
  const actualMove = actualClose - p.close;
  const tie = predictedMove === 0 || actualMove === 0;
  return {
    v: 1,
    exchange: p.exchange,
    pair: p.pair,
    windowEnd: p.windowEnd,
    modelName: p.modelName,
    modelVersion: p.modelVersion,
    horizonMs: p.horizonMs,
    targetTs: p.targetTs,
    close: p.close,
    predictedClose: p.predictedClose,
    p10: p.p10,
    p90: p.p90,
    status: 'scored',
    actualClose,
    error,
    absError: Math.abs(error),
    pctError: (error / actualClose) * 100,
    persistenceAbsError: Math.abs(p.close - actualClose),
    directionHit: tie ? null : predictedMove > 0 === actualMove > 0,
    directionTie: tie,
    inBand: actualClose >= p.p10 && actualClose <= p.p90,
    scoredAt,
    latenessMs: Math.max(0, scoredAt - p.targetTs),
    reason: null,
  };
}

/** The explicit verdict for a prediction whose target minute never got a close. */
export function unscorable(
  p: Prediction,
  reason: NonNullable<PredictionError['reason']>,
  scoredAt: number,
): PredictionError {
  return {
    v: 1,
    exchange: p.exchange,
    pair: p.pair,
    windowEnd: p.windowEnd,
    modelName: p.modelName,
    modelVersion: p.modelVersion,
    horizonMs: p.horizonMs,
    targetTs: p.targetTs,
    close: p.close,
    predictedClose: p.predictedClose,
    p10: p.p10,
    p90: p.p90,
    status: 'unscorable',
    actualClose: null,
    error: null,
    absError: null,
    pctError: null,
    persistenceAbsError: null,
    directionHit: null,
    directionTie: false,
    inBand: null,
    scoredAt,
    latenessMs: Math.max(0, scoredAt - p.targetTs),
    reason,
  };
}
