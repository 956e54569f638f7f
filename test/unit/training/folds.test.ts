import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERR } from '../../../src/core/errors.ts';
import { type Fold, FoldError, walkForwardFolds } from '../../../src/training/folds.ts';
import { coded } from '../../support/errors.ts';

const MIN = 60_000;
const T0 = Date.UTC(2022, 0, 1);

/** Every property the folds must have, whatever the span and settings. */
function checkFolds(
  folds: Fold[],
  first: number,
  last: number,
  o: { folds: number; horizonMs: number; purgeMs: number; mode: 'expanding' | 'rolling' },
): void {
  assert.equal(folds.length, o.folds);
  const block = folds[0]!.testFrom - first;
  assert.ok(block > o.purgeMs && block % MIN === 0);
  for (const [k, f] of folds.entries()) {
    assert.equal(f.fold, k);
    assert.ok(f.testFrom < f.testTo, `fold ${k} has an empty test block`);
    // In order, contiguous, no overlap: each test block starts where the previous one ended.
    if (k > 0) assert.equal(f.testFrom, folds[k - 1]!.testTo);
    // Purge: the last training row (windowEnd = trainTo − 1 minute at most) has its target before testFrom.
    assert.equal(f.trainTo, f.testFrom - o.purgeMs);
    const lastTrainRow = f.trainTo - MIN;
    assert.ok(lastTrainRow + o.horizonMs < f.testFrom, `fold ${k}: a training target reaches the test block`);
    assert.ok(f.trainFrom >= first && f.trainFrom < f.trainTo);
    if (o.mode === 'expanding') assert.equal(f.trainFrom, first);
    // Rolling: every window as long as the first one.
    else assert.equal(f.trainTo - f.trainFrom, folds[0]!.trainTo - folds[0]!.trainFrom);
  }
  // Together the test blocks cover everything after the first block, up to the last minute (exclusive end).
  assert.equal(folds[0]!.testFrom, first + block);
  assert.equal(folds.at(-1)!.testTo, last + MIN);
  // All but the last block have the first block's length (the last takes the remainder).
  for (const f of folds.slice(0, -1)) assert.equal(f.testTo - f.testFrom, block);
  assert.ok(folds.at(-1)!.testTo - folds.at(-1)!.testFrom >= block);
}

