import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { MIN_API_KEY_LENGTH } from '../../../src/api/options.ts';
import { API_ERRORS, errorCode } from '../../../src/api/reply.ts';
import { type ApiOptions, apiOptionsFromEnv, buildApi } from '../../../src/api/server.ts';
import { ERR } from '../../../src/core/errors.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import type { ModelCard } from '../../../src/training/registry/registry.ts';
import { coded } from '../../support/errors.ts';
import { MemoryPredictionsStore, prediction } from '../../support/memory-predictions-store.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

const T0 = Date.UTC(2026, 10, 1, 12, 0);
const MIN = 60_000;
const DAY = 86_400_000;

const card: ModelCard = {
  name: 'cryptocast-price',
  version: 3,
  createdAt: T0 - DAY,
  codeVersion: 'abc1234',
  horizonMs: 300_000,
  target: 'log_return_bps',
  featureSets: [{ name: 'technical', version: 1 }],
  columns: ['ret_1m', 'ret_5m', 'rsi_14'],
  pairs: ['BTC/USD', 'ETH/USD'],
  trainingWindow: { from: T0 - 15 * DAY, to: T0 - DAY },
  datasetFingerprint: 'f00d',
  params: { max_depth: 6 },
  folds: [],
  summary: { model: { mae_bps: 9.1 }, persistence: { mae_bps: 9.4 } },
  artifacts: ['model.json'],
  gate: { promoted: true, reasons: ['beats persistence'] },
};

type App = ReturnType<typeof buildApi>;

/** Every response of these tests is checked against the OpenAPI document's schema for its route and status. */
const ajv = new Ajv2020({ strict: false, allErrors: true });
let contractChecks = 0;
async function get(
  app: App,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await app.inject({ method: 'GET', url, headers });
  const body = JSON.parse(res.body) as Record<string, unknown>;
  const doc = app.swagger() as {
    paths: Record<
      string,
      { get: { responses: Record<string, { content?: Record<string, { schema: object }> }> } }
    >;
  };
  const path = url.split('?')[0]!;
  const route = doc.paths[path];
  if (route !== undefined) {
    const response = route.get.responses[String(res.statusCode)];
    assert.ok(response, `OpenAPI: ${path} does not document status ${res.statusCode}`);
    const schema = response.content?.['application/json']?.schema;
    assert.ok(schema, `OpenAPI: ${path} ${res.statusCode} has no JSON schema`);
    const validate = ajv.compile(schema);
    assert.ok(
      validate(body),
      `OpenAPI: ${path} ${res.statusCode} body does not match: ${ajv.errorsText(validate.errors)}\n${res.body}`,
    );
    contractChecks++;
  } else {
    // Unknown routes still answer with the error shape.
    assert.equal(res.statusCode, 404);
    assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
  }
  return { status: res.statusCode, body, headers: res.headers };
}

async function setup(
  o: {
    options?: ApiOptions;
    ready?: boolean;
    model?: () => Promise<ModelCard | undefined>;
    clock?: 'wall' | 'event';
  } = {},
) {
  const store = new MemoryPredictionsStore();
  const latest = new LatestPredictions();
  if (o.ready !== false) latest.markReady();
  const app = buildApi({
    latest,
    store,
    model: o.model ?? (async () => card),
    options: o.options,
    clock: o.clock,
  });
  await app.ready();
  return { app, store, latest };
}

