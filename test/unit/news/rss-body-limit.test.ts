import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { RssSource } from '../../../src/news/rss.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';

describe('RSS: a feed body past the size limit', () => {
  it('is dead-lettered, not buffered whole and parsed', async () => {
    // A well-formed feed whose one item is padded past the limit: before, it was read into memory whole (no bound
    // at all: an endless body grew until the 20 s timeout) and its item published.
    const head =
      '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Bitcoin news</title><guid>g1</guid><description>';
    const tail = '</description></item></channel></rss>';
    const pad = 'x'.repeat(1 << 20);
    const srv = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' });
      res.write(head);
      for (let mib = 0; mib < 9; mib++) res.write(pad); // past MAX_FEED_BYTES (8 MiB)
      res.end(tail);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const items: NewsItem[] = [];
    const dead: DeadLetter[] = [];
    const src = new RssSource({
      feeds: [{ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/feed` }],
      maxPolls: 1,
    });
    await src.run(
      { news: (xs) => void items.push(...xs), reject: (d) => void dead.push(d) },
      new AbortController().signal,
    );
    srv.close();
    assert.equal(items.length, 0);
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.reason, /larger than/);
  });
});
