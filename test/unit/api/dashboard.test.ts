import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { buildApi } from '../../../src/api/server.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';

/** The dashboard's files as the real HTTP server serves them: types, caching, and nothing but them. */
let app: ReturnType<typeof buildApi>;
let base: string;
before(async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  app = buildApi({ latest, store: new MemoryPredictionsStore() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
after(() => app.close());

const ASSETS = [
  ['/', /^text\/html; charset=utf-8$/],
  ['/dashboard/app.js', /^text\/javascript; charset=utf-8$/],
  ['/dashboard/app.css', /^text\/css; charset=utf-8$/],
] as const;

test('each asset has its type, nosniff and a CSP; a revalidation with its ETag answers 304 without a body', async () => {
  const tags = new Set<string>();
  for (const [path, type] of ASSETS) {
    const res = await fetch(base + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type')!, type);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('content-security-policy')!, /default-src 'self'/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.ok((await res.arrayBuffer()).byteLength > 0);
    const tag = res.headers.get('etag');
    assert.match(tag ?? '', /^"[\w-]+"$/, path);
    tags.add(tag!);
    const again = await fetch(base + path, { headers: { 'if-none-match': `"other", W/${tag}` } });
    assert.equal(again.status, 304, path);
    assert.equal(again.headers.get('etag'), tag);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
    const stale = await fetch(base + path, { headers: { 'if-none-match': '"stale"' } });
    assert.equal(stale.status, 200);
    assert.ok((await stale.arrayBuffer()).byteLength > 0);
  }
  assert.equal(tags.size, ASSETS.length, 'each asset its own tag');
});

test('other paths, traversals included, are a JSON 404: nothing else is served', async () => {
  for (const path of [
    '/index.html',
    '/dashboard/',
    '/dashboard/x.js',
    '/dashboard/app.js/',
    '/dashboard/%2e%2e/%2e%2e/etc/passwd',
    '/dashboard/..%2f..%2fpackage.json',
    '/dashboard/app.js%00.html',
    '/src/dashboard/web/main.ts',
  ]) {
    const res = await fetch(base + path);
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    assert.equal(((await res.json()) as { error: string }).error, 'not_found');
  }
});
