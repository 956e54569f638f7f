import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MonitorService } from '../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import type { Bus, SubscribeOptions } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import { candle, prediction } from '../support/factories.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The monitor on a real Kafka broker, on the wall clock, stopped and restarted after an outage of 18 hours: on
 * restart its candles group re-reads from a day behind (its commit protocol), and the outage's predictions are read
 * before the candle backlog reaches their minutes — made certain here by holding the candles' first batch until
 * every prediction is waiting. By the wall clock each is long past its target; each has its candle in the topic, so
 * each must be scored, none `target_not_closed_in_time`.
 */

const T0 = Date.UTC(2025, 0, 6);
const M = 60_000;
const PAIRS = ['BTC/USD', 'ETH/USD'];
/** Minutes [from, to) of both pairs: the candles, and the predictions made at each (target five minutes on). */
const minutes = (from: number, to: number) => {
  const range = Array.from({ length: to - from }, (_, k) => from + k);
  return {
    candles: PAIRS.flatMap((pair) =>
      range.map((i) => candle({ exchange: 'kraken', pair, windowEnd: T0 + (i + 1) * M, close: 100 + i })),
    ),
    predictions: PAIRS.flatMap((pair) =>
      range.map((i) =>
        prediction({
          exchange: 'kraken',
          pair,
          windowEnd: T0 + (i + 1) * M,
          close: 100 + i,
          predictedClose: 100.5 + i,
        }),
      ),
    ),
  };
};

/** The bus, with the candles' first batch held until `gate` resolves (partitions are handed over one at a time). */
function candlesHeldUntil(bus: Bus, gate: () => Promise<unknown>): Bus {
  return new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop !== 'subscribe') return Reflect.get(target, prop, receiver);
      return <T>(o: SubscribeOptions<T>) => {
        if (o.topic.name !== topics.candles.name) return target.subscribe(o);
        let first = true;
        return target.subscribe({
          ...o,
          handle: async (b) => {
            if (first) await gate();
            first = false;
            return o.handle(b);
          },
        });
      };
    },
  });
}

describe('the monitor on Kafka restarted behind a backlog of candles (wall clock)', () => {
  const prefix = uniquePrefix('monbl');
  let bus: KafkaBus;
  let store: ErrorsStore;
  before(async () => {
    await ensureKafka();
    bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    store = await openErrorsStore(`duckdb:${join(scratchDir('monitor-backlog-'), 'errors.duckdb')}`);
  });
  after(async () => {
    await bus.close();
    await store.close();
  });

  it('every prediction of the outage scored, none timed out while its candle was still in the backlog', async () => {
    // Two hours judged live, then stopped.
    // Live at the time: its last five minutes' predictions are not timed out yet when it stops.
    const first = new MonitorService(bus, store, { clock: 'wall', now: () => T0 + 121 * M });
    await first.start();
    const before = minutes(0, 120);
    await bus.publish(topics.candles, before.candles);
    await bus.publish(topics.predictions, before.predictions);
    // The last five minutes' predictions wait for candles that come after the outage.
    const judged = PAIRS.length * 115;
    await waitFor(
      'the first two hours judged',
      () => store.count(),
      (n) => n === judged,
      { timeoutMs: 60_000 },
    );
    await first.stop();

    // The outage: 18 more hours of both topics. Then a new monitor, on the same groups.
    const outage = minutes(120, 1200);
    await bus.publish(topics.candles, [...outage.candles, ...minutes(1200, 1210).candles]);
    await bus.publish(topics.predictions, outage.predictions);
    const total = PAIRS.length * 1200;
    let restarted!: MonitorService;
    const allWaiting = () =>
      waitFor(
        'the outage’s predictions waiting',
        () => restarted.join.pendingCount(),
        (n) => n === total - judged,
        {
          timeoutMs: 60_000,
        },
      );
    restarted = new MonitorService(candlesHeldUntil(bus, allWaiting), store, {
      clock: 'wall',
      now: () => T0 + 1_300 * M, // the outage is over: every prediction of it is past its target and time-out
    });
    await restarted.start();
    try {
      await waitFor(
        'every prediction judged',
        () => store.count(),
        (n) => n >= total,
        { timeoutMs: 120_000 },
      );
      const statuses: Record<string, number> = {};
      for (const e of await store.byTargetTime(T0, T0 + 86_400_000)) {
        const k = `${e.pair} ${e.status} ${e.reason ?? ''}`.trim();
        statuses[k] = (statuses[k] ?? 0) + 1;
      }
      assert.deepEqual(statuses, { 'BTC/USD scored': 1200, 'ETH/USD scored': 1200 });
      assert.equal(restarted.join.stats.unscorable, 0);
    } finally {
      await restarted.stop();
    }
  });
});