describe('walkForwardFolds', () => {
  it('cuts a day into equal blocks by hand (expanding)', () => {
    // 1,440 minutes [T0, T0 + 1440 min), 3 folds → 4 blocks of 360 minutes; purge = horizon = 5 minutes.
    const folds = walkForwardFolds(T0, T0 + 1439 * MIN, { folds: 3, horizonMs: 5 * MIN });
    assert.deepEqual(
      folds.map((f) =>
        [f.fold, f.trainFrom, f.trainTo, f.testFrom, f.testTo].map((x, i) => (i ? (x - T0) / MIN : x)),
      ),
      [
        [0, 0, 355, 360, 720],
        [1, 0, 715, 720, 1080],
        [2, 0, 1075, 1080, 1440],
      ],
    );
    checkFolds(folds, T0, T0 + 1439 * MIN, {
      folds: 3,
      horizonMs: 5 * MIN,
      purgeMs: 5 * MIN,
      mode: 'expanding',
    });
  });

  it('rolling windows have the first block’s length, and the last block takes the remainder', () => {
    // 1,003 minutes, 2 folds → blocks of floor(1003 / 3) = 334 minutes; the last test block is 1003 − 668 = 335.
    const folds = walkForwardFolds(T0, T0 + 1002 * MIN, {
      folds: 2,
      horizonMs: 5 * MIN,
      purgeMs: 10 * MIN,
      mode: 'rolling',
    });
    assert.deepEqual(
      folds.map((f) => [f.trainFrom, f.trainTo, f.testFrom, f.testTo].map((x) => (x - T0) / MIN)),
      [
        [0, 324, 334, 668],
        [334, 658, 668, 1003],
      ],
    );
  });

  it('refuses a purge gap shorter than the horizon', () => {
    assert.throws(
      () => walkForwardFolds(T0, T0 + 1439 * MIN, { folds: 3, horizonMs: 5 * MIN, purgeMs: 4 * MIN }),
      (e: Error) => e instanceof FoldError && /purge gap .* must be at least the horizon/.test(e.message),
    );
  });

  it('refuses data too short for the folds, with a clear message', () => {
    // 20 minutes, 3 folds → blocks of 5 minutes, not more than the 5-minute purge.
    assert.throws(
      () => walkForwardFolds(T0, T0 + 19 * MIN, { folds: 3, horizonMs: 5 * MIN }),
      (e: Error) =>
        e instanceof FoldError &&
        /spans 20 minutes: too short for 3 folds with a 5-minute purge gap/.test(e.message),
    );
    // One minute more per block is enough.
    assert.equal(walkForwardFolds(T0, T0 + 23 * MIN, { folds: 3, horizonMs: 5 * MIN }).length, 3);
  });

  it('refuses a fold count that is not a positive integer', () => {
    for (const folds of [0, -1, 1.5])
      assert.throws(() => walkForwardFolds(T0, T0 + 1439 * MIN, { folds, horizonMs: MIN }), FoldError);
  });

  it('holds its properties for random spans, fold counts, horizons and modes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 10, max: 200_000 }),
        fc.constantFrom('expanding' as const, 'rolling' as const),
        (startMin, horizonMin, nFolds, extraPurge, spanMin, mode) => {
          const first = T0 + startMin * MIN;
          const last = first + (spanMin - 1) * MIN;
          const o = {
            folds: nFolds,
            horizonMs: horizonMin * MIN,
            purgeMs: (horizonMin + extraPurge) * MIN,
            mode,
          };
          const block = Math.floor(spanMin / (nFolds + 1)) * MIN;
          if (block <= o.purgeMs) {
            assert.throws(() => walkForwardFolds(first, last, o), coded(ERR.FOLDS, /too short/));
            return;
          }
          checkFolds(walkForwardFolds(first, last, o), first, last, o);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('walkForwardFolds with a history (evaluate --history)', () => {
  const first = T0;
  const testFrom = T0 + 30 * 1440 * MIN; // 30 days of history
  const last = testFrom + 10 * 1440 * MIN - MIN; // then 10 days of new candles

  it('tests only from testFrom on, in equal blocks, each training on everything before it (purged)', () => {
    const folds = walkForwardFolds(first, last, { folds: 5, horizonMs: 5 * MIN, testFrom });
    assert.equal(folds.length, 5);
    assert.equal(folds[0]!.testFrom, testFrom);
    assert.equal(folds.at(-1)!.testTo, last + MIN);
    for (const [k, f] of folds.entries()) {
      assert.equal(f.trainFrom, first);
      assert.equal(f.trainTo, f.testFrom - 5 * MIN);
      assert.equal(f.testTo - f.testFrom, 2 * 1440 * MIN);
      if (k > 0) assert.equal(f.testFrom, folds[k - 1]!.testTo);
    }
  });

  it('rolling: a window as long as the history', () => {
    const folds = walkForwardFolds(first, last, { folds: 5, horizonMs: 5 * MIN, testFrom, mode: 'rolling' });
    for (const f of folds) assert.equal(f.testFrom - f.trainFrom, testFrom - first);
    assert.equal(folds[0]!.trainFrom, first);
  });

  it('refuses a test span outside the data', () => {
    assert.throws(
      () => walkForwardFolds(first, last, { folds: 5, horizonMs: 5 * MIN, testFrom: first }),
      /must start after the history/,
    );
    assert.throws(
      () => walkForwardFolds(first, last, { folds: 5, horizonMs: 5 * MIN, testFrom: last + MIN }),
      /must start after the history/,
    );
  });
});

describe('walkForwardFolds with a refit schedule (evaluate --every 7d --window 60d)', () => {
  const DAY = 1440 * MIN;
  const last = T0 + 120 * DAY - MIN; // 120 days

  it('tests the same span as the --folds layout, in blocks of `every`, on the latest `window`', () => {
    const standard = walkForwardFolds(T0, last, { folds: 5, horizonMs: 5 * MIN });
    const weekly = walkForwardFolds(T0, last, {
      folds: 5,
      horizonMs: 5 * MIN,
      everyMs: 7 * DAY,
      windowMs: 60 * DAY,
    });
    assert.equal(weekly[0]!.testFrom, standard[0]!.testFrom);
    assert.equal(weekly.at(-1)!.testTo, standard.at(-1)!.testTo);
    for (const [k, f] of weekly.entries()) {
      if (k > 0) assert.equal(f.testFrom, weekly[k - 1]!.testTo);
      if (k < weekly.length - 1) assert.equal(f.testTo - f.testFrom, 7 * DAY);
      assert.equal(f.trainTo, f.testFrom - 5 * MIN);
      assert.equal(f.trainFrom, Math.max(T0, f.testFrom - 60 * DAY));
    }
    assert.equal(weekly.length, Math.ceil((standard.at(-1)!.testTo - standard[0]!.testFrom) / (7 * DAY)));
    // Without a window: all history before each block.
    const expanding = walkForwardFolds(T0, last, { folds: 5, horizonMs: 5 * MIN, everyMs: 7 * DAY });
    assert.ok(expanding.every((f) => f.trainFrom === T0));
  });

  it('refuses an interval that is not whole minutes and a window no longer than the purge', () => {
    assert.throws(
      () => walkForwardFolds(T0, last, { folds: 5, horizonMs: 5 * MIN, everyMs: 90_000 }),
      /whole number of minutes/,
    );
    assert.throws(
      () => walkForwardFolds(T0, last, { folds: 5, horizonMs: 5 * MIN, everyMs: DAY, windowMs: 5 * MIN }),
      /longer than the purge gap/,
    );
  });
});
