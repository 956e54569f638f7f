import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { redirectLogLines } from '../../../src/core/log.ts';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import { RssSource } from '../../../src/news/rss.ts';
import type { NewsSource } from '../../../src/news/source.ts';

/** setTimeout's largest delay: past it Node waits 1 ms instead (TimeoutOverflowWarning). */
const TIMEOUT_MAX = 2 ** 31 - 1;

/**
 * Runs `source` against a server that always answers 429 with a Retry-After of about three years, until the source
 * logs the wait it chose; returns that wait and the requests made. A wait past TIMEOUT_MAX was a 1 ms wait: the
 * source polled again at once, for ever.
 */
async function waitAfterHugeRetryAfter(make: (base: string) => NewsSource) {
  let requests = 0;
  const srv = createServer((_req, res) => {
    requests++;
    res.writeHead(429, { 'retry-after': '99999999' }).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const stop = new AbortController();
  let logged: number | undefined;
  const seen = new Promise<void>((resolve) =>
    redirectLogLines((line) => {
      const wait = (JSON.parse(line) as { retryInMs?: number }).retryInMs;
      if (wait !== undefined && logged === undefined) {
        logged = wait;
        resolve();
      }
    }),
  );
  const source = make(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
  const running = source.run({ news: () => {}, reject: () => {} }, stop.signal);
  try {
    await seen;
  } finally {
    stop.abort();
    await running.catch(() => {});
    redirectLogLines(undefined);
    srv.close();
  }
  return { wait: logged!, requests };
}

describe('news sources: a wait longer than a timer can hold', () => {
  it('RSS: a Retry-After of years waits at most a day, not 1 ms', async () => {
    const { wait } = await waitAfterHugeRetryAfter(
      (base) => new RssSource({ feeds: [{ url: `${base}/feed` }] }),
    );
    assert.ok(wait <= 86_400_000 && wait < TIMEOUT_MAX, `waits ${wait} ms`);
  });

  it('CryptoPanic: the same', async () => {
    const { wait } = await waitAfterHugeRetryAfter(
      (base) => new CryptoPanicSource({ token: 't0k3n-xyz', baseUrl: base }),
    );
    assert.ok(wait <= 86_400_000 && wait < TIMEOUT_MAX, `waits ${wait} ms`);
  });
});
