import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RssSource } from '../../../src/news/rss.ts';
import { NewsLogSink, serveHttp } from '../../support/news.ts';

/**
 * The feed's ETag / Last-Modified are kept only once its body was parsed and its items handed over. Kept before the
 * parse, a body cut short in transit (same feed, same ETag) was dead-lettered and every later poll got a 304: the
 * feed's items were never read until the feed itself changed.
 */
describe('RSS: a body that fails to parse', () => {
  it('is fetched whole again at the next poll (no If-None-Match from the broken one), and its items arrive', async () => {
    const feed =
      '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Bitcoin rallies</title><guid>g1</guid>' +
      '<pubDate>Mon, 13 Mar 2023 10:13:50 +0000</pubDate></item></channel></rss>';
    const conditional: (string | undefined)[] = [];
    let polls = 0;
    const { s, base } = await serveHttp((req, res) => {
      conditional.push(req.headers['if-none-match'] as string | undefined);
      const headers = { etag: '"v1"', 'last-modified': 'Mon, 13 Mar 2023 11:00:00 GMT' };
      if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304, headers).end();
      // The first answer is cut short (the same feed, the same ETag); later ones are whole.
      const body = ++polls === 1 ? feed.slice(0, feed.length / 2) : feed;
      res.writeHead(200, { ...headers, 'content-type': 'application/rss+xml' }).end(body);
    });
    const sink = new NewsLogSink();
    const src = new RssSource({ feeds: [{ url: `${base}/feed`, source: 'T' }], intervalMs: 10, maxPolls: 3 });
    try {
      await src.run(sink, new AbortController().signal);
    } finally {
      s.close();
    }
    assert.equal(sink.dead.length, 1, 'the broken body is dead-lettered');
    assert.equal(conditional[1], undefined, 'the poll after the broken body is not conditional');
    assert.deepEqual(
      sink.items.map((n) => n.title),
      ['Bitcoin rallies'],
    );
    assert.equal(conditional[2], '"v1"', "the whole feed's ETag is kept");
    assert.equal(src.stats.notModified, 1);
  });
});
