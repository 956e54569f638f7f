import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlertsView } from '../../../src/api/alerts-view.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { AlertNotification } from '../../../src/schemas/alert.ts';
import { topics } from '../../../src/schemas/topics.ts';

const T0 = Date.parse('2026-01-05T00:00:00Z');
const notification = (o: Partial<AlertNotification>): AlertNotification => ({
  status: 'firing',
  rule: 'champion-too-old',
  kind: 'champion_age',
  severity: 'warning',
  key: 'all',
  value: 400,
  message: 'the champion is 400 h old',
  startsAt: T0,
  at: T0,
  repeat: 0,
  ...o,
});

test('AlertsView on start: an alert firing behind 1,000 notifications of other series is listed', async () => {
  const bus = new InProcessBus();
  // The alert fires, then an alert storm over 1,000 other series (resolved since) on the topic's one partition.
  await bus.publish(topics.alerts, [notification({})]);
  await bus.publish(
    topics.alerts,
    Array.from({ length: 1_000 }, (_, i) =>
      notification({
        rule: 'no-candles',
        kind: 'no_candles',
        key: `PAIR${i}/USD`,
        status: 'resolved',
        at: T0 + 1 + i,
      }),
    ),
  );
  // A series fired then resolved behind the storm is not listed.
  await bus.publish(topics.alerts, [
    notification({ rule: 'features-stale', key: 'BTC/USD', at: T0 + 2_000 }),
    notification({ rule: 'features-stale', key: 'BTC/USD', status: 'resolved', at: T0 + 2_001 }),
  ]);
  const view = new AlertsView();
  await view.start(bus);
  try {
    assert.deepEqual(
      view.list().map((n) => `${n.status} ${n.rule} ${n.key}`),
      ['firing champion-too-old all'],
    );
  } finally {
    await view.stop();
    await bus.close();
  }
});
