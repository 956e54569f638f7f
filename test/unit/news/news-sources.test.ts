import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CryptocastError } from '../../../src/core/errors.ts';
import { NewsDeduplicator } from '../../../src/news/dedup.ts';
import { coinsIn, normaliseUrl, plainText } from '../../../src/news/normalise.ts';
import { RecordedNewsSource } from '../../../src/news/recorded.ts';
import { parseFeed, RssSource } from '../../../src/news/rss.ts';
import { NewsItemSchema } from '../../../src/schemas/news.ts';
import { SHARED_DATA } from '../../support/data.ts';
import { NewsLogSink } from '../../support/news.ts';
import { scratchDir } from '../../support/scratch.ts';

const NOW = Date.UTC(2023, 2, 13, 12);

/** An RSS 2.0 document shaped like CoinDesk's (docs/exchange-protocols.md §8). */
const rss = (
  items: { guid: string; title: string; pub: string }[],
  ttl = 10,
) => `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>CoinDesk</title><link>https://www.coindesk.com</link><ttl>${ttl}</ttl>
${items
  .map(
    (i) => `<item><title><![CDATA[${i.title}]]></title>
<link>https://www.coindesk.com/markets/2023/03/13/${i.guid}/?utm_medium=referral&amp;utm_source=rss&amp;utm_campaign=headlines</link>
<guid isPermaLink="false">${i.guid}</guid><dc:creator><![CDATA[Jane Doe]]></dc:creator>
<description><![CDATA[<p>Bitcoin &amp; Ether <b>rallied</b> as traders digested the news.</p>]]></description>
<pubDate>${i.pub}</pubDate><category domain="tag">markets</category></item>`,
  )
  .join('\n')}
</channel></rss>`;

describe('news: normalisation and deduplication', () => {
  it('strips HTML, CDATA and entities; removes tracking parameters; finds coins by ticker and name', () => {
    assert.equal(
      plainText('<![CDATA[<p>Bitcoin &amp; Ether <b>up</b> &#8211; 5%</p>]]>'),
      'Bitcoin & Ether up – 5%',
    );
    assert.equal(
      normaliseUrl('https://WWW.CoinDesk.com/a/b/?utm_source=rss&id=3#top'),
      'https://coindesk.com/a/b/?id=3',
    );
    assert.deepEqual(coinsIn('Ethereum and BTC slide while Solana holds'), ['BTC', 'ETH', 'SOL']);
    assert.deepEqual(coinsIn('Fed raises rates'), []);
  });

  it('drops the same guid, the same URL, and near-identical titles from another source', () => {
    const d = new NewsDeduplicator();
    const base = {
      v: 1 as const,
      summary: '',
      publishedAt: 1_700_000_000_000,
      fetchedAt: 1_700_000_000_000,
      coins: [],
    };
    assert.equal(
      d.accept({ ...base, id: 'a', source: 'X', title: 'Bitcoin Tops $30K!', url: 'https://x.com/1' }),
      true,
    );
    assert.equal(d.accept({ ...base, id: 'a', source: 'X', title: 'other', url: 'https://x.com/2' }), false);
    assert.equal(
      d.accept({
        ...base,
        id: 'b',
        source: 'X',
        title: 'other 2',
        url: 'https://www.x.com/1?utm_source=rss',
      }),
      false,
    );
    assert.equal(
      d.accept({ ...base, id: 'c', source: 'Y', title: 'bitcoin tops 30k', url: 'https://y.com/9' }),
      false,
    );
    assert.equal(
      d.accept({ ...base, id: 'd', source: 'Y', title: 'Ether tops 2K', url: 'https://y.com/10' }),
      true,
    );
    assert.equal(d.duplicates, 3);
  });
});

describe('recorded news (the real recording)', () => {
  it('replays all 7,524 items: valid ones with coins and availability after publication, the rest dead-lettered', async () => {
    const sink = new NewsLogSink();
    await new RecordedNewsSource({
      file: join(SHARED_DATA, 'crypto-news-sentiment/news/cryptonews_2021-10_2022-07.csv.gz'),
    }).run(sink, new AbortController().signal);
    assert.equal(sink.items.length + sink.dead.length, 7_524);
    // 28 rows of the recording have neither title nor URL: rejected with the reason, not dropped silently.
    assert.equal(sink.dead.length, 28);
    assert.ok(sink.dead.every((d) => /title: Too small/.test(d.reason)));
    const first = sink.items[0]!;
    assert.equal(first.title, 'Bitcoin Returns Above USD 20K, Ethereum Rallies, CEL Keeps Outperforming');
    assert.equal(first.publishedAt, Date.UTC(2022, 6, 5, 4, 24));
    assert.equal(first.fetchedAt - first.publishedAt, 300_000);
    assert.deepEqual(first.coins, ['BTC', 'ETH']);
    assert.ok(sink.items.filter((n) => n.coins.includes('BTC')).length > 2_000);
  });

  it('a recording that cannot be read (missing, not gzip) fails run() with CC_ERR_INPUT naming it, no crash', async () => {
    const d = scratchDir('cc-news-');
    const notGzip = join(d, 'news.csv.gz');
    writeFileSync(notGzip, 'date;title\n');
    const sink = new NewsLogSink();
    for (const [file, why] of [
      [join(d, 'missing.csv'), /ENOENT/],
      [notGzip, /header/],
    ] as const)
      await assert.rejects(
        new RecordedNewsSource({ file }).run(sink, new AbortController().signal),
        (e: unknown) =>
          e instanceof CryptocastError &&
          e.code === 'CC_ERR_INPUT' &&
          e.message.includes(file) &&
          why.test(e.message),
      );
    assert.equal(sink.items.length + sink.dead.length, 0);
    rmSync(d, { recursive: true, force: true });
  });
});

