import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { whyNoPredictions } from '../../../src/cli/commands/run.ts';
import { SKIP_REASONS, type SkipReason } from '../../../src/inference/predictor.ts';

/** The predictor's counts after a run, with `skipped` as given (others 0). */
const predictor = (vectors: number, skipped: Partial<Record<SkipReason, number>>) => ({
  maxStalenessMs: 120_000,
  stats: {
    vectors,
    predicted: 0,
    alreadyPublished: 0,
    skipped: { ...Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])), ...skipped } as Record<
      SkipReason,
      number
    >,
  },
});
const noChampion = () => 'no champion "m" in /reg';

describe('run: why a run made no prediction', () => {
  it('no candle closed: no vector at all', () => {
    assert.equal(
      whyNoPredictions(predictor(0, {}), 0, noChampion),
      'no feature vector was made (no candle closed)',
    );
  });

  it('a replay shorter than the warm-up: no vector was ready', () => {
    assert.match(
      whyNoPredictions(predictor(50, { not_ready: 50 }), 50, noChampion),
      /^none of the 50 feature vectors was ready \(the indicators warm up over 61 minutes/,
    );
  });

  it('no champion comes first; the warm-up of the first hour is then no reason', () => {
    assert.equal(
      whyNoPredictions(predictor(435, { not_ready: 84, no_champion: 351 }), 435, noChampion),
      '351 ready vectors had no model: no champion "m" in /reg',
    );
  });

  it('stale vectors and model errors are each counted', () => {
    assert.equal(
      whyNoPredictions(predictor(10, { stale: 6, model_error: 4 }), 10, noChampion),
      'the champion gave no usable output for 4 vectors (the log says why); 6 vectors were stale (older than 120 s when they reached the predictor)',
    );
  });

  it('stopped before the predictor read anything', () => {
    assert.equal(
      whyNoPredictions(predictor(0, {}), 20, noChampion),
      'the predictor had read 0 of 20 feature vectors when the run ended',
    );
  });
});
