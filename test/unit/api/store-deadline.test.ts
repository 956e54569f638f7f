import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlertsView } from '../../../src/api/alerts-view.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { PipelineHealthView } from '../../../src/api/pipeline-health.ts';
import { buildApi } from '../../../src/api/server.ts';
import type { Delivered } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
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
