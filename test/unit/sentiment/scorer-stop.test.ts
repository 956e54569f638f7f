import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { settlesWithin } from '../../support/wait.ts';

/**
 * A stop (the scorer's `signal`) ends the model call in flight: the baseline answers that text, and every later one at
 * once. Before, the scorer only had its own per-text deadline (20 s; 15 s from `run`), so a stop during a call to an
 * LLM that does not answer waited it out, and `service news-signals` / `run` took that long to stop.
 */
class SilentBackend implements SentimentBackend {
  readonly name = 'silent';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  readonly calls: AbortSignal[] = [];
  private readonly hears: boolean;
  /** Never answers; listens to the signal (as the OpenAI backend's fetch does) when `hears` is set. */
  constructor(hears: boolean) {
    this.hears = hears;
  }
  score(_text: string, signal?: AbortSignal): Promise<Sentiment> {
    if (signal) this.calls.push(signal);
    return new Promise<Sentiment>((_, reject) => {
      if (this.hears) signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

// Far beyond the time a stop is given below: only the stop can end the call in time.
const LONG = 600_000;

describe('scorer: a stop ends the model call in flight', () => {
  for (const hears of [true, false]) {
    it(`a primary that ${hears ? 'honours' : 'ignores'} the abort: the stop makes the baseline answer at once`, async () => {
      const stop = new AbortController();
      const primary = new SilentBackend(hears);
      const scorer = new SentimentScorer({ primary, timeoutMs: LONG, signal: stop.signal });
      const pending = scorer.score('Bitcoin rallies to a record high');
      // Wait until the call is in flight (a condition, not a sleep).
      while (primary.calls.length === 0) await new Promise((r) => setImmediate(r));
      stop.abort();
      const scored = await settlesWithin(pending, 10_000, 'the text in flight to be scored after the stop');
      assert.equal(scored.baseline, true);
      assert.match(scored.fallback!, /^stopped/);
      assert.equal(primary.calls[0]!.aborted, true, 'the backend is told (its request is cancelled)');
      // Later texts do not reach the model at all.
      const later = await settlesWithin(scorer.score('Ether falls'), 10_000, 'a text scored after the stop');
      assert.equal(later.baseline, true);
      assert.match(later.fallback!, /^stopped/);
      assert.equal(primary.calls.length, 1);
    });
  }

  it('a stop while the model loads (warmUp never ends): the baseline answers at once', async () => {
    const stop = new AbortController();
    const primary = new SilentBackend(true);
    let loading = false;
    const loadsForEver: SentimentBackend = Object.assign(primary, {
      warmUp: () => {
        loading = true;
        return new Promise<void>(() => {});
      },
    });
    const scorer = new SentimentScorer({ primary: loadsForEver, timeoutMs: LONG, signal: stop.signal });
    const pending = scorer.score('Bitcoin rallies to a record high');
    while (!loading) await new Promise((r) => setImmediate(r));
    stop.abort();
    const scored = await settlesWithin(pending, 10_000, 'the text to be scored after a stop during the load');
    assert.match(scored.fallback!, /^stopped/);
    assert.equal(primary.calls.length, 0);
  });
});
