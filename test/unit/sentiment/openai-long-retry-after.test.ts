import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenAiBackend } from '../../../src/sentiment/openai.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';
import { rateLimitedLlm } from '../../support/rate-limited-llm.ts';

/**
 * A server that rate-limits for longer than a text may wait (429, Retry-After: 25 s; the scorer gives a text its limit,
 * 3 s here, 20 s by default). The backend waited out the Retry-After inside the call: the scorer's limit ended it,
 * so the text cost the whole limit and its fallback said "timeout: no answer in time" of a server that had answered at
 * once (the metric's reason `timeout`); and the next text called the server again at once, inside the time it had
 * asked to be left alone.
 */
const llm = rateLimitedLlm('25');

describe('OpenAI-compatible backend: a Retry-After longer than a text may wait', () => {
  it('the text gets the baseline at once, saying it was rate-limited; the server is not called again before then', async () => {
    const scorer = new SentimentScorer({
      primary: new OpenAiBackend({ baseUrl: llm.base(), model: 'm', retries: 2 }),
      timeoutMs: 3_000,
    });
    const first = await scorer.score('Bitcoin rallies');
    assert.equal(first.baseline, true);
    assert.match(first.fallback ?? '', /^unavailable: HTTP 429 .*Retry-After 25 s/, first.fallback);
    assert.equal(llm.requests(), 1);
    const second = await scorer.score('Ether slides');
    assert.match(second.fallback ?? '', /^unavailable: rate limited by .* until /, second.fallback);
    assert.equal(llm.requests(), 1, 'the server asked for 25 s without calls');
  });
});
