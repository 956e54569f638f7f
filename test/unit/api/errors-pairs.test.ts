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

test('the errors feed: a revision still reaches subscribers after a busy day pushed its time-out out of the ring', () => {
  const errors = new ErrorsFeed({} as ErrorsStore, { ringSize: 3 });
  const told: string[] = [];
  errors.onRecord((e) =>
    told.push(`${(e.p.windowEnd - T) / M}:${e.p.status}${e.revision ? ' (revision)' : ''}`),
  );
  const p = (i: number) => prediction({ pair: 'BTC/USD', windowEnd: T + i * M, predictedClose: 101 });
  const timedOut = unscorable(p(0), 'target_not_closed_in_time', T + 20 * M);
  errors.add(timedOut);
  errors.add(scorePrediction(p(-1), 100, T + 4 * M)); // a scored record before it, in the ring first
  for (let i = 1; i <= 3; i++) errors.add(scorePrediction(p(i), 100, T + (i + 5) * M));
  assert.deepEqual(
    errors.ring('BTC/USD').map((e) => (e.p.windowEnd - T) / M),
    [1, 2, 3],
    'both early records left the ring',
  );
  told.length = 0;
  // The candle came late after all: scored under the time-out's key.
  const revised = errors.add(scorePrediction(p(0), 100, T + 60 * M));
  assert.equal(revised?.revision, true);
  // A scored record that left the ring is not revised (a re-publication), nor is the time-out once revised.
  assert.equal(errors.add(scorePrediction(p(-1), 100, T + 4 * M)), undefined);
  assert.equal(errors.add(timedOut), undefined);
  assert.equal(errors.add(scorePrediction(p(0), 100, T + 60 * M)), undefined);
  assert.deepEqual(told, ['0:scored (revision)']);
  assert.deepEqual(
    errors.ring('BTC/USD').map((e) => (e.p.windowEnd - T) / M),
    [1, 2, 3],
    'the ring keeps its order',
  );
});

test('the errors feed: a resume from a later windowEnd gets the revisions the ring holds before it', () => {
  const errors = new ErrorsFeed({} as ErrorsStore);
  const p = (i: number) => prediction({ pair: 'BTC/USD', windowEnd: T + i * M, predictedClose: 101 });
  errors.add(unscorable(p(0), 'target_not_closed_in_time', T + 20 * M));
  errors.add(unscorable(p(1), 'target_not_closed_in_time', T + 21 * M));
  for (let i = 2; i <= 4; i++) errors.add(scorePrediction(p(i), 100, T + (i + 5) * M));
  errors.add(scorePrediction(p(1), 100, T + 60 * M));
  const resumed = (since: number) =>
    errors.recent('BTC/USD', since)!.map((e) => `${(e.p.windowEnd - T) / M}:${e.p.status}`);
  // Away since minute 3 (it had the time-outs and minutes 2–3): the revision of minute 1 and minute 4.
  assert.deepEqual(resumed(T + 3 * M), ['1:scored', '4:scored']);
  assert.deepEqual(resumed(T + 4 * M), ['1:scored']);
  // From before it: everything after since, once, in order.
  assert.deepEqual(resumed(T), ['1:scored', '2:scored', '3:scored', '4:scored']);
});

test('the errors feed: a revision keeps its mark when read again (a restart: the topic’s tail, then the store)', () => {
  const errors = new ErrorsFeed({} as ErrorsStore);
  const p = (i: number) => prediction({ pair: 'BTC/USD', windowEnd: T + i * M, predictedClose: 101 });
  const revision = scorePrediction(p(0), 100, T + 60 * M);
  // The cold start: the tail (the time-out, then its revision), then the store's copy of the revision, all quiet.
  errors.add(unscorable(p(0), 'target_not_closed_in_time', T + 20 * M), true);
  for (let i = 1; i <= 3; i++) errors.add(scorePrediction(p(i), 100, T + (i + 5) * M), true);
  errors.add(revision, true);
  errors.add(revision, true);
  // When it came is not known after a restart: every client resuming from before or after it gets it.
  const resumed = errors.recent('BTC/USD', T + 3 * M)!;
  assert.deepEqual(
    resumed.map((e) => `${(e.p.windowEnd - T) / M}:${e.p.status}`),
    ['0:scored'],
  );
});

