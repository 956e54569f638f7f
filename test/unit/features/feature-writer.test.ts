import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureService } from '../../../src/features/feature-service.ts';
import { FeatureWriter, TECHNICAL_SET } from '../../../src/features/feature-writer.ts';
import { DuckDbFeatureStore } from '../../../src/features/store/duckdb.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/runtime/topic.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import { bitstampCandles } from '../../support/bitstamp.ts';

describe('FeatureWriter', () => {
  it('moves candles → features → store: full history, online vector, and a replay writes nothing twice', async () => {
    const candles: Candle[] = (await bitstampCandles(500)).map((c) => ({
      ...c,
      v: 1 as const,
      exchange: 'bitstamp',
      interval: '1m' as const,
      filled: false,
      revision: 0,
    }));
    const bus = new InProcessBus();
    const store = await DuckDbFeatureStore.open(':memory:');
    const features = new FeatureService(bus);
    const writer = new FeatureWriter(bus, store);
    await features.start();
    await writer.start();
    await bus.publish(topics.candles, candles);
    await features.caughtUp();
    await writer.caughtUp();
    assert.equal(await store.count(TECHNICAL_SET), 500);
    const online = await store.online(TECHNICAL_SET, 'BTC/USD', candles[499]!.windowEnd);
    assert.equal(online!.vector.windowEnd, candles[499]!.windowEnd);
    assert.equal(online!.vector.ready, true);
    // A second writer group re-reads the whole topic (as after losing its offsets): upserts, no duplicates.
    const again = new FeatureWriter(bus, store, 'feature-writer-2');
    await writer.stop();
    await again.start();
    await again.caughtUp();
    assert.equal(await store.count(TECHNICAL_SET), 500);
    await again.stop();
    await features.stop();
    await store.close();
  });
});
