import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NewsView } from '../../../src/api/news-view.ts';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import { NewsService } from '../../../src/news/news-service.ts';
import { normaliseUrl } from '../../../src/news/normalise.ts';
import { RssSource } from '../../../src/news/rss.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { serveHttp } from '../../support/news.ts';

/**
 * A feed's link goes out on /v1/news to any client, which may make it a link: only http(s) links are kept at
 * ingestion; an item with another one (`javascript:`, `data:`, …) is kept without it, and counted.
 */
const HOSTILE = [
  'javascript:document.title="pwned"',
  ' JaVaScRiPt:alert(1)',
  'java\tscript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'vbscript:msgbox(1)',
  'file:///etc/passwd',
  '/relative/article',
  'not a url at all',
];

describe('news links: http(s) only', () => {
  it('normaliseUrl keeps http(s) URLs (normalised) and gives "" for any other scheme or no URL', () => {
    for (const url of HOSTILE) assert.equal(normaliseUrl(url), '', url);
    assert.equal(normaliseUrl('HTTPS://WWW.Example.org/a/?utm_source=x#top'), 'https://example.org/a');
    assert.equal(normaliseUrl('http://example.org/b'), 'http://example.org/b');
    assert.equal(normaliseUrl(''), '');
  });

  it('an RSS item with a javascript: or data: link is published without it, and counted', async () => {
    const links = [
      'javascript:alert(document.cookie)',
      'data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;',
    ];
    const feed = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Feed</title>
<item><title>Script link</title><link>${links[0]}</link><guid>a</guid><pubDate>Mon, 13 Mar 2023 10:00:00 +0000</pubDate></item>
<item><title>Data link</title><link>${links[1]}</link><guid>b</guid><pubDate>Mon, 13 Mar 2023 10:01:00 +0000</pubDate></item>
<item><title>Plain link</title><link>https://example.org/btc</link><guid>c</guid><pubDate>Mon, 13 Mar 2023 10:02:00 +0000</pubDate></item>
</channel></rss>`;
    const { s, base } = await serveHttp((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(feed),
    );
    try {
      const bus = new InProcessBus();
      const svc = new NewsService(bus);
      await svc.run(
        [new RssSource({ feeds: [{ url: `${base}/feed`, source: 'Feed' }], maxPolls: 1 })],
        new AbortController().signal,
      );
      const news = (await bus.readTail<NewsItem>(topics.news, 100)).map((r) => r.value);
      assert.deepEqual(
        news.map((n) => [n.title, n.url]).sort(),
        [
          ['Data link', ''],
          ['Plain link', 'https://example.org/btc'],
          ['Script link', ''],
        ],
        'every item kept; only the https link kept',
      );
      assert.equal(svc.stats.linksDropped, 2);
    } finally {
      s.close();
    }
  });

  it('a CryptoPanic post with a javascript: url is handed over without it, and counted', async () => {
    const post = (id: number, url: string) => ({
      id,
      title: `Post ${id}`,
      url,
      published_at: '2018-03-01T21:00:44Z',
      source: { domain: 'example.org' },
      currencies: [],
    });
    const { s, base } = await serveHttp((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          next: null,
          results: [post(1, 'javascript:alert(1)'), post(2, 'https://example.org/2')],
        }),
      ),
    );
    try {
      const items: NewsItem[] = [];
      let dropped = 0;
      await new CryptoPanicSource({ token: 't', baseUrl: base, maxPolls: 1 }).run(
        {
          news: (xs) => void items.push(...xs),
          reject: () => {},
          linksDropped: (n) => {
            dropped += n;
          },
        },
        new AbortController().signal,
      );
      assert.deepEqual(
        items.map((n) => n.url),
        ['', 'https://example.org/2'],
      );
      assert.equal(dropped, 1);
    } finally {
      s.close();
    }
  });

  it('/v1/news serves an item the topic holds from before the rule without its link', () => {
    const view = new NewsView();
    const old = (id: string, url: string): NewsItem => ({
      v: 1,
      id,
      source: 'feed',
      title: `Item ${id}`,
      summary: '',
      url,
      publishedAt: 1_700_000_000_000,
      fetchedAt: 1_700_000_000_000,
      coins: [],
    });
    view.addItem(old('a', 'javascript:alert(1)'));
    view.addItem(old('b', 'https://example.org/b'));
    assert.deepEqual(
      view
        .latest()
        .map((e) => [e.id, e.url])
        .sort(),
      [
        ['a', null],
        ['b', 'https://example.org/b'],
      ],
    );
  });
});
