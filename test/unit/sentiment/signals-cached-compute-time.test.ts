import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NewsItem } from '../../../src/schemas/news.ts';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { signalsFor } from '../../../src/sentiment/signals.ts';
import { scratchDir } from '../../support/scratch.ts';

const T0 = Date.UTC(2022, 4, 9, 12);
const item: NewsItem = {
  v: 1,
  id: 'n1',
  source: 'test',
  title: 'Bitcoin falls as TerraUSD loses its peg',
  summary: '',
  url: 'https://example.com/n1',
  publishedAt: T0 - 60_000,
  fetchedAt: T0,
  coins: ['BTC'],
};

/**
 * The scorer's clock (its `now` option), driven by the fake model: the time a text takes is the subject, so it is
 * the scorer's measure of it that is asserted, not how long a timer took to fire on a busy machine.
 */
class TestClock {
  t = 0;
  now = (): number => this.t;
}

/** A model that takes 200 ms a text, on the scorer's clock. */
class SlowModel implements SentimentBackend {
  readonly name = 'fake:slow';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  calls = 0;
  private readonly clock: TestClock;
  constructor(clock: TestClock) {
    this.clock = clock;
  }
  async score(): Promise<Sentiment> {
    this.calls++;
    this.clock.t += 200;
    return { label: 'negative', score: -0.7, confidence: 0.8, reason: 'Peg lost.' };
  }
}

describe('signals: a cached answer is dated as if the model had made it then', () => {
  it('from memory and from the cache file after a restart: available no earlier than the fetch + the model’s time', async () => {
    const file = join(scratchDir('cc-cached-compute-'), 'cache.jsonl');
    const clock = new TestClock();
    const model = new SlowModel(clock);
    const first = await signalsFor(
      item,
      new SentimentScorer({ primary: model, cacheFile: file, now: clock.now }),
    );
    assert.ok(first[0]!.availableAt >= T0 + 200, `scored: T0 + ${first[0]!.availableAt - T0} ms`);

    // A replay run again (or any later run) takes the answer from the cache file in no time. Live, that text could
    // not have been scored sooner than the model takes: the signal must not be available before that.
    const again = new SlowModel(clock);
    const restarted = new SentimentScorer({ primary: again, cacheFile: file, now: clock.now });
    const second = await signalsFor(item, restarted);
    assert.equal(again.calls, 0, 'the cached answer was used');
    assert.equal(second[0]!.label, 'negative');
    assert.ok(second[0]!.availableAt >= T0 + 200, `cached: T0 + ${second[0]!.availableAt - T0} ms`);
    // And from memory, in the same run.
    const third = await signalsFor(item, restarted);
    assert.ok(third[0]!.availableAt >= T0 + 200, `cached in memory: T0 + ${third[0]!.availableAt - T0} ms`);
  });
});
