import { test } from 'node:test';
import { AlertsView } from '../../src/api/alerts-view.ts';
import type { Bus } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { AlertNotification } from '../../src/schemas/alert.ts';
import { topics } from '../../src/schemas/topics.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { waitFor } from '../support/wait.ts';

const T0 = Date.parse('2026-01-05T00:00:00Z');
const notification = (o: Partial<AlertNotification>): AlertNotification => ({
  status: 'firing',
  rule: 'no-candles',
  kind: 'no_candles',
  severity: 'critical',
  key: 'BTC/USD',
  value: 600,
  message: 'no candle for 10 min',
  startsAt: T0,
  at: T0,
  repeat: 0,
  ...o,
});

/**
 * The real broker, but a subscription joins its group only once `readDone` resolves (a group whose partitions are
 * assigned late: a first join that assigned nothing, a rebalance), and `afterRead` runs when a whole-topic read ends.
 */
function lateAssignment(bus: KafkaBus, afterRead: () => Promise<void>): Bus {
  let markRead!: () => void;
  const readDone = new Promise<void>((r) => {
    markRead = r;
  });
  return {
    kind: bus.kind,
    ensureTopics: (t) => bus.ensureTopics(t),
    publish: (t, v) => bus.publish(t, v),
    readTail: (t, n, o) => bus.readTail(t, n, o),
    groupLag: (t, g, o) => bus.groupLag(t, g, o),
    close: () => bus.close(),
    async readPages(t, onPage, o) {
      await bus.readPages(t, onPage, o);
      await afterRead();
      markRead();
    },
    async subscribe(options) {
      const real = readDone.then(() => bus.subscribe(options));
      return {
        stop: async () => (await real).stop(),
        lag: () => 0,
        caughtUp: async () => (await real).caughtUp(),
        readToEnd: () => false,
      };
    },
  };
}

test('AlertsView on Kafka: a resolved published between the start read and the group assignment is applied, as is a new alert', async () => {
  await ensureKafka();
  const kafka = new KafkaBus({
    brokers: [KAFKA_URL.replace('kafka://', '')],
    topicPrefix: uniquePrefix('alertsview'),
  });
  await kafka.ensureTopics([topics.alerts]);
  await kafka.publish(topics.alerts, [notification({})]);
  // Just after the API read the topic, before its group's partitions are assigned, the monitor resolves the alert and
  // raises another.
  const bus = lateAssignment(kafka, () =>
    kafka.publish(topics.alerts, [
      notification({ status: 'resolved', at: T0 + 60_000 }),
      notification({ key: 'ETH/USD', startsAt: T0 + 60_000, at: T0 + 60_000 }),
    ]),
  );
  const view = new AlertsView();
  try {
    await view.start(bus);
    await waitFor(
      'the resolved alert to leave the list and the new one to join it',
      () => view.list().map((n) => `${n.status} ${n.rule} ${n.key}`),
      (l) => l.length === 1 && l[0] === 'firing no-candles ETH/USD',
      { timeoutMs: 60_000 },
    );
  } finally {
    await view.stop();
    await kafka.close();
  }
});
