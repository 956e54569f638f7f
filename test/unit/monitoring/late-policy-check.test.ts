import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { LatePolicy } from '../../../src/candles/aggregator.ts';
import { metricsText } from '../../../src/core/metrics.ts';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { candle, T0 } from '../../support/monitor-minutes.ts';
import { waitFor } from '../../support/wait.ts';

/** An errors store that holds nothing (the check reads only candles). */
const emptyStore: ErrorsStore = {
  kind: 'duckdb',
  async write() {},
  async history() {
    return [];
  },
  async byTargetTime() {
    return [];
  },
  async range() {
    return [];
  },
  async columns() {
    return {};
  },
  async maxTargetTs() {
    return undefined;
  },
  async pairs() {
    return [];
  },
  async count() {
    return 0;
  },
  async close() {},
};

/** Minute i as the candle service emits it under `policy`: its read offset, and under revise what a revision needs. */
const emitted = (i: number, policy: LatePolicy): Candle => ({
  ...candle(i),
  inputOffset: 10 * i,
  ...(policy === 'revise' ? { revisable: { openTs: T0, closeTs: T0 + 1, volume: 1, quoteVolume: 100 } } : {}),
});

/** A monitor given `monitorPolicy`, fed `candles`: its error lines and the mismatch it reports once it read them. */
async function monitorReading(
  monitorPolicy: LatePolicy,
  candles: Candle[],
  o: { clock?: 'wall' | 'event'; now?: () => number } = {},
) {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  const bus = new InProcessBus();
  const svc = new MonitorService(bus, emptyStore, {
    clock: o.clock ?? 'event',
    ...(o.now ? { now: o.now } : {}),
    latePolicy: monitorPolicy,
    logger,
  });
  await svc.start();
  try {
    await bus.publish(topics.candles, candles);
    await waitFor(
      'the candles read',
      () => svc.join.stats,
      () =>
        (svc as unknown as { lastCandle: Map<string, number> }).lastCandle.get('BTC/USD') ===
        candles.at(-1)!.windowEnd,
      { timeoutMs: 10_000, everyMs: 5 },
    );
    const gauge = /^cryptocast_monitor_late_policy_mismatch (\d)/m.exec(await metricsText())?.[1];
    return {
      errors: lines.filter((l) => l.level >= 50).map((l) => l.msg),
      infos: lines.map((l) => l.msg),
      mismatch: svc.latePolicyCheck?.mismatch,
      gauge,
    };
  } finally {
    await svc.stop();
    await bus.close();
  }
}

describe('service monitor: its late policy against the candle service’s', () => {
  it('a monitor on dlq behind candles on revise says so once, and its gauge shows it', async () => {
    const r = await monitorReading(
      'dlq',
      [0, 1, 2].map((i) => emitted(i, 'revise')),
    );
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.match(r.errors[0]!, /candle service runs --late-policy revise .* this monitor dlq/);
    assert.match(r.errors[0]!, /market\.latePolicy/);
    assert.equal(r.mismatch, true);
    assert.equal(r.gauge, '1');
  });

  it('a monitor on revise behind candles on dlq says so too', async () => {
    const r = await monitorReading(
      'revise',
      [0, 1].map((i) => emitted(i, 'dlq')),
    );
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.match(r.errors[0]!, /runs --late-policy dlq .* this monitor revise/);
  });

  it('the same policy on both: nothing said; filled and imported candles tell nothing', async () => {
    for (const policy of ['dlq', 'revise'] as const) {
      const r = await monitorReading(policy, [
        emitted(0, policy),
        { ...candle(1), filled: true, inputOffset: 10 },
        candle(2), // no inputOffset: not the candle service's
        emitted(3, policy),
      ]);
      assert.deepEqual(
        { policy, errors: r.errors, mismatch: r.mismatch },
        { policy, errors: [], mismatch: false },
      );
      assert.equal(r.gauge, '0');
    }
    const r = await monitorReading('revise', [candle(0), { ...candle(1), filled: true, inputOffset: 10 }]);
    assert.deepEqual(r.errors, [], 'nothing to tell from: nothing said');
  });

  it('the candle service changed to the same policy: said when they agree again', async () => {
    const r = await monitorReading('revise', [emitted(0, 'dlq'), emitted(1, 'revise'), emitted(2, 'revise')]);
    assert.equal(r.errors.length, 1);
    assert.equal(r.mismatch, false);
    assert.ok(
      r.infos.includes('the candle service runs the same late policy again'),
      JSON.stringify(r.infos),
    );
  });

  it('live, the candles that ended before the monitor started are not judged (a policy changed since)', async () => {
    // The topic still holds minutes 0–4 of the earlier dlq; the monitor starts at the end of minute 5, on revise as
    // the candle service now is.
    const start = T0 + 5 * 60_000;
    const r = await monitorReading(
      'revise',
      [0, 1, 2, 3, 4].map((i) => emitted(i, 'dlq')).concat([emitted(5, 'revise'), emitted(6, 'revise')]),
      { clock: 'wall', now: () => start },
    );
    assert.deepEqual(r.errors, []);
    assert.equal(r.mismatch, false);
  });
});