describe('GET /v1/predictions/latest', () => {
  test('serves the newest prediction per pair from memory', async () => {
    const { app, latest } = await setup();
    latest.add(prediction('BTC/USD', T0));
    const newest = prediction('BTC/USD', T0 + MIN);
    latest.add(newest);
    latest.add(prediction('BTC/USD', T0 - MIN)); // late, older: not the latest
    latest.add(prediction('ETH/USD', T0));
    const res = await get(app, '/v1/predictions/latest?pair=BTC-USD');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(res.body, newest);
    assert.equal((await get(app, '/v1/predictions/latest?pair=btc-usd')).status, 200);
    assert.equal((await get(app, '/v1/predictions/latest?pair=ETH-USD')).body.pair, 'ETH/USD');
    await app.close();
  });

  test('404 for a pair without predictions, 400 for a malformed pair', async () => {
    const { app } = await setup();
    const missing = await get(app, '/v1/predictions/latest?pair=SOL-USD');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    for (const q of ['?pair=BTCUSD', '?pair=BTC-USD-X', '?pair=', '', '?pair=%E2%82%BF-USD']) {
      const res = await get(app, `/v1/predictions/latest${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error, 'bad_request');
    }
    await app.close();
  });
});

describe('GET /v1/predictions', () => {
  async function withHistory(clock?: 'wall' | 'event') {
    const s = await setup({ clock });
    const rows: Prediction[] = [];
    for (let i = 0; i < 250; i++) rows.push(prediction('BTC/USD', T0 + i * MIN));
    // Two model versions share windowEnds 99 and 100 (around the first page's boundary).
    rows.push(prediction('BTC/USD', T0 + 99 * MIN, { modelVersion: 2 }));
    rows.push(prediction('BTC/USD', T0 + 100 * MIN, { modelVersion: 2 }));
    rows.push(prediction('ETH/USD', T0));
    await s.store.write(rows);
    return s;
  }

  test('pages through a range with the next cursor: every row once, in order', async () => {
    const { app } = await withHistory();
    const seen: Prediction[] = [];
    let after: number | null | undefined;
    let pages = 0;
    do {
      const url = `/v1/predictions?pair=BTC-USD&from=${T0}&to=${T0 + DAY}&limit=100${after == null ? '' : `&after=${after}`}`;
      const res = await get(app, url);
      assert.equal(res.status, 200);
      assert.equal(res.body.pair, 'BTC-USD');
      seen.push(...(res.body.items as Prediction[]));
      after = res.body.next as number | null;
      pages++;
    } while (after !== null && pages < 10);
    assert.equal(seen.length, 252);
    assert.equal(new Set(seen.map((p) => `${p.windowEnd}|${p.modelVersion}`)).size, 252);
    for (let i = 1; i < seen.length; i++)
      assert.ok(
        seen[i]!.windowEnd > seen[i - 1]!.windowEnd ||
          (seen[i]!.windowEnd === seen[i - 1]!.windowEnd &&
            seen[i]!.modelVersion > seen[i - 1]!.modelVersion),
      );
    assert.equal(pages, 3);
    await app.close();
  });

  test('from inclusive, to exclusive; modelVersion filter; defaults to the last day', async () => {
    const { app } = await withHistory();
    const res = await get(app, `/v1/predictions?pair=BTC-USD&from=${T0 + 10 * MIN}&to=${T0 + 20 * MIN}`);
    const items = res.body.items as Prediction[];
    assert.equal(items.length, 10);
    assert.equal(items[0]!.windowEnd, T0 + 10 * MIN);
    assert.equal(res.body.next, null);
    const v2 = await get(app, `/v1/predictions?pair=BTC-USD&from=${T0}&to=${T0 + DAY}&modelVersion=2`);
    assert.deepEqual(
      (v2.body.items as Prediction[]).map((p) => p.windowEnd),
      [T0 + 99 * MIN, T0 + 100 * MIN],
    );
    const recent = await get(app, '/v1/predictions?pair=ETH-USD');
    assert.equal(recent.status, 200);
    assert.deepEqual(recent.body.items, []); // T0 is more than a day ago
    await app.close();
  });

  test('on a replay (event clock) the default last day ends at the pair’s newest prediction, not at the wall clock', async () => {
    const { app, store, latest } = await withHistory('event');
    for (const p of await store.history('BTC/USD', T0, T0 + DAY, { limit: 1000 })) latest.add(p);
    const res = await get(app, '/v1/predictions?pair=BTC-USD&limit=1000');
    assert.equal(res.status, 200);
    assert.equal(res.body.to, T0 + 249 * MIN + 1);
    assert.equal((res.body.items as Prediction[]).length, 252, 'the whole recorded day, both model versions');
    // A pair with nothing in the feed yet falls back to the wall clock.
    assert.deepEqual((await get(app, '/v1/predictions?pair=ETH-USD')).body.items, []);
    await app.close();
  });

  test('400 on a bad range, limit, cursor or pair; 503 when the store is down', async () => {
    const { app, store } = await withHistory();
    const bad = [
      `pair=BTC-USD&from=${T0 + MIN}&to=${T0}`,
      `pair=BTC-USD&from=${T0}&to=${T0 + 32 * DAY}`,
      'pair=BTC-USD&limit=1001',
      'pair=BTC-USD&limit=0',
      'pair=BTC-USD&limit=ten',
      'pair=BTC-USD&from=yesterday',
      'pair=BTC-USD&to=1.5',
      'pair=BTC-USD&after=x',
      'pair=BTC-USD&to=1e300',
      'pair=BTC-USD&after=1e300',
      'pair=BTC-USD&modelVersion=1e30',
      // Non-finite numbers once reached the store (a 503 with a stack trace in the log): they are a 400.
      'pair=BTC-USD&limit=Infinity',
      'pair=BTC-USD&to=Infinity',
      'pair=BTC-USD&after=Infinity',
      'pair=BTC-USD&modelVersion=Infinity',
      'pair=BTC-USD&from=-Infinity',
      'pair=BTC-USD&limit=NaN',
      'pair=BTC-USD&limit=',
      'pair=BTCUSD',
      'from=0',
    ];
    for (const q of bad) {
      const res = await get(app, `/v1/predictions?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error, 'bad_request', q);
    }
    assert.equal((await get(app, `/v1/predictions?pair=BTC-USD&from=${T0}&to=${T0 + 31 * DAY}`)).status, 200);
    store.failing = true;
    const down = await get(app, `/v1/predictions?pair=BTC-USD&from=${T0}&to=${T0 + DAY}`);
    assert.equal(down.status, 503);
    assert.equal(down.body.error, 'store_unavailable');
    await app.close();
  });
});

