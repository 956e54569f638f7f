import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import { NewsLogSink, serveHttp } from '../../support/news.ts';

/**
 * A CryptoPanic poll that fails (5xx, an unexpected 4xx, the API unreachable) is a dead letter with the reason, as an
 * RSS feed's is, and the polls back off while it keeps failing. They were only logged, every poll waited the same
 * (twice the interval after a 5xx, the interval itself after a network error), and a 404's body was parsed as a page
 * of posts ("not JSON" or "no results list", without the status).
 */
describe('CryptoPanic: polls that fail', () => {
  it('each failed poll is a dead letter saying why, and the wait grows while they fail', async () => {
    const at: number[] = [];
    const srv = await serveHttp((_req, res) => {
      at.push(performance.now());
      res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>upstream down</h1>');
    });
    const sink = new NewsLogSink();
    const src = new CryptoPanicSource({ token: 't0k3n-xyz', baseUrl: srv.base, intervalMs: 50, maxPolls: 4 });
    try {
      await src.run(sink, new AbortController().signal);
    } finally {
      srv.s.close();
    }
    assert.equal(at.length, 4);
    assert.deepEqual(
      sink.dead.map((d) => [d.kind, d.origin, d.reason]),
      Array(4).fill(['fetch', 'cryptopanic', 'HTTP 503']),
    );
    assert.ok(
      sink.dead.every((d) => !JSON.stringify(d).includes('t0k3n-xyz')),
      'no token in a dead letter',
    );
    // Back-off from the interval (50 ms): 100, 200, 400 ms. Lower bounds only (a loaded machine only adds).
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(gaps[2]! >= 380, `the waits: ${gaps.map(Math.round).join(', ')} ms`);
  });

  // h128's review: `Retry-After: 0` (or a date gone by) was taken as the wait itself: polls 3–15 ms apart, in a loop.
  it('a Retry-After of 0 is a floor, not the wait: the polls still back off', async () => {
    const at: number[] = [];
    const srv = await serveHttp((_req, res) => {
      at.push(performance.now());
      res.writeHead(503, { 'retry-after': '0' }).end('x');
    });
    const sink = new NewsLogSink();
    const src = new CryptoPanicSource({ token: 't', baseUrl: srv.base, intervalMs: 50, maxPolls: 4 });
    try {
      await src.run(sink, new AbortController().signal);
    } finally {
      srv.s.close();
    }
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(gaps[0]! >= 95 && gaps[2]! >= 380, `the waits: ${gaps.map(Math.round).join(', ')} ms`);
  });

  it('a 404 is a failed poll (the status said), not a page parsed; an unreachable API is one too', async () => {
    const srv = await serveHttp((_req, res) =>
      res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>'),
    );
    const sink = new NewsLogSink();
    try {
      await new CryptoPanicSource({ token: 't', baseUrl: srv.base, maxPolls: 1 }).run(
        sink,
        new AbortController().signal,
      );
    } finally {
      srv.s.close();
    }
    assert.deepEqual(
      sink.dead.map((d) => [d.kind, d.reason]),
      [['fetch', 'HTTP 404']],
    );

    const gone = new NewsLogSink();
    // The server just closed: nothing listens on its port.
    await new CryptoPanicSource({ token: 't', baseUrl: srv.base, maxPolls: 1 }).run(
      gone,
      new AbortController().signal,
    );
    assert.equal(gone.dead.length, 1);
    assert.equal(gone.dead[0]!.kind, 'fetch');
    assert.match(gone.dead[0]!.reason, /ECONNREFUSED|fetch failed/);
  });
});
