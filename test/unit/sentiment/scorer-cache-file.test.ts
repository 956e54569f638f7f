import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Sentiment, SentimentBackend } from '../../../src/sentiment/labels.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { scratchDir } from '../../support/scratch.ts';

class CountingBackend implements SentimentBackend {
  readonly name = 'counting';
  readonly promptVersion = 'p1';
  readonly baseline = false;
  calls = 0;
  async score(text: string): Promise<Sentiment> {
    this.calls++;
    return { label: 'positive', score: 0.5, confidence: 0.7, reason: `Answer to ${text.slice(0, 20)}.` };
  }
}

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '').length;

describe('scorer: the cache file is bounded by the cache size', () => {
  it('many distinct answers leave at most twice cacheSize lines, and the newest are still served after a restart', async () => {
    const file = join(scratchDir('sentiment-cache-bound-'), 'cache.jsonl');
    const texts = Array.from({ length: 60 }, (_, i) => `Bitcoin story number ${i} moves markets`);
    const first = new SentimentScorer({ primary: new CountingBackend(), cacheSize: 5, cacheFile: file });
    for (const t of texts) await first.score(t);
    // Before: one line per answer for ever (60 here; a long-running service read it all back at each start).
    assert.ok(lines(file) <= 10, `${lines(file)} lines for a cache of 5`);

    const backend = new CountingBackend();
    const restarted = new SentimentScorer({ primary: backend, cacheSize: 5, cacheFile: file });
    for (const t of texts.slice(-5)) assert.equal((await restarted.score(t)).cached, true, t);
    assert.equal(backend.calls, 0);
  });
});