describe('model, health, readiness, OpenAPI', () => {
  test('GET /v1/model summarises the champion; 404 without one; 503 when the registry fails', async () => {
    const ok = await setup();
    const res = await get(ok.app, '/v1/model');
    assert.equal(res.status, 200);
    assert.equal(res.body.version, 3);
    assert.equal(res.body.features, 3);
    assert.equal((res.body as { params?: unknown }).params, undefined);
    await ok.app.close();
    const none = await setup({ model: async () => undefined });
    assert.equal((await get(none.app, '/v1/model')).status, 404);
    await none.app.close();
    const broken = await setup({
      model: async () => {
        throw new Error('mlflow down');
      },
    });
    const b = await get(broken.app, '/v1/model');
    assert.equal(b.status, 503);
    assert.equal(b.body.error, 'registry_unavailable');
    await broken.app.close();
  });

  // /v1/predictions/latest (validated by hand), /v1/model, /v1/model/history and /v1/pipeline (no query schema)
  // answered a query parameter they do not know as if it were not there, where every other data route refuses it.
  test('an unknown query parameter is refused by every data route alike: 400 bad_request', async () => {
    const { app, latest } = await setup();
    latest.add(prediction('BTC/USD', T0));
    const refusal = { error: 'bad_request', message: 'querystring/(root) Unrecognized key: "x"' };
    for (const url of [
      '/v1/predictions?pair=BTC-USD&x=1', // as the routes with a zod query schema have always answered
      '/v1/news?x=1',
      '/v1/predictions/latest?pair=BTC-USD&x=1', // a pair that is served: the extra parameter is still refused
      '/v1/predictions/latest?x=1&pair=BTC-USD',
      '/v1/predictions/latest?pair=SOL-USD&x=1',
      '/v1/model?x=1',
      '/v1/model/history?x=1',
      '/v1/pipeline?x=1',
    ]) {
      const res = await get(app, url);
      assert.equal(res.status, 400, url);
      assert.deepEqual(res.body, refusal, url);
    }
    const two = await get(app, '/v1/predictions/latest?pair=BTC-USD&x=1&y=2');
    assert.deepEqual(two.body, (await get(app, '/v1/predictions?pair=BTC-USD&x=1&y=2')).body);
    // Without one, they answer as before.
    assert.equal((await get(app, '/v1/predictions/latest?pair=BTC-USD')).status, 200);
    assert.equal((await get(app, '/v1/model')).status, 200);
    await app.close();
  });

  test('health is always 200; ready is 503 until the cache is filled', async () => {
    const { app, latest } = await setup({ ready: false });
    assert.equal((await get(app, '/v1/health')).status, 200);
    const before = await get(app, '/v1/ready');
    assert.equal(before.status, 503);
    assert.equal(before.body.error, 'not_ready');
    latest.add(prediction('BTC/USD', T0));
    latest.markReady();
    const after = await get(app, '/v1/ready');
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.pairs, ['BTC-USD']);
    await app.close();
  });

  test('/metrics on the API port without a key by default; publicMetrics: false (--metrics-port-only): not served', async () => {
    const keys: ApiOptions = { apiKeys: ['k-0123456789'] };
    const on = await setup({ options: keys });
    const off = await setup({ options: { ...keys, publicMetrics: false } });
    try {
      const res = await on.app.inject('/metrics');
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /^# TYPE cryptocast_websocket_clients gauge$/m);
      // No longer a public route: with keys set, a request without one is refused before routing.
      assert.equal((await off.app.inject('/metrics')).statusCode, 401);
      assert.equal(
        (await off.app.inject({ url: '/metrics', headers: { 'x-api-key': 'k-0123456789' } })).statusCode,
        404,
      );
    } finally {
      await on.app.close();
      await off.app.close();
    }
  });

  test('a known path with another method: 405 with Allow; an unknown path: 404', async () => {
    const { app } = await setup();
    for (const url of [
      '/v1/predictions/latest?pair=BTC-USD',
      '/v1/predictions?pair=BTC-USD',
      '/v1/model',
      '/v1/health',
    ]) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
        const res = await app.inject({ method, url });
        assert.equal(res.statusCode, 405, `${method} ${url}`);
        assert.equal(res.headers.allow, 'GET, HEAD');
        assert.equal(res.json().error, 'method_not_allowed');
      }
    }
    assert.equal((await app.inject({ method: 'POST', url: '/v1/nothing' })).statusCode, 404);
    await app.close();
  });

  test('the OpenAPI document lists every route; unknown routes answer a JSON 404', async () => {
    const { app } = await setup();
    const res = await app.inject('/v1/openapi.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json() as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/v1/predictions/latest', '/v1/predictions', '/v1/model', '/v1/health', '/v1/ready'])
      assert.ok(p in doc.paths, p);
    const missing = await get(app, '/v1/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    await app.close();
  });
});

