import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';

/**
 * An OpenAI-compatible server that answers every request 429 with `Retry-After: retryAfter` (seconds), listening for
 * the test file (node:test `before`/`after`): `base()` is its `/v1` URL once listening, `requests()` how many came.
 */
export function rateLimitedLlm(retryAfter: string): { base(): string; requests(): number } {
  let requests = 0;
  let base = '';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter });
      res.end('{"error":{"message":"rate limited","type":"rate_limit_error"}}');
    });
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  return { base: () => base, requests: () => requests };
}
