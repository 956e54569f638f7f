import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import type { NewsItem } from '../../../src/schemas/news.ts';

const post = (id: number, title: string, codes: string[]) => ({
  kind: 'news',
  domain: 'coindesk.com',
  source: { title: 'CoinDesk', region: 'en', domain: 'coindesk.com', path: null },
  title,
  published_at: '2018-03-01T21:00:44.575689Z',
  slug: `post-${id}`,
  id,
  url: `https://cryptopanic.com/news/${id}/post-${id}`,
  created_at: '2018-03-01T21:00:44.575689Z',
  currencies: codes.map((code) => ({ code, title: code, slug: code.toLowerCase(), url: '' })),
  votes: { negative: 0, positive: 11, important: 6 },
});

async function server(handler: (url: URL, n: number) => [number, unknown, Record<string, string>?]) {
  let n = 0;
  const s = createServer((req, res) => {
    const [status, body, headers] = handler(new URL(req.url ?? '/', 'http://x'), ++n);
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, calls: () => n };
}

describe('CryptoPanic posts API against a local server', () => {
  it('follows `next` pages, maps currencies to coins, honours 429 Retry-After', async () => {
    const seen: string[] = [];
    const srv = await server((url, n) => {
      seen.push(url.pathname + url.search);
      if (n === 3) return [429, { detail: 'rate limited' }, { 'retry-after': '0' }];
      if (url.searchParams.get('page') === '2')
        return [200, { count: 3, next: null, results: [post(3, 'Ether gains', ['ETH'])] }];
      return [
        200,
        {
          count: 3,
          next: `${srvBase}/api/developer/v2/posts/?auth_token=t0k3n&page=2`,
          results: [post(1, 'Bitcoin up', ['BTC']), post(2, 'Fed speaks', [])],
        },
      ];
    });
    const srvBase = srv.base;
    const items: NewsItem[] = [];
    const src = new CryptoPanicSource({ token: 't0k3n', baseUrl: srv.base, intervalMs: 10, maxPolls: 2 });
    await src.run({ news: (xs) => void items.push(...xs), reject: () => {} }, new AbortController().signal);
    srv.s.close();
    assert.match(seen[0]!, /auth_token=t0k3n&public=true&kind=news&currencies=BTC,ETH/);
    assert.deepEqual(
      items.map((i) => i.title),
      ['Bitcoin up', 'Fed speaks', 'Ether gains'],
    );
    assert.deepEqual(items[0]!.coins, ['BTC']);
    assert.equal(items[0]!.publishedAt, Date.parse('2018-03-01T21:00:44.575Z'));
    assert.equal(items[0]!.source, 'cryptopanic:coindesk.com');
    assert.equal(src.stats.errors, 1);
  });

  it('stops with a clear error on a refused token, and never needs a token in a file', async () => {
    assert.throws(() => new CryptoPanicSource({ token: '' }), /CRYPTOPANIC_TOKEN/);
    const srv = await server(() => [401, { detail: 'invalid token' }]);
    const src = new CryptoPanicSource({ token: 'secret-value', baseUrl: srv.base, maxPolls: 1 });
    await assert.rejects(
      src.run({ news: () => {}, reject: () => {} }, new AbortController().signal),
      (err: Error) => {
        assert.match(err.message, /refused the token \(HTTP 401\)/);
        assert.ok(!err.message.includes('secret-value'), 'the token is not in the error');
        return true;
      },
    );
    srv.s.close();
  });

  it('dead-letters posts it cannot use, keeps the rest', async () => {
    const srv = await server(() => [
      200,
      { next: null, results: [post(1, 'ok', ['BTC']), { id: 2, title: '', published_at: 'never' }] },
    ]);
    const items: NewsItem[] = [];
    const dead: DeadLetter[] = [];
    await new CryptoPanicSource({ token: 't', baseUrl: srv.base, maxPolls: 1 }).run(
      { news: (xs) => void items.push(...xs), reject: (d) => void dead.push(d) },
      new AbortController().signal,
    );
    srv.s.close();
    assert.equal(items.length, 1);
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.reason, /title|publishedAt/);
  });
});
