import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlertsView } from '../../../src/api/alerts-view.ts';
import { championCard } from '../../../src/api/api-service.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { PipelineHealthView } from '../../../src/api/pipeline-health.ts';
import { buildApi } from '../../../src/api/server.ts';
import type { Delivered } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import type { ModelRegistry } from '../../../src/training/registry/registry.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { settlesWithin } from '../../support/wait.ts';

/** A store whose reads never answer (a PostgreSQL behind a dead connection, whose own timeout is minutes). */
class HungStore extends MemoryPredictionsStore {
  override history(): Promise<Prediction[]> {
    return new Promise(() => {});
  }
}

// A request that reached a hung store waited as long as the store (no deadline), and a shutdown waited for it.
test('a store read that does not answer in time: 503 store_unavailable, and the API still closes', {
  timeout: 60_000,
}, async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store: new HungStore(), options: { storeTimeoutMs: 200 } });
  try {
    const r = await app.inject({ method: 'GET', url: '/v1/predictions?pair=BTC-USD' });
    assert.equal(r.statusCode, 503);
    assert.deepEqual(r.json(), {
      error: 'store_unavailable',
      message: 'the predictions store is unavailable',
    });
  } finally {
    await app.close();
  }
});

/** A bus whose tail reads never answer (a broker that accepts the connection and then says nothing). */
class HungTailBus extends InProcessBus {
  override readTail<T>(): Promise<Delivered<T>[]> {
    return new Promise(() => {});
  }
}

// /v1/pipeline read the bus with no deadline: a broker that hangs held the request for ever (and a shutdown with it).
test('a bus that does not answer the pipeline view in time: 503 bus_unavailable, and the API still closes', {
  timeout: 60_000,
}, async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  const view = (bus: InProcessBus) =>
    new PipelineHealthView({ bus, latest, alerts: new AlertsView(), clock: 'wall' });
  const app = buildApi({
    latest,
    store: new MemoryPredictionsStore(),
    pipeline: view(new HungTailBus()),
    options: { storeTimeoutMs: 200 },
  });
  try {
    // Far above the 200-ms deadline (a busy machine), far below for ever: without a deadline the test fails here.
    const r = await settlesWithin(
      app.inject({ method: 'GET', url: '/v1/pipeline' }),
      30_000,
      'the /v1/pipeline answer of a hung bus',
    );
    assert.equal(r.statusCode, 503);
    assert.deepEqual(r.json(), { error: 'bus_unavailable', message: 'the transport is unavailable' });
  } finally {
    await settlesWithin(app.close(), 30_000, 'the API to close');
  }
  // A bus that answers is not cut short.
  const answering = buildApi({
    latest,
    store: new MemoryPredictionsStore(),
    pipeline: view(new InProcessBus()),
    options: { storeTimeoutMs: 10_000 },
  });
  try {
    const r = await answering.inject({ method: 'GET', url: '/v1/pipeline' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().clockKind, 'wall');
  } finally {
    await answering.close();
  }
});

/** A registry whose calls never answer (an MLflow that accepts the connection and then says nothing). */
function hungRegistry(): ModelRegistry {
  const never = () => new Promise<never>(() => {});
  return {
    kind: 'mlflow',
    location: 'http://hung',
    alias: never,
    aliasHistory: never,
    list: never,
    get: never,
  } as unknown as ModelRegistry;
}

// /v1/model and /v1/model/history read the registry with no deadline of their own: an MLflow that hangs held each
// request for its client's timeouts (30 s a call, more for a card download), /v1/model/history one call per version.
test('a model registry that does not answer in time: 503 registry_unavailable on /v1/model and /v1/model/history', {
  timeout: 60_000,
}, async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  const registry = hungRegistry();
  const app = buildApi({
    latest,
    store: new MemoryPredictionsStore(),
    registry,
    model: championCard(registry, 'cryptocast-price'),
    options: { storeTimeoutMs: 200 },
  });
  try {
    for (const url of ['/v1/model', '/v1/model/history']) {
      const r = await settlesWithin(app.inject({ method: 'GET', url }), 30_000, `${url} of a hung registry`);
      assert.equal(r.statusCode, 503, url);
      assert.equal(r.json().error, 'registry_unavailable', url);
    }
  } finally {
    await settlesWithin(app.close(), 30_000, 'the API to close');
  }
});

// Every poll of /v1/model/history made three registry calls and, on MLflow, a card download per registered version.
test('/v1/model/history asks the registry once for requests within 30 s, and again after a failure', async () => {
  const latest = new LatestPredictions();
  latest.markReady();
  let lists = 0;
  let failing = true;
  const registry = {
    kind: 'local',
    location: 'memory',
    alias: async () => 1,
    aliasHistory: async () => [],
    list: async () => {
      lists++;
      if (failing) throw new Error('registry away (injected)');
      return [];
    },
  } as unknown as ModelRegistry;
  const app = buildApi({ latest, store: new MemoryPredictionsStore(), registry });
  try {
    const get = () => app.inject({ method: 'GET', url: '/v1/model/history' });
    assert.equal((await get()).statusCode, 503);
    failing = false;
    const answers = await Promise.all([get(), get(), get()]);
    assert.deepEqual(
      answers.map((r) => r.statusCode),
      [200, 200, 200],
    );
    assert.equal((await get()).json().champion, 1);
    assert.equal(lists, 2, 'one call for the failure, one for the four answers after it');
  } finally {
    await app.close();
  }
});
