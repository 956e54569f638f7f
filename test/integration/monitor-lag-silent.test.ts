import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { AlertEngine } from '../../src/monitoring/alerts/engine.ts';
import { RuleSchema } from '../../src/monitoring/alerts/rules.ts';
import { MonitorService } from '../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import { SilentServer } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';

// The monitor refreshes every stage's consumer lag before each alert evaluation (every 5 s). Behind a broker that goes
// silent without closing the connection (a partition, a host gone), Kafka's groupLag waited for good: the evaluation
// chained after it never ran, so no alert fired or resolved for the rest of the outage, and each tick left one more
// refresh waiting.
test('the broker silent: the lag reads give up, and the alerts are still evaluated', {
  timeout: 120_000,
}, async () => {
  const silent = await SilentServer.start();
  const kafka = KafkaBus.connect(`kafka://127.0.0.1:${silent.port}`);
  // Everything on an in-process bus, but the group lags, which are read from the silent broker.
  const inner = new InProcessBus();
  let lagReads = 0;
  const bus = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'groupLag')
        return (...args: Parameters<Bus['groupLag']>) => {
          lagReads++;
          return kafka.groupLag(...args);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Bus;
  const store = {
    kind: 'duckdb',
    write: async () => {},
    history: async () => [],
    byTargetTime: async () => [],
    range: async () => [],
    columns: async () => ({}),
    maxTargetTs: async () => undefined,
    close: async () => {},
  } as unknown as ErrorsStore;
  const now = Date.now();
  // A rule that fires at its first evaluation: the champion is older than its limit.
  const monitor = new MonitorService(bus, store, {
    clock: 'wall',
    alerts: {
      engine: new AlertEngine(
        [RuleSchema.parse({ name: 'champion-too-old', kind: 'champion_age', hours: 1 })],
        undefined,
        pino({ level: 'silent' }),
      ),
      championCreatedAt: () => now - 2 * 3_600_000,
    },
    logger: pino({ level: 'silent' }),
  });
  try {
    await monitor.start();
    const fired = await waitFor(
      'the alert evaluated on the 5-s timer (after the lag reads)',
      async () => (await inner.readTail(topics.alerts, 10)).map((r) => r.value),
      (a) => a.some((n) => n.status === 'firing' && n.rule === 'champion-too-old'),
      { timeoutMs: 40_000, everyMs: 100 },
    );
    assert.equal(fired.length, 1);
    assert.ok(silent.connections > 0 && lagReads > 0, 'the lag reads reached the silent broker');
  } finally {
    await monitor.stop();
    await kafka.close();
    await inner.close();
    await silent.close();
  }
});
