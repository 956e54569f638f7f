import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ErrorsFeed } from '../../src/api/errors-feed.ts';
import { MonitorService } from '../../src/monitoring/monitor-service.ts';
import { figures } from '../../src/monitoring/rolling-quality.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { errorKey, type PredictionError } from '../../src/schemas/prediction-error.ts';
import { topics } from '../../src/schemas/topics.ts';
import { candle, prediction } from '../support/factories.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

/**
 * Two monitors in one consumer group on a real broker, and a rebalance while the first holds verdicts in its
 * write-behind: published, not stored (its store holds the write), and queued behind that write. The first leaves the
 * group (its stop: the partitions go to the second) and publishes its queued verdicts after it lost the partitions;
 * the second re-reads the uncommitted predictions and judges them again. The topic carries every verdict twice — the
 * architecture promises at-least-once there (invariant 6: idempotent sinks, offsets committed once the effect is
 * durable) — and what counts them must count each prediction once: the API's view (the WebSocket feed the dashboard
 * draws, `/v1/quality`) and the store (`/v1/errors`).
 */

const T0 = Date.UTC(2025, 0, 6);
const M = 60_000;
const PAIRS = ['BTC/USD', 'ETH/USD'];
/** Minutes [from, to) of both pairs: their candles, or the predictions made at each (target five minutes on). */
const candles = (from: number, to: number) =>
  PAIRS.flatMap((pair) =>
    Array.from({ length: to - from }, (_, k) =>
      candle({ exchange: 'kraken', pair, windowEnd: T0 + (from + k + 1) * M, close: 100 + from + k }),
    ),
  );
const predictions = (from: number, to: number) =>
  PAIRS.flatMap((pair) =>
    Array.from({ length: to - from }, (_, k) =>
      prediction({
        exchange: 'kraken',
        pair,
        windowEnd: T0 + (from + k + 1) * M,
        close: 100 + from + k,
        predictedClose: 100.5 + from + k,
      }),
    ),
  );

/** `store`, whose writes wait until `release` is called (a database under load), counting the writes begun. */
function heldStore(store: ErrorsStore) {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let begun = 0;
  const held = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'write') return Reflect.get(target, prop, receiver);
      return async (records: readonly PredictionError[]) => {
        begun++;
        await released;
        return target.write(records);
      };
    },
  });
  return { store: held, release, begun: () => begun };
}

/** Three clients on one broker, in a topic namespace of their own (two monitors and the API), and an errors store. */
async function world(name: string) {
  await ensureKafka();
  const prefix = uniquePrefix(name);
  const first = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const second = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const api = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
  const store = await openErrorsStore(`duckdb:${join(scratchDir(`${name}-`), 'errors.duckdb')}`);
  return {
    first,
    second,
    api,
    store,
    close: async () => {
      await Promise.all([first.close(), second.close(), api.close()]);
      await store.close();
    },
  };
}

