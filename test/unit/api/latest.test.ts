import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Entry, LatestPredictions } from '../../../src/api/latest.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { MemoryPredictionsStore, prediction } from '../../support/memory-predictions-store.ts';
import { waitFor } from '../../support/wait.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 1, 12, 0);
const at = (i: number) => T0 + i * MIN;
const ends = (es: readonly Entry[]) => es.map((e) => (e.p.windowEnd - T0) / MIN);

test('latest: the greatest windowEnd wins, then the later publication; bodies are the JSON of it', () => {
  const l = new LatestPredictions();
  l.add(prediction('BTC/USD', at(2)));
  l.add(prediction('BTC/USD', at(1)));
  assert.equal(l.latest('BTC/USD')!.windowEnd, at(2));
  const v2 = prediction('BTC/USD', at(2), { modelVersion: 2, createdAt: at(2) + 500 });
  l.add(v2);
  assert.deepEqual(l.latest('BTC/USD'), v2);
  assert.deepEqual(JSON.parse(String(l.bodyFor('BTC-USD'))), v2);
  assert.equal(l.bodyFor('ETH-USD'), undefined);
});

test('listeners hear each (pair, windowEnd, modelVersion) once, in any arrival order', () => {
  const l = new LatestPredictions();
  const heard: number[] = [];
  l.onPrediction((e) => heard.push((e.p.windowEnd - T0) / MIN));
  for (const i of [1, 3, 2, 3, 1]) l.add(prediction('BTC/USD', at(i)));
  assert.deepEqual(heard, [1, 3, 2]);
  assert.deepEqual(ends(l.ring('BTC/USD')), [1, 2, 3]);
  assert.equal(l.stats.duplicates, 2);
  // The frame a WebSocket client receives.
  assert.equal(JSON.parse(String(l.ring('BTC/USD')[0]!.frame)).type, 'prediction');
});

test('the ring keeps the newest ringSize; recent() answers only for what it covers', () => {
  const l = new LatestPredictions({ ringSize: 3 });
  for (let i = 1; i <= 5; i++) l.add(prediction('BTC/USD', at(i)));
  assert.deepEqual(ends(l.ring('BTC/USD')), [3, 4, 5]);
  assert.deepEqual(ends(l.recent('BTC/USD', at(3))!), [4, 5]);
  assert.deepEqual(ends(l.recent('BTC/USD', at(2))!), [3, 4, 5]);
  assert.equal(l.recent('BTC/USD', at(1)), undefined, 'minute 2 was evicted: read the store');
  assert.equal(l.recent('SOL/USD', at(1)), undefined, 'unknown pair: read the store');
  assert.equal(l.add(prediction('BTC/USD', at(0))), undefined, 'older than the ring: stale');
  assert.equal(l.stats.stale, 1);
});

test('start: subscribes, fills from the topic tail and the store, then is ready and follows the topic', async () => {
  const bus = new InProcessBus();
  const store = new MemoryPredictionsStore();
  await store.write([prediction('BTC/USD', at(1)), prediction('ETH/USD', at(1))]);
  await bus.publish(topics.predictions, [prediction('BTC/USD', at(2))]);
  const l = new LatestPredictions();
  assert.equal(l.ready, false);
  await l.start({ bus, store, pairs: ['BTC/USD', 'ETH/USD'] });
  assert.equal(l.ready, true);
  assert.equal(l.latest('BTC/USD')!.windowEnd, at(2));
  assert.equal(l.latest('ETH/USD')!.windowEnd, at(1));
  // What was known at the cold start is not trusted as complete: an older resume reads the store.
  assert.equal(l.recent('BTC/USD', at(1)), undefined);
  assert.deepEqual(l.recent('BTC/USD', at(2)), []);
  const heard: number[] = [];
  l.onPrediction((e) => heard.push((e.p.windowEnd - T0) / MIN));
  await bus.publish(topics.predictions, [prediction('BTC/USD', at(3))]);
  await waitFor(
    'the live prediction',
    () => heard.length,
    (n) => n > 0,
    { everyMs: 5 },
  );
  assert.deepEqual(heard, [3]);
  assert.deepEqual(ends(l.recent('BTC/USD', at(2))!), [3]);
  await l.stop();
  assert.equal(l.ready, false);
  await bus.close();
});

test('during the cold start nothing is trusted: a resume meanwhile reads the store (which holds what came while away)', async () => {
  // The API listens before its feeds are filled: a dashboard reconnecting after a restart can subscribe in between.
  // The topic's tail has minute 2; the store has minute 3 (stored while this API was away, never published).
  const bus = new InProcessBus();
  const store = new MemoryPredictionsStore();
  await bus.publish(topics.predictions, [prediction('BTC/USD', at(2))]);
  await store.write([prediction('BTC/USD', at(3))]);
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const latest = store.latest.bind(store);
  store.latest = async (pair) => {
    await held;
    return latest(pair);
  };
  const l = new LatestPredictions();
  const started = l.start({ bus, store, pairs: ['BTC/USD'] });
  await waitFor(
    'the tail in the ring',
    () => l.ring('BTC/USD').length,
    (n) => n === 1,
    { everyMs: 5 },
  );
  assert.equal(
    l.recent('BTC/USD', at(2)),
    undefined,
    'a resume from minute 2 during the cold start must read the store (an empty replay loses minute 3)',
  );
  release();
  await started;
  assert.equal(l.recent('BTC/USD', at(2)), undefined, 'minute 3 came from the store: read it');
  assert.deepEqual(ends(l.recent('BTC/USD', at(3))!), []);
  await l.stop();
  await bus.close();
});

test('two instances each see every prediction (groups of their own)', async () => {
  const bus = new InProcessBus();
  const store = new MemoryPredictionsStore();
  const a = new LatestPredictions();
  const b = new LatestPredictions();
  await a.start({ bus, store, pairs: [] });
  await b.start({ bus, store, pairs: [] });
  const pairs = ['BTC/USD', 'ETH/USD', 'SOL/USD', 'XRP/USD'];
  await bus.publish(
    topics.predictions,
    pairs.map((p) => prediction(p, at(1))),
  );
  await waitFor(
    'both instances to see the four pairs',
    () => ({ a: a.knownPairs().length, b: b.knownPairs().length }),
    (n) => n.a === 4 && n.b === 4,
    { everyMs: 5 },
  );
  assert.deepEqual(a.knownPairs().sort(), [...pairs].sort());
  assert.deepEqual(b.knownPairs().sort(), [...pairs].sort());
  await a.stop();
  await b.stop();
  await bus.close();
});
