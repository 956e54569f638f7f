import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { keepAlertsIn, openAlertsTable } from '../../../../src/monitoring/store/alerts-table.ts';
import { InProcessBus } from '../../../../src/runtime/in-process-bus.ts';
import type { AlertNotification } from '../../../../src/schemas/alert.ts';
import { topics } from '../../../../src/schemas/topics.ts';
import { scratchDir } from '../../../support/scratch.ts';
import { waitFor } from '../../../support/wait.ts';

const T0 = Date.UTC(2026, 0, 5, 12);
const n = (o: Partial<AlertNotification>): AlertNotification => ({
  status: 'firing',
  rule: 'model-worse-than-persistence',
  kind: 'skill_below',
  severity: 'critical',
  key: 'BTC/USD',
  value: -0.012,
  message: 'BTC/USD: the model is worse than persistence',
  startsAt: T0,
  at: T0,
  repeat: 0,
  ...o,
});

describe('alerts_v1 (the embedded run’s alert notifications)', () => {
  it('keeps the newest notification of each series, however many reminders, and a restart restores the firing ones', async () => {
    const table = await openAlertsTable(`duckdb:${join(scratchDir('h95-alerts-'), 'store.duckdb')}`);
    const bus = new InProcessBus();
    const kept = await keepAlertsIn(table, bus);
    // BTC fires and is reminded every 15 minutes for a day (97 notifications); ETH fires, is reminded, then resolves.
    const btc = Array.from({ length: 97 }, (_, i) => n({ at: T0 + i * 15 * 60_000, repeat: i }));
    const eth = [
      n({ key: 'ETH/USD', at: T0, repeat: 0 }),
      n({ key: 'ETH/USD', at: T0 + 15 * 60_000, repeat: 1 }),
      n({ key: 'ETH/USD', status: 'resolved', at: T0 + 20 * 60_000, repeat: 1 }),
    ];
    for (let i = 0; i < btc.length; i++) {
      await bus.publish(topics.alerts, [btc[i]!]);
      if (i < eth.length) await bus.publish(topics.alerts, [eth[i]!]);
    }
    await waitFor(
      'the last notifications stored',
      async () => [
        await table.latest('model-worse-than-persistence|BTC/USD'),
        await table.latest('model-worse-than-persistence|ETH/USD'),
      ],
      ([b, e]) => b?.repeat === 96 && e?.status === 'resolved',
      { timeoutMs: 20_000, everyMs: 20 },
    );
    await kept.stop();
    await bus.close();
    // Bounded: one row per series, not one per notification (100).
    assert.equal(await table.count(), 2);

    // A restart puts the newest of each series back on its new bus: BTC still firing (reminder 96), ETH resolved.
    const restarted = new InProcessBus();
    const keptAgain = await keepAlertsIn(table, restarted);
    const back = (await restarted.readTail<AlertNotification>(topics.alerts, 100)).map((r) => r.value);
    assert.deepEqual(back.map((a) => `${a.key} ${a.status} ${a.repeat}`).sort(), [
      'BTC/USD firing 96',
      'ETH/USD resolved 1',
    ]);
    await keptAgain.stop();
    await restarted.close();
    await table.close();
  });

  it('a store written before the trim is trimmed to the newest of each series when it is opened again', async () => {
    const table = await openAlertsTable(`duckdb:${join(scratchDir('h95-alerts-old-'), 'store.duckdb')}`);
    await table.write(Array.from({ length: 50 }, (_, i) => n({ at: T0 + i * 60_000, repeat: i })));
    const bus = new InProcessBus();
    const kept = await keepAlertsIn(table, bus);
    assert.equal(await table.count(), 1);
    assert.equal((await table.latest('model-worse-than-persistence|BTC/USD'))?.repeat, 49);
    await kept.stop();
    await bus.close();
    await table.close();
  });
});
