import assert from 'node:assert/strict';
import { test } from 'node:test';
import { championCard, startApi } from '../../../src/api/api-service.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { ModelCard, ModelRegistry } from '../../../src/training/registry/registry.ts';
import { MemoryPredictionsStore, prediction } from '../../support/memory-predictions-store.ts';
import { waitFor } from '../../support/wait.ts';

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
