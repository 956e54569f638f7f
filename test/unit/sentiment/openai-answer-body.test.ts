import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SentimentError } from '../../../src/sentiment/labels.ts';
import { MAX_ANSWER_BYTES, OpenAiBackend } from '../../../src/sentiment/openai.ts';
import { SentimentScorer } from '../../../src/sentiment/scorer.ts';

/**
 * The body of an OpenAI-compatible server's answer, when it is not a whole answer: the headers (200) come, then the
 * body stalls, or never ends. A stalled body was read as '' at the attempt's time-out and reported as the model's
 * invalid output ("response is not JSON"), which counts towards no circuit breaker: a server that hangs after its
 * headers cost every text the whole time-out, for ever. An endless body was buffered whole until the time-out.
 */
type Behaviour = (res: ServerResponse) => void;
let behaviour: Behaviour = () => {};
const open = new Set<ServerResponse>();
let base = '';
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    open.add(res);
    res.on('close', () => open.delete(res));
    behaviour(res);
  });
});

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(async () => {
  for (const res of open) res.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** 200 and the start of a chat completion, then nothing more (the connection stays open). */
const stallAfterHeaders: Behaviour = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"id":"chatcmpl-1","object":"chat.completion","choices":[');
};

/** 200 and a body that never ends (as fast as the socket takes it). */
const endless: Behaviour = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"id":"chatcmpl-1","choices":[{"message":{"content":"');
  const chunk = 'x'.repeat(64 * 1024);
  const more = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', more);
  };
  more();
};

describe('OpenAI-compatible backend: an answer whose body does not come whole', () => {
  it('a body that stalls after the headers is a time-out (the server is late), not invalid output', async () => {
    behaviour = stallAfterHeaders;
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', timeoutMs: 300, retries: 0 });
    const err = await b.score('Bitcoin rallies').then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SentimentError, String(err));
    assert.equal(err.kind, 'timeout', err.message);
  });

  it("so the scorer's circuit breaker opens on such a server after 3 calls, and the 4th text costs nothing", async () => {
    behaviour = stallAfterHeaders;
    const scorer = new SentimentScorer({
      primary: new OpenAiBackend({ baseUrl: base, model: 'm', timeoutMs: 300, retries: 0 }),
    });
    const reasons: string[] = [];
    for (const text of ['Bitcoin rallies', 'Ether falls', 'Solana flat', 'Bitcoin ETF inflows'])
      reasons.push((await scorer.score(text)).fallback ?? 'answered');
    assert.match(reasons[0]!, /^timeout/);
    assert.match(reasons[3]!, /^circuit-open/, reasons.join(' | '));
  });

  it('a body that never ends is cut at MAX_ANSWER_BYTES, long before the time-out', async () => {
    behaviour = endless;
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', timeoutMs: 30_000, retries: 0 });
    const t0 = performance.now();
    const err = await b.score('Bitcoin rallies').then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    assert.ok(err instanceof SentimentError, String(err));
    assert.equal(err.kind, 'invalid-output', err.message);
    assert.match(err.message, new RegExp(`larger than ${MAX_ANSWER_BYTES} bytes`));
    // The limit (1 MiB) passes in milliseconds on the loopback; the time-out is 30 s. Generous for a loaded machine.
    assert.ok(ms < 15_000, `took ${Math.round(ms)} ms`);
  });

  // h128's review: the 1 MiB limit was checked before the status, so a 503 with a large error page was the model's
  // invalid output — not retried, counted a success, the circuit never opened.
  it('a 5xx with an error page over the limit is the server unavailable (retried, counted), not invalid output', async () => {
    const big = 'x'.repeat(MAX_ANSWER_BYTES + 1024);
    behaviour = (res) => res.writeHead(503, { 'content-type': 'text/html' }).end(big);
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', timeoutMs: 5_000, retries: 1 });
    const err = await b.score('Bitcoin rallies').then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SentimentError, String(err));
    assert.equal(err.kind, 'unavailable', err.message);
    assert.match(err.message, /^HTTP 503/);
  });
});
