import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { championCard, startApi } from '../../../src/api/api-service.ts';
import { openingStore } from '../../../src/api/opening-store.ts';
import { openPredictionsStore } from '../../../src/inference/store/open.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { ModelCard, ModelRegistry } from '../../../src/training/registry/registry.ts';
import { MemoryPredictionsStore, prediction } from '../../support/memory-predictions-store.ts';
import { scratchDir } from '../../support/scratch.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

const MIN = 60_000;
const T0 = Math.floor(Date.now() / MIN) * MIN - 3_600_000;

/** Just what the API reads of a registry: the champion alias and a card. */
function fakeRegistry(champion: () => number | undefined): ModelRegistry & { reads: number } {
  const r = {
    reads: 0,
    kind: 'local' as const,
    location: 'memory',
    alias: async () => {
      r.reads++;
      return champion();
    },
    get: async (name: string, version: number) => ({ name, version }) as unknown as ModelCard,
  };
  return r as unknown as ModelRegistry & { reads: number };
}

test('startApi: cold start from the store, live from the bus, served over HTTP; stops cleanly', async () => {
  const bus = new InProcessBus();
  const store = new MemoryPredictionsStore();
  await store.write([prediction('ETH/USD', T0)]);
  const api = await startApi({ bus, store, pairs: ['BTC/USD', 'ETH/USD'], port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${api.port}`;
  const ready = await fetch(`${base}/v1/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(((await ready.json()) as { pairs: string[] }).pairs, ['ETH-USD']);
  assert.equal((await fetch(`${base}/v1/predictions/latest?pair=BTC-USD`)).status, 404);
  await bus.publish(topics.predictions, [prediction('BTC/USD', T0 + MIN)]);
  const res = await waitFor(
    'the live prediction over HTTP',
    async () => {
      const r = await fetch(`${base}/v1/predictions/latest?pair=BTC-USD`);
      return { status: r.status, body: (await r.json()) as { windowEnd?: number } };
    },
    (r) => r.status === 200,
    { everyMs: 20 },
  );
  assert.equal(res.body.windowEnd, T0 + MIN);
  assert.equal((await fetch(`${base}/v1/model`)).status, 404, 'no registry: no champion');
  await api.close();
  await bus.close();
});

test('startApi on a store still opening: listens at once, 503s naming the store, ready once it opens (no restart)', async () => {
  const dir = scratchDir('cc-api-opening-');
  const url = `duckdb:${join(dir, 'p.duckdb')}`;
  const seed = await openPredictionsStore(url);
  await seed.write([prediction('ETH/USD', T0)]);
  await seed.close();
  // The store "comes up" when the test says so: until then its opening is pending, as a PostgreSQL that is down is.
  let comeUp!: () => void;
  const up = new Promise<void>((resolve) => {
    comeUp = resolve;
  });
  const store = openingStore(
    'the predictions store',
    up.then(() => openPredictionsStore(url)),
  );
  const bus = new InProcessBus();
  const api = await settlesWithin(
    startApi({
      bus,
      store,
      pairs: ['ETH/USD'],
      port: 0,
      host: '127.0.0.1',
      storesOpen: { what: () => (store.isOpen ? [] : ['the predictions store']), opened: store.opened },
    }),
    10_000,
    'startApi to listen while its store is not open',
  );
  try {
    const base = `http://127.0.0.1:${api.port}`;
    const get = async (path: string) => {
      const r = await fetch(`${base}${path}`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    assert.equal((await get('/v1/health')).status, 200, 'alive while waiting');
    assert.deepEqual(await get('/v1/ready'), {
      status: 503,
      body: {
        error: 'store_unavailable',
        message: 'waiting for the predictions store to open (the service log says why)',
      },
    });
    assert.deepEqual(await get(`/v1/predictions?pair=ETH-USD&from=${T0 - MIN}&to=${T0 + MIN}`), {
      status: 503,
      body: { error: 'store_unavailable', message: 'the predictions store is not open yet: waiting for it' },
    });
    assert.deepEqual(await get('/v1/predictions/latest?pair=ETH-USD'), {
      status: 503,
      body: { error: 'not_ready', message: 'loading the latest predictions' },
    });

    comeUp();
    await settlesWithin(api.ready, 10_000, 'the API to be ready once its store opened');
    const ready = await get('/v1/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.pairs, ['ETH-USD'], 'the cold start read the store once it opened');
    const history = await get(`/v1/predictions?pair=ETH-USD&from=${T0 - MIN}&to=${T0 + MIN}`);
    assert.equal(history.status, 200);
    assert.equal((history.body.items as unknown[]).length, 1);
    assert.equal((await get('/v1/predictions/latest?pair=ETH-USD')).status, 200);
  } finally {
    await api.close();
    await store.close();
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('championCard reads the registry at most once per TTL', async () => {
  let version: number | undefined;
  const reg = fakeRegistry(() => version);
  const card = championCard(reg, 'm', 60_000);
  assert.equal(await card(), undefined);
  version = 2;
  assert.equal(await card(), undefined, 'cached');
  assert.equal(reg.reads, 1);
  const fresh = championCard(reg, 'm', 0);
  assert.equal((await fresh())?.version, 2);
});

test('startApi: /v1/ready waits for every view it serves (alerts, news), not only the latest predictions', async () => {
  const bus = new InProcessBus();
  const now = Date.now();
  await bus.publish(topics.alerts, [
    {
      status: 'firing',
      rule: 'coverage',
      kind: 'quality',
      severity: 'warning',
      key: 'BTC/USD',
      value: 0.5,
      message: 'coverage low',
      startsAt: now - MIN,
      at: now - MIN,
      repeat: 0,
    },
  ]);
  await bus.publish(topics.news, [
    {
      v: 1,
      id: 'n1',
      source: 'test',
      title: 'Bitcoin moves',
      summary: '',
      url: 'https://example.com/n1',
      publishedAt: now - MIN,
      fetchedAt: now - MIN,
      coins: ['BTC'],
    },
  ]);
  // The news view's start is held where it reads its topic's tail (a broker that is slow to answer), which the test
  // releases: until then the news view has nothing, so the API is not ready.
  let newsTailAsked = false;
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const readTail = bus.readTail.bind(bus);
  bus.readTail = (async (topic, perPartition, options) => {
    if (topic.name === topics.news.name) {
      newsTailAsked = true;
      await held;
    }
    return readTail(topic, perPartition, options);
  }) as typeof bus.readTail;
  const api = await startApi({
    bus,
    store: new MemoryPredictionsStore(),
    pairs: ['BTC/USD'],
    port: 0,
    host: '127.0.0.1',
    storesOpen: { what: () => [], opened: Promise.resolve() },
  });
  try {
    const base = `http://127.0.0.1:${api.port}`;
    const get = async (path: string) => {
      const r = await fetch(`${base}${path}`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    await waitFor('the news view to read its tail', () => newsTailAsked, Boolean, { everyMs: 5 });
    assert.equal(api.latest.ready, true, 'the latest predictions are loaded already');
    assert.equal((await get('/v1/ready')).status, 503, 'not ready while the news view is starting');
    release();
    await waitFor(
      'ready',
      async () => (await get('/v1/ready')).status,
      (s) => s === 200,
      { everyMs: 5 },
    );
    // Right after ready, each view answers with what its topic holds.
    const news = await get('/v1/news');
    assert.deepEqual(
      (news.body.items as { id: string }[]).map((n) => n.id),
      ['n1'],
    );
    const pipeline = await get('/v1/pipeline');
    assert.equal(pipeline.status, 200);
    assert.deepEqual(
      (pipeline.body.alerts as { rule: string }[]).map((a) => a.rule),
      ['coverage'],
    );
  } finally {
    release();
    await api.close();
    await bus.close();
  }
});