test("error codes come from one catalogue: the OpenAPI document lists it; a status without a code of its own gets its class's", async () => {
  const { app } = await setup();
  const doc = app.swagger() as unknown as {
    paths: Record<
      string,
      {
        get: {
          responses: Record<
            string,
            { content: Record<string, { schema: { properties: { error: { enum: string[] } } } }> }
          >;
        };
      }
    >;
  };
  const schema = doc.paths['/v1/predictions']!.get.responses['400']!.content['application/json']!.schema;
  assert.deepEqual(schema.properties.error.enum, Object.keys(API_ERRORS));
  assert.equal(errorCode(404), 'not_found');
  assert.equal(errorCode(431), 'request_header_fields_too_large');
  assert.equal(errorCode(418), 'bad_request');
  assert.equal(errorCode(502), 'internal_server_error');
  await app.close();
});

describe('requests Fastify or Node refuse before routing', () => {
  /** Sends raw bytes to the listening API and returns what it answered (it closes the connection). */
  function raw(port: number, request: string, end = true): Promise<string> {
    // `end: false` keeps the client's side open: only the server can close the connection, within 5 s.
    const sock = connect(port, '127.0.0.1', () => (end ? sock.end(request) : sock.write(request)));
    let out = '';
    const closed = new Promise<string>((resolve, reject) => {
      sock.on('data', (d) => {
        out += d;
      });
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
    return settlesWithin(
      closed,
      5_000,
      () => `the server to close the connection; it answered ${out.split('\r\n')[0]}`,
      () => sock.destroy(),
    );
  }
  const parse = (res: string) => {
    const [head, body] = res.split('\r\n\r\n');
    return { status: Number(head!.split(' ')[1]), head: head!, body: JSON.parse(body!) as object };
  };

  test('an undecodable URL, an oversized header block and a malformed request get the JSON error shape', async () => {
    const { app } = await setup();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    try {
      for (const path of ['/%zz', `/v1/predictions%E0%A4%A/${'a'.repeat(5000)}`]) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        assert.equal(res.status, 400, path);
        const body = (await res.json()) as { error: string; message: string };
        assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
        assert.equal(body.error, 'bad_request');
        assert.ok(body.message.length < 200, 'the URL is not echoed whole');
      }
      const big = parse(
        await raw(port, `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      );
      assert.equal(big.status, 431);
      assert.match(big.head, /content-type: application\/json/i);
      assert.deepEqual(big.body, {
        error: 'request_header_fields_too_large',
        message: 'the request line and headers exceed 16 KiB',
      });
      const bad = parse(await raw(port, 'NOT HTTP AT ALL\r\n\r\n'));
      assert.equal(bad.status, 400);
      assert.equal((bad.body as { error: string }).error, 'bad_request');
      // A WebSocket upgrade asked of a REST route or an unknown path: answered, then the socket is closed (it has
      // left the HTTP server, so nothing else would ever close it). `raw` resolves on close only.
      const upgrade = (path: string) =>
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
      for (const [path, status] of [
        ['/v1/health', 200],
        ['/nope', 404],
        ['/v1/predictions?pair=BTC-USD&limit=0', 400],
      ] as const) {
        const res = parse(await raw(port, upgrade(path), false));
        assert.equal(res.status, status, path);
      }
      // And the server still answers.
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/health`)).status, 200);
    } finally {
      await app.close();
    }
  });
});

