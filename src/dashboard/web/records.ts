import type { Candle, Prediction, PredictionError } from './types.ts';

/**
 * Whether a record from the API can be drawn: every number the charts read is a finite number (a NaN stored upstream
 * reaches the page as null; a frame may lack a field). One that cannot is dropped: the chart library throws on a
 * bad value, and one such record kept would make every later redraw throw too — the chart would freeze.
 */
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const numbers = (x: unknown, keys: readonly string[]): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && keys.every((k) => finite((x as Record<string, unknown>)[k]));

export const drawableCandle = (x: unknown): x is Candle =>
  numbers(x, ['windowEnd', 'open', 'high', 'low', 'close']);

export const drawablePrediction = (x: unknown): x is Prediction =>
  numbers(x, ['windowEnd', 'targetTs', 'modelVersion', 'predictedClose', 'p10', 'p90']);

/** A scored verdict carries both errors (the error chart draws them); an unscorable one only its key. */
export const drawableVerdict = (x: unknown): x is PredictionError =>
  numbers(x, ['windowEnd', 'targetTs', 'modelVersion']) &&
  (x.status === 'unscorable' ||
    (x.status === 'scored' &&
      finite(x.absError) &&
      finite(x.persistenceAbsError) &&
      (x.directionHit === null || typeof x.directionHit === 'boolean')));