test('the errors feed: a resume sends again only the revisions that came when the client may have been away', () => {
  const errors = new ErrorsFeed({} as ErrorsStore);
  const p = (i: number) => prediction({ pair: 'BTC/USD', windowEnd: T + i * M, predictedClose: 101 });
  errors.add(unscorable(p(0), 'target_not_closed_in_time', T + 20 * M));
  for (let i = 1; i <= 2; i++) errors.add(scorePrediction(p(i), 100, T + (i + 5) * M));
  // The revision comes when the newest record is minute 2; then minute 3.
  errors.add(scorePrediction(p(0), 100, T + 60 * M));
  errors.add(scorePrediction(p(3), 100, T + 8 * M));
  const resumed = (since: number) =>
    errors.recent('BTC/USD', since)!.map((e) => `${(e.p.windowEnd - T) / M}:${e.p.status}`);
  assert.deepEqual(resumed(T + 3 * M), [], 'had minute 3: it was there when the revision came');
  assert.deepEqual(resumed(T + 2 * M), ['0:scored', '3:scored'], 'left at minute 2: may have missed it');
  assert.deepEqual(resumed(T + M), ['0:scored', '2:scored', '3:scored']);
});

test('the errors feed: time-outs set aside are dropped once they can no longer be revised', () => {
  const errors = new ErrorsFeed({} as ErrorsStore, { ringSize: 2 });
  const told: string[] = [];
  errors.onRecord((e) => told.push(`${(e.p.windowEnd - T) / M}:${e.p.status}`));
  const p = (i: number) => prediction({ pair: 'BTC/USD', windowEnd: T + i * M, predictedClose: 101 });
  errors.add(unscorable(p(0), 'target_not_closed_in_time', T + 20 * M));
  errors.add(unscorable(p(1), 'target_not_closed_in_time', T + 21 * M));
  // Three days of records later (the time-outs leave the ring as they come, the first two days behind).
  for (let i = 2; i <= 3 * 1440; i += 720) errors.add(scorePrediction(p(i), 100, T + (i + 5) * M));
  told.length = 0;
  assert.equal(
    errors.add(scorePrediction(p(0), 100, T + 60 * M)),
    undefined,
    'past the two days: not revised',
  );
  assert.deepEqual(told, []);
});

// The clock of the errors feed is the newest target of all pairs: a default range ending there read an empty day for
// a pair whose records end days earlier, where /v1/predictions (ending at the pair's own newest) had them.
test('on the event clock, /v1/errors without from/to ends at the pair’s own newest record, as /v1/predictions', async () => {
  const dir = scratchDir('cc-errors-own-end-');
  const store = await openErrorsStore(`duckdb:${join(dir, 'e.duckdb')}`);
  const DAY = 86_400_000;
  const at = (pair: string, windowEnd: number) =>
    scorePrediction(prediction({ pair, windowEnd, predictedClose: 101 }), 100, windowEnd + 5 * M);
  const records = [
    ...Array.from({ length: 60 }, (_, i) => at('ETH/USD', T - 3 * DAY + i * M)),
    ...Array.from({ length: 60 }, (_, i) => at('BTC/USD', T + i * M)),
  ];
  await store.write(records);
  const errors = new ErrorsFeed(store, { clock: 'event' });
  for (const r of records) errors.add(r, true);
  errors.markReady();
  const latest = new LatestPredictions();
  latest.markReady();
  const app = buildApi({ latest, store: new MemoryPredictionsStore(), errors, clock: 'event' });
  try {
    const r = await app.inject({ method: 'GET', url: '/v1/errors?pair=ETH-USD&limit=1000' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().items.length, 60);
    assert.equal(r.json().to, T - 3 * DAY + 59 * M + 1);
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
