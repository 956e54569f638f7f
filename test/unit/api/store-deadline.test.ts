import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { buildApi } from '../../../src/api/server.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';

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
