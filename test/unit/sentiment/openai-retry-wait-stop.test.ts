import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SentimentError } from '../../../src/sentiment/labels.ts';
import { OpenAiBackend } from '../../../src/sentiment/openai.ts';
import { rateLimitedLlm } from '../../support/rate-limited-llm.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * A rate-limited server (429, Retry-After: 10, the longest waited out in a call: `MAX_RETRY_WAIT_MS`) and a caller
 * that gives up while the backend waits to retry: the stop of `service news-signals` (SIGTERM) or the scorer's
 * deadline. The wait was a bare timer: the call settled only when it ran out (up to 30 s, the cap then), and its timer
 * kept the stopped process alive that long (Kubernetes' grace period is 30 s, then SIGKILL).
 */
const llm = rateLimitedLlm('10');

describe('OpenAI-compatible backend: the wait before a retry', () => {
  it('ends when the caller gives up (a stop), instead of running out its Retry-After', async () => {
    const b = new OpenAiBackend({ baseUrl: llm.base(), model: 'm', retries: 2 });
    const stop = new AbortController();
    const call = b.score('Bitcoin rallies', stop.signal).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    // The 429 has come (the backend now waits 10 s to retry); then the stop.
    await waitFor(
      'the 429 and the wait to retry',
      () => b.stats.retries,
      (n) => n === 1,
      {
        timeoutMs: 10_000,
        everyMs: 10,
      },
    );
    const stoppedAt = performance.now();
    stop.abort();
    const err = await call;
    const ms = performance.now() - stoppedAt;
    assert.ok(err instanceof SentimentError, String(err));
    // Well under the 10-s wait, even on a loaded machine.
    assert.ok(ms < 5_000, `the call settled ${Math.round(ms)} ms after the stop`);
    assert.equal(llm.requests(), 1, 'no retry after the stop');
  });
});
