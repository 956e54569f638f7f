import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { mock, test } from 'node:test';
import { ErrorsFeed, STORE_PAIRS_TTL_MS } from '../../../src/api/errors-feed.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { buildApi } from '../../../src/api/server.ts';
import { scorePrediction, unscorable } from '../../../src/monitoring/score.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../../src/monitoring/store/open.ts';
import { prediction } from '../../support/factories.ts';
import { MemoryPredictionsStore } from '../../support/memory-predictions-store.ts';
import { scratchDir } from '../../support/scratch.ts';

const T = Date.UTC(2026, 0, 5, 0, 0);
const M = 60_000;
const record = (pair: string) =>
  scorePrediction(prediction({ pair, windowEnd: T, predictedClose: 101 }), 100, T + 5 * M);

test('/v1/errors and /v1/quality reuse the store’s pair list; a pair only in the store appears within the TTL', async (t) => {
  const dir = scratchDir('cc-errors-pairs-');
  const real = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
  await real.write([record('BTC/USD')]);
  // The real DuckDB store, with its `SELECT DISTINCT pair` counted.
  let reads = 0;
  const store: ErrorsStore = Object.create(real, {
    pairs: {
      value: () => {
        reads++;
        return real.pairs();
      },
    },
  });
  mock.timers.enable({ apis: ['Date'], now: T + M });
  t.after(() => mock.timers.reset());
  const errors = new ErrorsFeed(store, { clock: 'wall' });
  errors.markReady();
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store: new MemoryPredictionsStore(), errors });
  const status = async (url: string) => (await app.inject({ method: 'GET', url })).statusCode;
  try {
    const asked = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        status(i % 2 ? '/v1/quality?pair=BTC-USD' : `/v1/errors?pair=BTC-USD&from=${T - M}&to=${T + M}`),
      ),
    );
    assert.deepEqual(new Set(asked), new Set([200]));
    assert.equal(reads, 1, 'one read of the pairs for ten requests, concurrent ones included');

    // Written to the store behind the API's back (not on the topic): unknown until the list is read again.
    await real.write([record('ETH/USD')]);
    assert.equal(await status('/v1/quality?pair=ETH-USD'), 404);
    mock.timers.tick(STORE_PAIRS_TTL_MS - 1);
    assert.equal(await status('/v1/quality?pair=ETH-USD'), 404, 'still within the TTL');
    assert.equal(reads, 1);
    mock.timers.tick(1);
    assert.equal(await status('/v1/quality?pair=ETH-USD'), 200, 'the TTL passed: read again');
    assert.equal(reads, 2);

    // A pair the feed hears of (the monitor's topic) is known at once, without a read.
    errors.add(record('SOL/USD'));
    assert.equal(await status('/v1/quality?pair=SOL-USD'), 200);
    assert.equal(reads, 2);
  } finally {
    await app.close();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on the event clock before any record is in the feed, /v1/quality and /v1/errors answer (empty windows), not 500', async (t) => {
  const dir = scratchDir('cc-errors-event-');
  const store = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
  await store.write([record('BTC/USD')]); // the pair is known (the store), the feed has heard nothing yet
  mock.timers.enable({ apis: ['Date'], now: T + M });
  t.after(() => mock.timers.reset());
  const errors = new ErrorsFeed(store, { clock: 'event' });
  errors.markReady();
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store: new MemoryPredictionsStore(), errors });
  try {
    const quality = await app.inject({ method: 'GET', url: '/v1/quality?pair=BTC-USD' });
    assert.equal(quality.statusCode, 200, quality.body);
    const body = quality.json() as { clock: number; windows: Record<string, { count: number }> };
    assert.equal(body.clock, T + M, 'the wall clock stands in');
    assert.ok(Object.values(body.windows).every((w) => w.count === 0));
    const page = await app.inject({ method: 'GET', url: '/v1/errors?pair=BTC-USD' });
    assert.equal(page.statusCode, 200, page.body);
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the errors feed: a verdict scored after it timed out goes to the subscribers as a revision; the timed-out one read again is stale', () => {
  const errors = new ErrorsFeed({} as ErrorsStore); // `add` reads no store
  const told: string[] = [];
  errors.onRecord((e) => told.push(`${e.p.status} ${e.p.reason ?? ''}`.trim()));
  const p = prediction({ pair: 'BTC/USD', windowEnd: T, predictedClose: 101 });
  const timedOut = unscorable(p, 'target_not_closed_in_time', T + 20 * M);
  const scored = scorePrediction(p, 100, T + 40 * M);
  errors.add(timedOut);
  errors.add(timedOut);
  errors.add(scored);
  errors.add(timedOut);
  errors.add(scored);
  assert.deepEqual(told, ['unscorable target_not_closed_in_time', 'scored']);
  assert.deepEqual(
    errors.ring('BTC/USD').map((e) => e.p.status),
    ['scored'],
  );
  assert.equal(errors.latest('BTC/USD')?.status, 'scored');
  assert.equal(errors.quality.report('BTC/USD', T + 40 * M)['1h']!.count, 1);
});