describe('two monitors in one group on Kafka, a rebalance with verdicts in the write-behind', () => {
  let w: Awaited<ReturnType<typeof world>> | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('the topic carries verdicts twice; the API, the dashboard’s feed and the store count each prediction once', async () => {
    w = await world('monrb');
    const { first, second, api, store } = w;
    // The API's view of the verdicts, from before the first verdict: every record on the topic reaches it.
    const feed = new ErrorsFeed(store);
    const heard = new Map<string, number>();
    feed.onRecord((e) => heard.set(e.key, (heard.get(e.key) ?? 0) + 1));

    const held = heldStore(store);
    const a = new MonitorService(first, held.store, { clock: 'event', stopTimeoutMs: 120_000 });
    await a.start();
    await feed.start({ bus: api, pairs: PAIRS });
    // Two rounds: the first round's verdicts are published and held at the store; the second's wait behind them.
    await first.publish(topics.candles, candles(0, 65));
    await first.publish(topics.predictions, predictions(0, 60));
    await waitFor('the first write held at the store', held.begun, (n) => n > 0, { timeoutMs: 60_000 });
    await first.publish(topics.candles, candles(65, 125));
    await first.publish(topics.predictions, predictions(60, 120));
    const total = PAIRS.length * 120;
    await waitFor(
      'every prediction judged by the first monitor',
      () => a.join.stats.scored,
      (n) => n === total,
      { timeoutMs: 60_000 },
    );
    assert.equal(await store.count(), 0, 'nothing stored yet: every prediction is uncommitted');

    // The rebalance: a second member, then the first leaves (its stop waits for its store); the second owns it all.
    const b = new MonitorService(second, store, { clock: 'event' });
    await b.start();
    const stopping = a.stop();
    try {
      await waitFor(
        'every prediction judged again and stored by the second monitor',
        () => store.count(),
        (n) => n === total,
        { timeoutMs: 120_000 },
      );
      await settlesWithin(b.caughtUp(), 60_000, 'the second monitor caught up');
      assert.equal(b.stats.published, total, 'the second monitor published a verdict per prediction');
      let beforeRelease = 0;
      await api.readPages(topics.predictionErrors, (page) => {
        beforeRelease += page.length;
      });
      assert.ok(
        beforeRelease < 2 * total,
        `some of the first monitor's verdicts still queued once it lost the partitions (${beforeRelease - total} of ${total} published)`,
      );
      // The first member's store answers again: what it queued is published now, the partitions long lost.
      held.release();
      await settlesWithin(stopping, 120_000, 'the first monitor’s stop');
      assert.equal(a.stats.published, total, 'the first monitor published its verdicts too');

      let onTopic = 0;
      const keys = new Set<string>();
      await api.readPages(topics.predictionErrors, (page) => {
        onTopic += page.length;
        for (const r of page) keys.add(errorKey(r.value));
      });
      assert.equal(keys.size, total);
      assert.equal(onTopic, 2 * total, 'the topic carries every verdict twice (at-least-once)');

      await waitFor(
        'the API to read every record on the topic',
        () => feed.stats.received,
        (n) => n === 2 * total,
        { timeoutMs: 60_000 },
      );
      // The WebSocket feed (what the dashboard draws) tells each prediction once.
      assert.equal(heard.size, total);
      assert.deepEqual(
        [...heard.values()].filter((n) => n !== 1),
        [],
        'no verdict told twice',
      );
      // `/v1/quality`: each prediction counted once, per pair.
      for (const pair of PAIRS) {
        const f = figures(feed.quality.sums(pair, 7 * 86_400_000, feed.clock() + 1));
        assert.equal(f.count + f.unscorable, total / PAIRS.length, `${pair}: each verdict counted once`);
      }
      // `/v1/errors`: one row per prediction.
      assert.equal(await store.count(), total);
    } finally {
      held.release();
      await stopping.catch(() => {});
      await b.stop();
      await feed.stop();
    }
  });

  it('a time-out still queued by the member that lost the partition does not replace the next owner’s score in the store', async () => {
    // Live (the wall clock), the first monitor times out predictions whose candles are late (the candle stage down)
    // while its store holds its writes: the time-outs wait in its write-behind. It leaves the group; the late candles
    // come; the second monitor re-reads the uncommitted predictions and the day of candles, and scores them. Then the
    // first member's store answers, and its time-outs are published and stored — after the scores. The store upserts,
    // and kept the last: a time-out where an uninterrupted run has the score (invariant 6), and `/v1/errors`, the
    // dashboard and the rolling quality rebuilt at a restart read it.
    w = await world('monrb-late');
    const { first, second, api, store } = w;
    const held = heldStore(store);
    const a = new MonitorService(first, held.store, {
      clock: 'wall',
      now: () => T0 + 40 * M,
      stopTimeoutMs: 120_000,
    });
    await a.start();
    const feed = new ErrorsFeed(store);
    await feed.start({ bus: api, pairs: PAIRS });
    const late = PAIRS.length * 5; // predictions 0…9 target minutes 5…14; their candles stop at minute 10
    await first.publish(topics.candles, candles(0, 10));
    await first.publish(topics.predictions, predictions(0, 10));
    await waitFor(
      'the predictions whose candles are late timed out by the first monitor',
      () => a.join.stats.unscorable,
      (n) => n === late,
      { timeoutMs: 60_000 },
    );
    assert.ok(held.begun() > 0, 'its store holds the write');
    const stopping = a.stop();
    const b = new MonitorService(second, store, { clock: 'wall', now: () => T0 + 41 * M });
    try {
      // The late candles, then the second monitor, on the same groups.
      await second.publish(topics.candles, candles(10, 15));
      await b.start();
      const total = PAIRS.length * 10;
      await waitFor(
        'every prediction scored and stored by the second monitor',
        async () =>
          (await store.byTargetTime(T0, T0 + 86_400_000)).filter((e) => e.status === 'scored').length,
        (n) => n === total,
        { timeoutMs: 120_000 },
      );
      held.release();
      await settlesWithin(stopping, 120_000, 'the first monitor’s stop');
      const stored = await store.byTargetTime(T0, T0 + 86_400_000);
      assert.equal(stored.length, total);
      assert.deepEqual(
        stored.filter((e) => e.status !== 'scored').map((e) => `${e.pair} ${e.targetTs - T0} ${e.reason}`),
        [],
        'no scored record replaced by a time-out in the store',
      );
      // The API's view already keeps the score (a time-out after its revision is stale).
      await waitFor(
        'the API to read the first monitor’s time-outs',
        () => feed.stats.stale,
        (n) => n > 0,
        {
          timeoutMs: 60_000,
        },
      );
    } finally {
      held.release();
      await stopping.catch(() => {});
      await b.stop();
      await feed.stop();
    }
  });
});
