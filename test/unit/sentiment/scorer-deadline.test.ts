import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';

/**
 * A backend that never answers and does not listen to the abort signal — as the local model's classifier mode
 * (an embedding call takes no signal) or a wedged native call behaves.
 */
class DeafBackend implements SentimentBackend {
  readonly name = 'deaf';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  score(_text: string, _signal?: AbortSignal): Promise<Sentiment> {
    return new Promise<Sentiment>(() => {});
  }
}

describe('scorer: the primary has timeoutMs per text, whether or not it honours the signal', () => {
  // The test's own timeout is the failure mode: before the fix score() never settled.
  it('a primary that ignores the abort signal gives way to the baseline', { timeout: 15_000 }, async () => {
    const scorer = new SentimentScorer({ primary: new DeafBackend(), timeoutMs: 50 });
    const scored = await scorer.score('Bitcoin rallies to a record high');
    assert.equal(scored.baseline, true);
    assert.match(scored.fallback!, /^timeout/);
    assert.equal(scorer.stats.fallbacks, 1);
  });
});