test('a request arriving while the API closes gets a JSON 503 in the API shape, and Connection: close', async () => {
  // A history read that waits for the test: the first request holds its connection open while the API closes.
  let entered!: () => void;
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const store = new (class extends MemoryPredictionsStore {
    override async history(...args: Parameters<MemoryPredictionsStore['history']>) {
      entered();
      await gate;
      return super.history(...args);
    }
  })();
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store });
  let closing!: () => void;
  const closingSeen = new Promise<void>((r) => {
    closing = r;
  });
  app.addHook('preClose', (done) => {
    closing();
    done();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  let requests = 0;
  app.server.on('request', () => requests++);
  const port = (app.server.address() as AddressInfo).port;
  let out = '';
  const sock = connect(port, '127.0.0.1');
  const ended = new Promise<string>((resolve, reject) => {
    sock.on('data', (d) => {
      out += d;
    });
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
  });
  sock.write(`GET /v1/predictions?pair=BTC-USD&from=${T0}&to=${T0 + MIN} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await settlesWithin(inside, 5_000, 'the first request to reach the store');
  const closed = app.close();
  await settlesWithin(closingSeen, 5_000, 'the API to start closing');
  // The second request on the same (busy, so not idle-closed) connection: Fastify routes it while closing.
  sock.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(
    'the second request to arrive',
    () => requests,
    (n) => n >= 2,
    { timeoutMs: 5_000, everyMs: 10 },
  );
  release();
  const answer = await settlesWithin(ended, 5_000, () => `the server to close the connection; got ${out}`);
  await closed;
  const second = answer.slice(answer.indexOf('HTTP/1.1', 1));
  const [head, body] = second.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 503 /);
  assert.match(head!, /connection: close/i);
  assert.match(head!, /content-type: application\/json/i);
  assert.deepEqual(JSON.parse(body!), {
    error: 'service_unavailable',
    message: 'the API is shutting down: retry (another instance, or this one once restarted)',
  });
});

test('a client sending its request a byte at a time is cut at the request timeout with a JSON 408', async () => {
  const { app } = await setup({ options: { requestTimeoutMs: 500 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const trickle = (start: string, more: string) => {
    const t0 = Date.now();
    let answer = '';
    const sock = connect(port, '127.0.0.1', () => sock.write(start));
    // The client's side of the test: a request that never ends, a piece every 100 ms.
    const drip = setInterval(() => sock.write(more), 100);
    const closed = new Promise<{ answer: string; ms: number }>((resolve) => {
      sock.on('data', (d) => {
        answer += d;
      });
      sock.on('error', () => {});
      sock.on('close', () => {
        clearInterval(drip);
        resolve({ answer, ms: Date.now() - t0 });
      });
    });
    return settlesWithin(
      closed,
      10_000,
      () => `the server to cut the connection; it answered ${answer.split('\r\n')[0]}`,
      () => sock.destroy(),
    );
  };
  try {
    for (const [start, more] of [
      [
        'POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":',
        ' ',
      ],
      ['GET /v1/health HTTP/1.1\r\nHost: x\r\n', 'X-A: b\r\n'],
    ] as const) {
      const { answer, ms } = await trickle(start, more);
      assert.match(answer, /^HTTP\/1\.1 408 /, start);
      assert.deepEqual(JSON.parse(answer.split('\r\n\r\n')[1]!), {
        error: 'request_timeout',
        message: 'the request was not received in time',
      });
      // Cut at all, while the client still sends (a piece every 100 ms): a bound far above the 500-ms timeout, for a
      // loaded machine; a per-piece idle timeout would never cut it.
      assert.ok(ms < 10_000, `cut after ${ms} ms`);
    }
  } finally {
    await app.close();
  }
});

describe('API keys, rate limit, CORS', () => {
  test('with keys configured, data routes need x-api-key (401), health and ready do not', async () => {
    const { app, latest } = await setup({ options: { apiKeys: ['k-one', 'k-two'] } });
    latest.add(prediction('BTC/USD', T0));
    const none = await get(app, '/v1/predictions/latest?pair=BTC-USD');
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'unauthorized');
    assert.equal(
      (await get(app, '/v1/predictions/latest?pair=BTC-USD', { 'x-api-key': 'nope' })).status,
      401,
    );
    assert.equal((await get(app, '/v1/model', { 'x-api-key': 'k-two' })).status, 200);
    assert.equal(
      (await get(app, '/v1/predictions/latest?pair=BTC-USD', { 'x-api-key': 'k-one' })).status,
      200,
    );
    assert.equal((await get(app, '/v1/health')).status, 200);
    assert.equal((await get(app, '/v1/ready')).status, 200);
    const doc = (await app.inject('/v1/openapi.json')).json() as {
      components: { securitySchemes: object };
      security: unknown[];
      paths: Record<string, { get: { security?: unknown[] } }>;
    };
    assert.ok('apiKey' in doc.components.securitySchemes);
    // The document says what the API does: a key by default, none for the two probes.
    assert.ok(doc.security.length > 0);
    assert.deepEqual(doc.paths['/v1/health']!.get.security, []);
    assert.deepEqual(doc.paths['/v1/ready']!.get.security, []);
    assert.equal(doc.paths['/v1/predictions/latest']!.get.security, undefined);
    await app.close();
  });

  test('each key has its own token bucket: 429 with Retry-After once the burst is spent', async () => {
    const { app, latest } = await setup({ options: { apiKeys: ['a', 'b'], ratePerSecond: 1, burst: 5 } });
    latest.add(prediction('BTC/USD', T0));
    const url = '/v1/predictions/latest?pair=BTC-USD';
    for (let i = 0; i < 5; i++) assert.equal((await get(app, url, { 'x-api-key': 'a' })).status, 200);
    const limited = await get(app, url, { 'x-api-key': 'a' });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'rate_limited');
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal((await get(app, url, { 'x-api-key': 'b' })).status, 200);
    await app.close();
  });

  test('wrong or missing keys are rate-limited per client address (429 + Retry-After); other addresses and valid keys are not', async () => {
    const { app, latest } = await setup({
      options: { apiKeys: ['good'], failedAuthPerMinute: 6, failedAuthBurst: 3 },
    });
    latest.add(prediction('BTC/USD', T0));
    const url = '/v1/predictions/latest?pair=BTC-USD';
    const from = (ip: string, key?: string) =>
      app.inject({ method: 'GET', url, remoteAddress: ip, headers: key ? { 'x-api-key': key } : {} });
    for (let i = 0; i < 3; i++) assert.equal((await from('10.0.0.1', `guess-${i}`)).statusCode, 401);
    const slowed = await from('10.0.0.1', 'guess-4');
    assert.equal(slowed.statusCode, 429);
    assert.equal(slowed.json().error, 'auth_rate_limited');
    assert.equal(slowed.headers['retry-after'], '10', 'one failure allowed per 10 s at 6 per minute');
    assert.equal((await from('10.0.0.1')).statusCode, 429, 'no key at all counts as a failure too');
    assert.equal((await from('10.0.0.2', 'guess')).statusCode, 401, 'another address has its own budget');
    assert.equal((await from('10.0.0.1', 'good')).statusCode, 200, 'a valid key is never slowed by failures');
    await app.close();
  });

  // Behind an Ingress every client's connection comes from the controller: one guesser spent everyone's failed-key
  // budget. With the proxy trusted (CRYPTOCAST_API_TRUST_PROXY) the client is the address it forwarded; a peer that is
  // not a trusted proxy is its own address, whatever X-Forwarded-For it sends.
  test('behind a trusted proxy each forwarded client has its own failed-key budget; an untrusted peer cannot forge one', async () => {
    const url = '/v1/predictions/latest?pair=BTC-USD';
    const limits = { apiKeys: ['good'], failedAuthPerMinute: 6, failedAuthBurst: 3 };
    const INGRESS = '10.1.2.3';
    const via = (
      app: Awaited<ReturnType<typeof setup>>['app'],
      peer: string,
      forwarded: string,
      key = 'guess',
    ) =>
      app.inject({
        method: 'GET',
        url,
        remoteAddress: peer,
        headers: { 'x-api-key': key, 'x-forwarded-for': forwarded },
      });
    for (const trustProxy of [['10.0.0.0/8'], ['uniquelocal'], [INGRESS]]) {
      const { app, latest } = await setup({ options: { ...limits, trustProxy } });
      latest.add(prediction('BTC/USD', T0));
      for (let i = 0; i < 3; i++) assert.equal((await via(app, INGRESS, '198.51.100.1')).statusCode, 401);
      assert.equal(
        (await via(app, INGRESS, '198.51.100.1')).statusCode,
        429,
        `${trustProxy}: the guesser is slowed`,
      );
      // What a client puts in the header comes before what the proxy appends: only the proxy's entry counts.
      assert.equal(
        (await via(app, INGRESS, '203.0.113.77, 198.51.100.1')).statusCode,
        429,
        `${trustProxy}: a forged entry before the proxy's own is no new budget`,
      );
      assert.equal(
        (await via(app, INGRESS, '198.51.100.2')).statusCode,
        401,
        `${trustProxy}: another client behind the same proxy has its own budget`,
      );
      assert.equal((await via(app, INGRESS, '198.51.100.1', 'good')).statusCode, 200);
      await app.close();
    }
    // A peer outside the trusted block: its X-Forwarded-For is ignored, each forged address is the same budget.
    const { app, latest } = await setup({ options: { ...limits, trustProxy: ['10.0.0.0/8'] } });
    latest.add(prediction('BTC/USD', T0));
    for (let i = 0; i < 3; i++)
      assert.equal((await via(app, '192.0.2.9', `198.51.100.${i}`)).statusCode, 401);
    assert.equal(
      (await via(app, '192.0.2.9', '198.51.100.50')).statusCode,
      429,
      'forged addresses share one budget',
    );
    await app.close();
    // No proxy trusted (the default): X-Forwarded-For is ignored from every peer.
    const plain = await setup({ options: limits });
    for (let i = 0; i < 3; i++)
      assert.equal((await via(plain.app, INGRESS, `198.51.100.${i}`)).statusCode, 401);
    assert.equal((await via(plain.app, INGRESS, '198.51.100.50')).statusCode, 429);
    await plain.app.close();
  });

  test('CORS headers only for configured origins', async () => {
    const on = await setup({ options: { corsOrigins: ['https://dash.example'] } });
    on.latest.add(prediction('BTC/USD', T0));
    const res = await on.app.inject({
      url: '/v1/predictions/latest?pair=BTC-USD',
      headers: { origin: 'https://dash.example' },
    });
    assert.equal(res.headers['access-control-allow-origin'], 'https://dash.example');
    const other = await on.app.inject({
      url: '/v1/predictions/latest?pair=BTC-USD',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['access-control-expose-headers'], 'Retry-After');
    // No cache between the API and its client keeps an answer (a CDN's default TTL would serve yesterday's latest).
    assert.equal(res.headers['cache-control'], 'no-store');
    // A preflight is answered; an OPTIONS that is not one never gets a body outside the catalogue (it was a
    // text/plain 400 "Invalid Preflight Request").
    const preflight = await on.app.inject({
      method: 'OPTIONS',
      url: '/v1/predictions/latest',
      headers: { origin: 'https://dash.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-methods'], 'GET');
    const bare = await on.app.inject({ method: 'OPTIONS', url: '/v1/predictions/latest' });
    assert.ok(
      bare.statusCode < 300 || /application\/json/.test(String(bare.headers['content-type'])),
      `${bare.statusCode} ${bare.headers['content-type']} ${bare.body}`,
    );
    await on.app.close();
    const off = await setup();
    off.latest.add(prediction('BTC/USD', T0));
    const plain = await off.app.inject({
      url: '/v1/predictions/latest?pair=BTC-USD',
      headers: { origin: 'https://dash.example' },
    });
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    await off.app.close();
  });

  test('settings from the environment', () => {
    const o = apiOptionsFromEnv({
      CRYPTOCAST_API_KEYS: ' key-one-0123456789, key-two-0123456789 ,',
      CRYPTOCAST_API_RATE: '10',
      CRYPTOCAST_CORS_ORIGINS: '*',
      CRYPTOCAST_API_TRUST_PROXY: '10.0.0.0/8, fd00::/8',
    });
    assert.deepEqual(o.apiKeys, ['key-one-0123456789', 'key-two-0123456789']);
    assert.equal(o.ratePerSecond, 10);
    assert.deepEqual(o.corsOrigins, ['*']);
    assert.deepEqual(o.trustProxy, ['10.0.0.0/8', 'fd00::/8']);
    assert.equal(apiOptionsFromEnv({}).trustProxy, undefined, 'no proxy trusted unless one is named');
    assert.throws(
      () => apiOptionsFromEnv({ CRYPTOCAST_API_BURST: 'lots' }),
      coded(ERR.CONFIG, /CRYPTOCAST_API_BURST/),
    );
  });

  // The API took any key, however short: a 4-character key is guessed, and one under 6 characters is not even
  // redacted from the log. Refused where the keys are read, by its place in the list, never its value.
  test('an API key shorter than MIN_API_KEY_LENGTH (16) is refused, the key not quoted', () => {
    const short = 'k'.repeat(MIN_API_KEY_LENGTH - 1);
    let refusal: unknown;
    assert.throws(
      () => {
        try {
          apiOptionsFromEnv({ CRYPTOCAST_API_KEYS: `${'a'.repeat(MIN_API_KEY_LENGTH)},${short}` });
        } catch (err) {
          refusal = err;
          throw err;
        }
      },
      coded(ERR.CONFIG, /^CRYPTOCAST_API_KEYS: key 2 of 2 has 15 characters, fewer than the 16/),
    );
    assert.ok(!String((refusal as Error).message).includes(short), (refusal as Error).message);
    assert.ok(!String((refusal as { hint?: string }).hint).includes(short));
    // Exactly the minimum is taken.
    assert.deepEqual(apiOptionsFromEnv({ CRYPTOCAST_API_KEYS: 'b'.repeat(16) }).apiKeys, ['b'.repeat(16)]);
  });
});

test('every response above was checked against the OpenAPI document', () => {
  assert.ok(contractChecks > 40, `only ${contractChecks} contract checks`);
});
