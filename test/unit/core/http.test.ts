import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { getJson, HttpError } from '../../../src/core/http.ts';
import { freePort } from '../../support/ports.ts';

type Answer = [status: number, body: string, headers?: Record<string, string>];

async function serve(answers: Answer[]) {
  let n = 0;
  const s = createServer((_req, res) => {
    const [status, body, headers] = answers[Math.min(n++, answers.length - 1)]!;
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => s.close(() => r())));
  return { base: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, calls: () => n };
}

const fast = { initialMs: 1, maxMs: 5 };

describe('getJson', () => {
  it('retries 429 and 5xx, honouring Retry-After in both forms, then returns the body', async () => {
    const past = new Date(Date.now() - 60_000).toUTCString();
    const srv = await serve([
      [503, 'down', { 'retry-after': '0.01' }],
      [429, 'slow down', { 'retry-after': past }],
      [200, '{"ok":1}'],
    ]);
    const retries: [number, string, number][] = [];
    const body = await getJson(`${srv.base}/x`, {
      backoff: fast,
      onRetry: (attempt, reason, delayMs) => retries.push([attempt, reason, delayMs]),
    });
    assert.deepEqual(body, { ok: 1 });
    assert.deepEqual(
      retries.map(([a, r]) => [a, r]),
      [
        [1, 'HTTP 503'],
        [2, 'HTTP 429'],
      ],
    );
    assert.equal(retries[0]![2], 10, 'Retry-After in seconds');
    assert.ok(retries[1]![2] <= fast.maxMs, 'a date in the past: the back-off decides');
  });

  it('fails at once on other HTTP errors, with the status and no secret of the URL', async () => {
    const srv = await serve([[400, '{"error":"bad pair"}']]);
    await assert.rejects(
      getJson(`${srv.base}/x?pair=NOPE&token=s3cr3t-t0ken`, { backoff: fast }),
      (err: unknown) => {
        assert.ok(err instanceof HttpError);
        assert.equal(err.status, 400);
        assert.match(err.message, /HTTP 400: \{"error":"bad pair"\}/);
        assert.doesNotMatch(err.message, /s3cr3t/);
        return true;
      },
    );
    assert.equal(srv.calls(), 1);
  });

  it('gives up after `retries` retries, and treats a rate-limited body as transient', async () => {
    const srv = await serve([[200, '{"error":["EAPI:Rate limit exceeded"]}']]);
    await assert.rejects(
      getJson(`${srv.base}/x`, {
        backoff: fast,
        retries: 2,
        isRateLimited: (b) => (b as { error: string[] }).error.length > 0,
      }),
      /failed after 3 attempts: rate limited by the exchange/,
    );
    assert.equal(srv.calls(), 3);
  });

  it('says why the network failed (the cause undici keeps out of "fetch failed")', async () => {
    // A port nothing listens on: bind one, note it, close it.
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const reasons: string[] = [];
    await assert.rejects(
      getJson(`http://127.0.0.1:${port}/x`, {
        retries: 1,
        backoff: fast,
        onRetry: (_n, why) => reasons.push(why),
      }),
      /nothing answered in 2 attempts: network: fetch failed: connect ECONNREFUSED/,
    );
    assert.match(reasons[0]!, /^network: fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
  });

  it('gives up sooner on a server that never answered (unansweredRetries), not on one that answered before', async () => {
    const port = await freePort(); // nothing listens there
    let attempts = 0;
    const err = await getJson(`http://127.0.0.1:${port}/x`, {
      retries: 8,
      unansweredRetries: 2,
      backoff: fast,
      onRetry: () => attempts++,
    }).catch((e: unknown) => e);
    assert.match(String(err), /nothing answered in 3 attempts: network: fetch failed: connect ECONNREFUSED/);
    assert.match((err as { hint?: string }).hint ?? '', /check the URL/);
    assert.equal(attempts, 2);
    // A server that answers (503, overloaded) gets all its retries.
    const srv = await serve([[503, 'down']]);
    attempts = 0;
    await assert.rejects(
      getJson(`${srv.base}/x`, {
        retries: 4,
        unansweredRetries: 1,
        backoff: fast,
        onRetry: () => attempts++,
      }),
      /failed after 5 attempts: HTTP 503/,
    );
    assert.equal(attempts, 4);
  });
});
