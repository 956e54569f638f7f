import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { RssSource } from '../../../src/news/rss.ts';
import type { NewsSink } from '../../../src/news/source.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';

async function serve(handler: RequestListener) {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

class Sink implements NewsSink {
  items: NewsItem[] = [];
  dead: DeadLetter[] = [];
  news(xs: readonly NewsItem[]) {
    this.items.push(...xs);
  }
  reject(d: DeadLetter) {
    this.dead.push(d);
  }
}

describe('RSS: secrets in feed URLs', () => {
  it('an RSS feed URL with a token in its query does not put the token in dead letters', async () => {
    const token = 'feedSecret4711';
    const srv = await serve((_req, res) => res.writeHead(200).end('<html>not a feed'));
    const sink = new Sink();
    const src = new RssSource({ feeds: [{ url: `${srv.base}/private.rss?token=${token}` }], maxPolls: 1 });
    await src.run(sink, new AbortController().signal);
    srv.s.close();
    assert.equal(sink.dead.length, 1);
    const text = JSON.stringify(sink.dead);
    assert.ok(!text.includes(token), `token in the dead letter: ${text}`);
    assert.match(sink.dead[0]!.origin, /private\.rss/); // which feed it was is still said
  });
});
