import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoPanicSource } from '../../../src/news/cryptopanic.ts';
import { NewsLogSink, serveHttp } from '../../support/news.ts';

describe('CryptoPanic: an answer that is not a page of posts', () => {
  it('a CryptoPanic body of JSON null is a dead letter, not a crash of the source', async () => {
    const srv = await serveHttp((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('null'),
    );
    const sink = new NewsLogSink();
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
    const srv = await serveHttp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"next":null,"results":[${JSON.stringify(post)}],"padding":"`);
      for (let mib = 0; mib < 9; mib++) res.write(pad);
      res.end('"}');
    });
    const sink = new NewsLogSink();
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
