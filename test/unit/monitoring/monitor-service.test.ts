import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MonitorService } from '../../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { Prediction } from '../../../src/schemas/prediction.ts';
import { errorKey, type PredictionError } from '../../../src/schemas/prediction-error.ts';
import { topics } from '../../../src/schemas/topics.ts';

/** An errors store in memory whose writes fail while `failing` says so (a database restarting). */
function memoryStore(failing: () => boolean): ErrorsStore & { rows: Map<string, PredictionError> } {
  const rows = new Map<string, PredictionError>();
  const all = () => [...rows.values()];
  return {
    kind: 'duckdb',
    rows,
    async write(records) {
      if (failing()) throw new Error('store unavailable (injected)');
      for (const r of records) rows.set(errorKey(r), r);
    },
    async history() {
      return [];
    },
    async byTargetTime(from, to) {
      return all().filter((r) => r.targetTs >= from && r.targetTs < to);
    },
    async range() {
      return [];
    },
    async columns() {
      return {};
    },
    async maxTargetTs() {
      const ts = all().map((r) => r.targetTs);
      return ts.length === 0 ? undefined : Math.max(...ts);
    },
    async pairs() {
      return [];
    },
    async count() {
      return rows.size;
    },
    async close() {},
  };
}

const T0 = Date.UTC(2025, 0, 1);
const candle = (i: number): Candle => ({
  v: 1,
  exchange: 'kraken',
  pair: 'BTC/USD',
  interval: '1m',
  windowStart: T0 + i * 60_000,
  windowEnd: T0 + (i + 1) * 60_000,
  open: 100 + i,
  high: 101 + i,
  low: 99 + i,
  close: 100 + i,
  volume: 1,
  filled: false,
  revision: 0,
});
const prediction = (i: number): Prediction => {
  const windowEnd = T0 + (i + 1) * 60_000;
  return {
    v: 1,
    exchange: 'kraken',
    pair: 'BTC/USD',
    windowEnd,
    horizonMs: 300_000,
    targetTs: windowEnd + 300_000,
    close: 100 + i,
    predictedReturnBps: 1,
    predictedClose: 100.01 + i,
    p10: 99 + i,
    p90: 101 + i,
    modelName: 'm',
    modelVersion: 1,
    featureSet: 'technical',
    featureSetVersion: 1,
    createdAt: windowEnd + 1_000,
    latencyMs: 1_000,
  };
};

describe('MonitorService: a failed write', () => {
  it('a store write that fails once (database restarting) loses no verdict', async () => {
    const bus = new InProcessBus();
    let writes = 0;
    const store = memoryStore(() => ++writes === 1);
    const svc = new MonitorService(bus, store, { clock: 'event' });
    await svc.start();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 100 }, (_, i) => prediction(i)),
    );
    await svc.caughtUp();
    await bus.publish(
      topics.candles,
      Array.from({ length: 110 }, (_, i) => candle(i)),
    );
    await svc.caughtUp();
    await svc.stop();
    assert.equal(store.rows.size, 100, 'one verdict per prediction in the store');
  });
});
