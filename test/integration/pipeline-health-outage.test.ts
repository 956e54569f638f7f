import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlertsView } from '../../src/api/alerts-view.ts';
import { LatestPredictions } from '../../src/api/latest.ts';
import { PipelineHealthView } from '../../src/api/pipeline-health.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { freePort } from '../support/ports.ts';
import { SilentServer } from '../support/tcp-proxy.ts';
import { settlesWithin } from '../support/wait.ts';

/** `bus`, counting the tail reads started through it. */
function counting(bus: Bus): { bus: Bus; started: () => number } {
  let started = 0;
  const counted = new Proxy(bus, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === 'readTail')
        return (...args: Parameters<Bus['readTail']>) => {
          started++;
          return target.readTail(...args);
        };
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { bus: counted, started: () => started };
}

// While the broker was away, readTail waited for it to come back (29.6 s in a probe): each /v1/pipeline request after
// the 5-s cache started ANOTHER read that waited too, piling up for the whole outage, and none ever gave up.
test('the broker away: requests during the outage share one read, which gives up at its deadline', {
  timeout: 120_000,
}, async () => {
  // A real KafkaBus whose broker is not running (its port closed: connections refused, as after a stop).
  const kafka = KafkaBus.connect(`kafka://127.0.0.1:${await freePort()}`);
  const { bus, started } = counting(kafka);
  const latest = new LatestPredictions();
  const readTimeoutMs = 2_000;
  const view = new PipelineHealthView({
    bus,
    latest,
    alerts: new AlertsView(),
    clock: 'wall',
    readTimeoutMs,
  });
  try {
    const t0 = Date.now();
    const first = view.get(t0);
    const perRead = started();
    assert.ok(perRead > 0, 'the first request reads the tails');
    // Three more requests, each past the 5-s cache (the injected clock), while the first read still waits.
    const later = [6_000, 12_000, 18_000].map((ms) => view.get(t0 + ms));
    assert.equal(started(), perRead, 'tail reads started: one read for the four requests');
    const outcomes = await settlesWithin(
      Promise.allSettled([first, ...later]),
      readTimeoutMs + 20_000,
      'the read to give up at its deadline',
    );
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      assert.equal((o as PromiseRejectedResult).reason.name, 'TimeoutError');
    }
    // Given up: the next request tries again (one read).
    const again = view.get(Date.now());
    assert.equal(started(), 2 * perRead);
    await assert.rejects(settlesWithin(again, readTimeoutMs + 20_000, 'the second read to give up'));
  } finally {
    await kafka.close();
  }
});

// A broker that stops answering without closing the connection (a partition, a host gone) between the tail reads and
// the lag reads: groupLag took no signal, and the client's request waited for good (still waiting after 120 s in a
// probe), so the view's one read stayed in flight and every /v1/pipeline request after it shared it: 503 for good.
test('the broker silent after the tail reads: the group-lag reads give up at the read deadline too', {
  timeout: 120_000,
}, async () => {
  const silent = await SilentServer.start();
  const kafka = KafkaBus.connect(`kafka://127.0.0.1:${silent.port}`);
  // The tails were read before the broker went silent.
  const bus = new Proxy(kafka, {
    get(target, prop) {
      if (prop === 'readTail') return async () => [];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Bus;
  const readTimeoutMs = 1_000;
  const view = new PipelineHealthView({
    bus,
    latest: new LatestPredictions(),
    alerts: new AlertsView(),
    clock: 'wall',
    readTimeoutMs,
  });
  try {
    const [outcome] = await settlesWithin(
      Promise.allSettled([view.get(Date.now())]),
      readTimeoutMs + 30_000,
      'the read to give up at its deadline',
    );
    assert.equal(outcome!.status, 'rejected');
    assert.equal((outcome as PromiseRejectedResult).reason.name, 'TimeoutError');
    assert.ok(silent.connections > 0, 'the lag reads reached the silent broker');
  } finally {
    await kafka.close();
    await silent.close();
  }
});
