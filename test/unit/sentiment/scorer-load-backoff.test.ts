import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { log } from '../../../src/core/log.ts';
import { type Sentiment, type SentimentBackend, SentimentError } from '../../../src/sentiment/labels.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';

/**
 * A model whose load fails — as the local backend's does at its deadline (LOAD_TIMEOUT_MS, 120 s) when the weights
 * hang — was loaded again for every later text: each item waited the whole deadline again for the same failure.
 * Now the failure is remembered: the baseline answers at once until the back-off has passed, then one more load.
 */
class FailingLoad implements SentimentBackend {
  readonly name = 'local:stalled';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  loads = 0;
  loadFails = true;
  async warmUp(): Promise<void> {
    this.loads++;
    if (this.loadFails)
      throw new SentimentError('unavailable', 'the local model stalled.gguf did not load within 120 s');
  }
  async score(): Promise<Sentiment> {
    return { label: 'positive', score: 0.8, confidence: 0.9, reason: 'the model' };
  }
}

describe('scorer: a model load that failed', () => {
  it('is not tried again for every text: the baseline answers until the back-off has passed, said once', async (t) => {
    const warn = t.mock.method(log, 'warn', () => {});
    let now = Date.parse('2026-12-07T08:00:00Z');
    const primary = new FailingLoad();
    const scorer = new SentimentScorer({ primary, loadRetryMs: 300_000, now: () => now });

    const first = await scorer.score('Bitcoin rallies to a record high');
    assert.equal(first.baseline, true);
    assert.match(first.fallback!, /^unavailable: .*did not load within 120 s/);
    for (const text of ['Ether falls', 'Solana halts again', 'BTC flat']) {
      now += 60_000;
      const s = await scorer.score(text);
      assert.equal(s.baseline, true, text);
      assert.match(s.fallback!, /did not load within 120 s/);
    }
    assert.equal(primary.loads, 1, 'no text waited for the load again within the back-off');
    assert.equal(warn.mock.callCount(), 1, 'said once');
    assert.match(
      String(warn.mock.calls[0]!.arguments[1]),
      /until 2026-12-07T08:05:00\.000Z, then the load is tried once more/,
    );

    // The back-off has passed: one more try, which fails again (one more line), then the next back-off.
    now = Date.parse('2026-12-07T08:05:00Z');
    assert.equal((await scorer.score('Bitcoin dips')).baseline, true);
    assert.equal(primary.loads, 2);
    assert.equal(warn.mock.callCount(), 2);
    now += 60_000;
    assert.equal((await scorer.score('Bitcoin dips more')).baseline, true);
    assert.equal(primary.loads, 2);

    // The model comes back: after the next back-off the load succeeds and the model answers from then on.
    primary.loadFails = false;
    now = Date.parse('2026-12-07T08:10:00Z');
    const back = await scorer.score('Ether surges');
    assert.equal(back.baseline, false);
    assert.equal(back.model, 'local:stalled');
    assert.equal((await scorer.score('Ether surges again')).baseline, false);
    assert.equal(primary.loads, 3);
  });
});
