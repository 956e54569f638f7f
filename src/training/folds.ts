import { CryptocastError, ERR } from '../core/errors.ts';
/**
 * Walk-forward folds over time. The span of the data is cut into `folds + 1` equal blocks of time; fold k tests on
 * block k + 1 and trains on what came before it:
 *
 *   expanding: train [start, testFrom − purge)              every fold sees all the history there is
 *   rolling:   train [testFrom − window, testFrom − purge)   a fixed-length window (the first block's length)
 *
 * The purge gap: a training row's target lies `horizon` after its windowEnd, so rows with windowEnd within
 * `purgeMs ≥ horizon` of the test block are dropped from training; no training target overlaps the test period.
 * Times are windowEnd (epoch ms); `…To` bounds are exclusive.
 *
 * With `everyMs` (`evaluate --every 7d [--window 60d]`: the trainer service's schedule), the same test span as the
 * `folds` layout above (or [testFrom, end)) is cut into blocks of `everyMs` instead — a refit every `everyMs` — each
 * training on everything before it, or on the latest `windowMs` only.
 *
 * With `testFrom` (`evaluate --history`: earlier candles as the initial training window), only [testFrom, end) is
 * tested: it is cut into `folds` equal blocks, and fold k trains on everything before its block (expanding) or on a
 * window as long as the history (rolling) — the way the trainer service runs on new data.
 */
export interface Fold {
  fold: number;
  trainFrom: number;
  trainTo: number;
  testFrom: number;
  testTo: number;
}

export class FoldError extends CryptocastError {
  override readonly name = 'FoldError';
  constructor(message: string) {
    super(ERR.FOLDS.code, message, { exitCode: ERR.FOLDS.exitCode });
  }
}

export function walkForwardFolds(
  firstTs: number,
  lastTs: number,
  opts: {
    folds: number;
    horizonMs: number;
    purgeMs?: number;
    mode?: 'expanding' | 'rolling';
    stepMs?: number;
    testFrom?: number;
    everyMs?: number;
    windowMs?: number;
  },
): Fold[] {
  const { folds, horizonMs } = opts;
  const purgeMs = opts.purgeMs ?? horizonMs;
  const step = opts.stepMs ?? 60_000;
  if (!(Number.isInteger(folds) && folds >= 1))
    throw new FoldError(`folds must be a positive integer, got ${folds}`);
  if (purgeMs < horizonMs)
    throw new FoldError(`the purge gap (${purgeMs} ms) must be at least the horizon (${horizonMs} ms)`);
  const end = lastTs + step; // exclusive
  if (opts.everyMs !== undefined) {
    const every = opts.everyMs;
    if (!(every >= step && every % step === 0))
      throw new FoldError(`the refit interval must be a whole number of minutes, got ${every} ms`);
    if (opts.windowMs !== undefined && !(opts.windowMs > purgeMs))
      throw new FoldError(`the training window (${opts.windowMs} ms) must be longer than the purge gap`);
    const from = opts.testFrom ?? firstTs + Math.floor((end - firstTs) / (folds + 1) / step) * step;
    if (!(from - purgeMs > firstTs && from < end))
      throw new FoldError('the data is too short for a test span after the first training window');
    const out: Fold[] = [];
    for (let t = from, k = 0; t < end; t += every, k++)
      out.push({
        fold: k,
        trainFrom: opts.windowMs === undefined ? firstTs : Math.max(firstTs, t - opts.windowMs),
        trainTo: t - purgeMs,
        testFrom: t,
        testTo: Math.min(t + every, end),
      });
    return out;
  }
  if (opts.testFrom !== undefined) {
    const from = opts.testFrom;
    if (!(from - purgeMs > firstTs && from <= lastTs))
      throw new FoldError(
        `the test span must start after the history and before the data ends (history from ${new Date(firstTs).toISOString()}, test from ${new Date(from).toISOString()}, data to ${new Date(lastTs).toISOString()})`,
      );
    const tb = Math.floor((end - from) / folds / step) * step;
    if (tb <= 0) throw new FoldError(`the test span is too short for ${folds} folds`);
    return Array.from({ length: folds }, (_, k) => {
      const testFrom = from + k * tb;
      return {
        fold: k,
        trainFrom: opts.mode === 'rolling' ? Math.max(firstTs, testFrom - (from - firstTs)) : firstTs,
        trainTo: testFrom - purgeMs,
        testFrom,
        testTo: k === folds - 1 ? end : testFrom + tb,
      };
    });
  }
  const block = Math.floor((end - firstTs) / (folds + 1) / step) * step;
  if (block <= purgeMs)
    throw new FoldError(
      `the data spans ${((end - firstTs) / 60_000).toFixed(0)} minutes: too short for ${folds} folds with a ${purgeMs / 60_000}-minute purge gap`,
    );
  const out: Fold[] = [];
  for (let k = 0; k < folds; k++) {
    const testFrom = firstTs + (k + 1) * block;
    const testTo = k === folds - 1 ? end : testFrom + block;
    const trainFrom = opts.mode === 'rolling' ? Math.max(firstTs, testFrom - block) : firstTs;
    out.push({ fold: k, trainFrom, trainTo: testFrom - purgeMs, testFrom, testTo });
  }
  return out;
}
