import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RssSource } from '../../../src/news/rss.ts';
import { NewsLogSink, serveHttp } from '../../support/news.ts';

describe('RSS: secrets in feed URLs', () => {
  it('an RSS feed URL with a token in its query does not put the token in dead letters', async () => {
    const token = 'feedSecret4711';
    const srv = await serveHttp((_req, res) => res.writeHead(200).end('<html>not a feed'));
    const sink = new NewsLogSink();
    const src = new RssSource({ feeds: [{ url: `${srv.base}/private.rss?token=${token}` }], maxPolls: 1 });
    await src.run(sink, new AbortController().signal);
    srv.s.close();
    assert.equal(sink.dead.length, 1);
    const text = JSON.stringify(sink.dead);
    assert.ok(!text.includes(token), `token in the dead letter: ${text}`);
    assert.match(sink.dead[0]!.origin, /private\.rss/); // which feed it was is still said
  });
});
