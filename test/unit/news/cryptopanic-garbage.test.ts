import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
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

describe('CryptoPanic: an answer that is not a page of posts', () => {
  it('a CryptoPanic body of JSON null is a dead letter, not a crash of the source', async () => {
    const srv = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('null'),
    );
    const sink = new Sink();
    const src = new CryptoPanicSource({ token: 't0k3n-xyz', baseUrl: srv.base, maxPolls: 1 });
    try {
      await src.run(sink, new AbortController().signal);
    } finally {
      srv.s.close();
    }
    assert.equal(sink.items.length, 0);
    assert.equal(sink.dead.length, 1);
    assert.match(sink.dead[0]!.reason, /results/);
  });
});

describe('CryptoPanic: an answer past the size limit', () => {
  it('is dead-lettered, not buffered whole and parsed', async () => {
    // A valid page padded to 9 MiB (chunked): before, it was read whole (no bound) and its post published.
    const post = {
      id: 1,
      title: 'Bitcoin jumps',
      published_at: '2022-01-01T00:00:00Z',
      url: 'https://x.test/1',
    };
    const pad = 'x'.repeat(1 << 20);
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"next":null,"results":[${JSON.stringify(post)}],"padding":"`);
      for (let mib = 0; mib < 9; mib++) res.write(pad);
      res.end('"}');
    });
    const sink = new Sink();
    const src = new CryptoPanicSource({ token: 't0k3n-xyz', baseUrl: srv.base, maxPolls: 1 });
    try {
      await src.run(sink, new AbortController().signal);
    } finally {
      srv.s.close();
    }
    assert.equal(sink.items.length, 0);
    assert.equal(sink.dead.length, 1);
    assert.match(sink.dead[0]!.reason, /larger than/);
  });
});
