import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewsItem } from '../../../src/schemas/news.ts';
import { OpenAiBackend } from '../../../src/sentiment/openai.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { signalsFor } from '../../../src/sentiment/signals.ts';

const item: NewsItem = {
  v: 1,
  id: 'n1',
  source: 'test',
  title: 'Bitcoin rallies to a record',
  summary: '',
  url: '',
  publishedAt: Date.UTC(2025, 0, 1),
  fetchedAt: Date.UTC(2025, 0, 1, 0, 1),
  coins: ['BTC'],
};

describe('a failed LLM call: its reason goes into the signal, without secrets', () => {
  it('an endpoint with a password in its URL does not put the password on news.signals', async () => {
    // Nothing listens: fetch refuses a URL with credentials before connecting, and the message quotes the URL.
    const primary = new OpenAiBackend({
      baseUrl: 'http://proxyuser:Pr0xyPassw0rd@127.0.0.1:9/v1',
      model: 'm',
      retries: 0,
    });
    const scorer = new SentimentScorer({ primary, timeoutMs: 5_000 });
    const [signal] = await signalsFor(item, scorer);
    assert.equal(signal!.baseline, true);
    assert.ok(!signal!.reason.includes('Pr0xyPassw0rd'), signal!.reason);
  });
});
