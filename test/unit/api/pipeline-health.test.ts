import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AlertsView } from '../../../src/api/alerts-view.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { PipelineHealthView } from '../../../src/api/pipeline-health.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { featureVector, MIN, T0 } from '../../support/factories.ts';

/**
 * The feature staleness of /v1/pipeline (the dashboard's pipeline health), per pair. It read the newest record of each
 * partition of `features`, and pairs share partitions (four, by the pair's hash: SOL/USD and XRP/USD both go to 0): a
 * pair whose feature stage stalled while another of its partition went on was not listed at all — its staleness,
 * the figure that should say so, was gone — and of two pairs publishing each minute only the one published last was.
 */
describe('PipelineHealthView: feature staleness of pairs that share a partition', () => {
  it('lists each pair with its own newest vector, also a pair that stopped while the other went on', async () => {
    assert.equal(
      partitionFor('SOL/USD', topics.features.partitions),
      partitionFor('XRP/USD', topics.features.partitions),
      'the two pairs share a partition',
    );
    const bus = new InProcessBus();
    const view = new PipelineHealthView({
      bus,
      latest: new LatestPredictions(),
      alerts: new AlertsView(),
      clock: 'wall',
      cacheMs: 0,
    });
    // Each minute a vector of both pairs, until XRP's stage stops after minute 10; SOL's goes on.
    const minute = (k: number, pairs: string[]) =>
      bus.publish(
        topics.features,
        pairs.map((pair) => featureVector({ windowEnd: T0 + k * MIN, pair })),
      );
    for (let k = 1; k <= 10; k++) await minute(k, ['XRP/USD', 'SOL/USD']);
    for (let k = 11; k <= 20; k++) await minute(k, ['SOL/USD']);
    const staleness = async (now: number) =>
      Object.fromEntries((await view.get(now)).features.map((f) => [f.pair, f.stalenessMs / MIN]));
    assert.deepEqual(await staleness(T0 + 21 * MIN), { 'SOL/USD': 1, 'XRP/USD': 11 });
    // Long after (SOL's vectors have pushed XRP's far back in the partition): XRP still listed, staler.
    for (let k = 21; k <= 400; k++) await minute(k, ['SOL/USD']);
    assert.deepEqual(await staleness(T0 + 401 * MIN), { 'SOL/USD': 1, 'XRP/USD': 391 });
    await bus.close();
  });
});
