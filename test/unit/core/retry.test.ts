import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffCap, backoffDelay, parseRetryAfter } from '../../../src/core/retry.ts';

describe('one retry policy', () => {
  it('Retry-After in seconds (fractions too) and as an HTTP-date; garbage and the past are handled', () => {
    const now = Date.UTC(2015, 9, 21, 7, 27, 0);
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 1.5 ', now), 1_500);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now), 60_000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now), 0, 'a date in the past: now');
    for (const bad of [undefined, null, '', 'soon', '-5', '12abc'])
      assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
  });

  it('capped exponential back-off with jitter in [cap/2, cap]', () => {
    const b = { initialMs: 100, maxMs: 1_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, b, () => 1)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
    assert.deepEqual(
      [0, 1, 4].map((a) => backoffDelay(a, b, () => 0)),
      [50, 100, 500],
    );
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10, 1_000].map((a) => backoffCap(a, b)),
      [100, 200, 400, 800, 1_000, 1_000, 1_000],
    );
  });
});
