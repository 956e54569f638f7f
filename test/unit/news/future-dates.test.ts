import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { NewsView } from '../../../src/api/news-view.ts';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import { parseFeed } from '../../../src/news/rss.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';

const NOW = Date.UTC(2023, 2, 13, 12);
const feed = (items: { guid: string; pub: string }[]) =>
  `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>${items
    .map(
      (i) =>
        `<item><title>Bitcoin story ${i.guid}</title><guid>${i.guid}</guid><pubDate>${i.pub}</pubDate></item>`,
    )
    .join('')}</channel></rss>`;

describe('news: an item dated after it was fetched', () => {
  it('RSS: publishedAt is at most fetchedAt, so a mis-dated item does not pin the top of the latest news', () => {
    const { ok } = parseFeed(
      feed([
        { guid: 'typo', pub: 'Mon, 13 Mar 2033 12:00:00 GMT' }, // a year typo
        { guid: 'zone', pub: 'Mon, 13 Mar 2023 11:00:00 -0800' }, // local time announced as another zone: 19:00 UTC
        { guid: 'real', pub: 'Mon, 13 Mar 2023 11:59:00 GMT' },
      ]),
      'Feed',
      NOW,
    ).items;
    assert.deepEqual(
      ok.map((i) => i.publishedAt),
      [NOW, NOW, NOW - 60_000],
    );
    // What the dashboard's news panel showed: the 2033 item first, and never evicted (eviction drops the oldest).
    const view = new NewsView(2);
    for (const i of ok) view.addItem(i);
    view.addItem({ ...ok[2]!, id: 'newer', publishedAt: NOW + 60_000, fetchedAt: NOW + 60_000 });
    assert.equal(view.latest(1)[0]!.id, 'newer');
  });

  it('CryptoPanic: the same bound', async () => {
    const srv = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          next: null,
          results: [
            { id: 1, title: 'Bitcoin jumps', published_at: '2099-01-01T00:00:00Z', url: 'https://x.test/1' },
          ],
        }),
      ),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const items: NewsItem[] = [];
    const src = new CryptoPanicSource({
      token: 't0k3n-abc',
      baseUrl: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
      maxPolls: 1,
    });
    await src.run({ news: (xs) => void items.push(...xs), reject: () => {} }, new AbortController().signal);
    srv.close();
    assert.equal(items.length, 1);
    assert.ok(
      items[0]!.publishedAt <= items[0]!.fetchedAt,
      `${items[0]!.publishedAt} > ${items[0]!.fetchedAt}`,
    );
  });
});