describe('RSS feeds against a local server', () => {
  it('parses RSS 2.0 and Atom, keys by guid, strips HTML, reads the ttl', () => {
    const r = parseFeed(
      rss([{ guid: 'ABC123', title: 'Bitcoin rallies', pub: 'Mon, 13 Mar 2023 10:13:50 +0000' }]),
      'CoinDesk',
      NOW,
    );
    assert.equal(r.ttlMs, 600_000);
    const n = r.items.ok[0]!;
    assert.ok(NewsItemSchema.safeParse(n).success);
    assert.equal(n.publishedAt, Date.UTC(2023, 2, 13, 10, 13, 50));
    assert.equal(n.url, 'https://coindesk.com/markets/2023/03/13/ABC123');
    assert.equal(n.summary, 'Bitcoin & Ether rallied as traders digested the news.');
    assert.deepEqual(n.coins, ['BTC', 'ETH']);
    const atom = `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><id>urn:1</id><title type="html">ETH &lt;b&gt;up&lt;/b&gt;</title><link rel="alternate" href="https://e.com/1"/>
      <updated>2023-03-13T10:00:00Z</updated><summary>s</summary></entry></feed>`;
    const a = parseFeed(atom, 'E', NOW).items.ok[0]!;
    assert.deepEqual(
      [a.title, a.url, a.publishedAt],
      ['ETH up', 'https://e.com/1', Date.UTC(2023, 2, 13, 10)],
    );
    assert.throws(
      () => parseFeed('<html><body>not a feed</body></html>', 'E', NOW),
      /neither an RSS channel nor an Atom feed/,
    );
  });

  it('polls with ETag / If-Modified-Since (304 costs nothing), backs off on 429, dead-letters a broken feed and carries on', async () => {
    const requests: { inm?: string; ims?: string }[] = [];
    let feedPolls = 0;
    const server = createServer((req, res) => {
      requests.push({
        inm: req.headers['if-none-match'] as string | undefined,
        ims: req.headers['if-modified-since'] as string | undefined,
      });
      if (req.url === '/broken') return void res.writeHead(200).end('<rss><channel><item><title>x</title>');
      if (++feedPolls === 3) return void res.writeHead(429, { 'retry-after': '0' }).end();
      // The feed gains an item after the first poll (decided by the poll count, not by time).
      const version = feedPolls >= 2 ? 2 : 1;
      const etag = `"v${version}"`;
      if (req.headers['if-none-match'] === etag) return void res.writeHead(304).end();
      const items = [{ guid: 'g1', title: 'Bitcoin rallies', pub: 'Mon, 13 Mar 2023 10:13:50 +0000' }];
      if (version >= 2)
        items.push({ guid: 'g2', title: 'Ether follows', pub: 'Mon, 13 Mar 2023 11:00:00 +0000' });
      res
        .writeHead(200, {
          etag,
          'last-modified': 'Mon, 13 Mar 2023 11:00:00 GMT',
          'content-type': 'application/rss+xml',
        })
        .end(rss(items, 0));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const sink = new NewsLogSink();
    const src = new RssSource({
      feeds: [{ url: `${base}/feed`, source: 'CoinDesk' }],
      intervalMs: 20,
      maxPolls: 5,
    });
    const broken = new RssSource({
      feeds: [{ url: `${base}/broken`, source: 'B' }],
      intervalMs: 20,
      maxPolls: 1,
    });
    await Promise.all([
      src.run(sink, new AbortController().signal),
      broken.run(sink, new AbortController().signal),
    ]);
    server.close();
    // poll 1: 200 (g1); poll 2: 200 v2 (g1 again + g2); poll 3: 429; poll 4: 304; poll 5: 304
    assert.equal(src.stats.errors, 1);
    assert.equal(src.stats.notModified, 2);
    assert.ok(
      requests.some((r) => r.inm === '"v2"' && r.ims !== undefined),
      'conditional GET sent',
    );
    const dedup = new NewsDeduplicator();
    const fresh = sink.items.filter((n) => dedup.accept(n));
    assert.deepEqual(
      fresh.map((n) => n.title),
      ['Bitcoin rallies', 'Ether follows'],
    );
    assert.ok(sink.dead.some((d) => d.origin === `rss:${base}/broken`));
  });
});
