import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMarketDataPipeline } from '../../../src/app/pipeline.ts';
import {
  candleCopies,
  openCandleFirstEmissionsTable,
  openCandlesTable,
} from '../../../src/candles/store/candles-table.ts';
import { resumeFromStore } from '../../../src/cli/commands/run.ts';
import { openFeatureStore } from '../../../src/features/store/open.ts';
import { TechnicalFeatures } from '../../../src/features/technical.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { bitstampCandleRecords } from '../../support/bitstamp.ts';

/**
 * `cryptocast run --source live` restarted: its in-process bus starts empty, so the feature stage would warm up again
 * for 61 minutes (no prediction for an hour after every restart) and its EMAs would differ for much longer. Seeded
 * from the candles the first run stored, its first new minute gives the vector an uninterrupted run gives.
 */
describe('cryptocast run --source live restarted: the feature stage resumes from the stored candles', () => {
  it('the first new minute has the ready vector of an uninterrupted run, and so has every one after it', async () => {
    const all = (await bitstampCandleRecords(1_400)).map((c) => ({ ...c, pair: 'BTC/USD' }));
    const firstRun = all.slice(0, 1_200); // what the first run stored before it stopped
    const afterRestart = all.slice(1_200);
    // A venue without trade counts (Bitstamp's candles): stored and read back without them, still ready at once.
    assert.ok(all.every((c) => c.trades === undefined));
    const engine = new TechnicalFeatures();
    const reference = all.map((c) => engine.update(c)).slice(1_200);

    // The candle stage's output after the restart, minute by minute from where the first run stopped.
    const got = await vectorsAfterRestart(firstRun, afterRestart, 'dlq');
    assert.deepEqual(
      got.map((v) => v.windowEnd),
      afterRestart.map((c) => c.windowEnd),
      'one vector per new minute, none for the stored ones',
    );
    assert.equal(got[0]!.ready, true, 'the first new minute is ready: no second warm-up');
    got.forEach((v, i) => {
      const ref = reference[i]!;
      assert.equal(v.ready, ref.ready, `row ${i}`);
      v.values.forEach((x, k) => {
        const y = ref.values[k]!;
        if (x === null || y === null) assert.equal(x, y, `row ${i} col ${k}`);
        else assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `row ${i} col ${k}: ${x} vs ${y}`);
      });
    });
  });
  it('stored candles without trade counts, new ones with them: ready once 60 counts are in, as a run that never stopped', async () => {
    const all = (await bitstampCandleRecords(1_100)).map((c) => ({ ...c, pair: 'BTC/USD' }));
    const counted = all.slice(1_000).map((c, i) => ({ ...c, trades: 5 + (i % 7) }));
    const engine = new TechnicalFeatures();
    const reference = [...all.slice(0, 1_000), ...counted].map((c) => engine.update(c)).slice(1_000);
    const got = await vectorsAfterRestart(all.slice(0, 1_000), counted);
    assert.deepEqual(
      got.map((v) => v.ready),
      reference.map((v) => v.ready),
    );
    assert.equal(
      got.findIndex((v) => v.ready),
      59,
      'trades_z_60m needs 60 counts, stored minutes have none',
    );
  });

  it('a stored minute revised just before the restart: the new minutes equal those of a run that never stopped', async () => {
    const all = (await bitstampCandleRecords(1_400)).map((c) => ({ ...c, pair: 'BTC/USD' }));
    const engine = new TechnicalFeatures();
    // A running feature stage takes first emissions only: the revision below never reaches it.
    const reference = all.map((c) => engine.update(c)).slice(1_200);
    const last = all[1_199]!;
    // Late policy revise: a late trade raised the last stored minute's close by 0.1 % after its first emission (the
    // store had both, in that order; its candles table keeps the revision).
    const revised = {
      ...last,
      close: last.close * 1.001,
      high: Math.max(last.high, last.close * 1.001),
      revision: 1,
    };
    const got = await vectorsAfterRestart(all.slice(0, 1_200), all.slice(1_200), 'revise', [revised]);
    assert.equal(got.length, 200);
    got.forEach((v, i) => {
      v.values.forEach((x, k) => {
        const y = reference[i]!.values[k]!;
        if (x === null || y === null) assert.equal(x, y, `row ${i} col ${k}`);
        else assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `row ${i} col ${k}: ${x} vs ${y}`);
      });
    });
  });
});

/**
 * The vectors a live run restarted after storing `stored` (then `revisions` of them) gives for `next` (the candle
 * stage's minutes after it). The candles are stored as the monitor stores them (`candleCopies`).
 */
async function vectorsAfterRestart(
  stored: readonly Candle[],
  next: readonly Candle[],
  latePolicy: 'dlq' | 'revise' = 'revise',
  revisions: readonly Candle[] = [],
): Promise<FeatureVectorRecord[]> {
  const table = await openCandlesTable('duckdb::memory:');
  const firstEmissions = await openCandleFirstEmissionsTable('duckdb::memory:');
  const copies = candleCopies(table, latePolicy === 'revise' ? firstEmissions : undefined);
  await copies.write([...stored]);
  await copies.write([...revisions]);
  const now = stored.at(-1)!.windowEnd + 30_000;
  const resumed = await resumeFromStore(table, ['BTC/USD'], now, latePolicy, () => {}, firstEmissions);
  await table.close();
  await firstEmissions.close();
  const bus = new InProcessBus();
  const store = await openFeatureStore('duckdb::memory:');
  const pipeline = await startMarketDataPipeline({
    bus,
    sources: [],
    config: { interval: '1m', graceMs: 5_000, latePolicy },
    store,
    ...resumed,
    candleFeed: async () => {
      await bus.publish(topics.candles, next);
    },
  });
  await pipeline.finished;
  await pipeline.stop();
  await store.close();
  return (await bus.readTail<FeatureVectorRecord>(topics.features, 10_000)).map((r) => r.value);
}
