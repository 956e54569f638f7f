import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metrics } from '../../../src/core/metrics.ts';
import { TradeService } from '../../../src/ingestion/trade-service.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { InvalidValueError } from '../../../src/runtime/poison.ts';
import type { Topic } from '../../../src/runtime/topic.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { TradeEvent } from '../../../src/schemas/trade.ts';
import { T0, trade } from '../../support/factories.ts';

describe('TradeService counts what it published', () => {
  it('a batch that throws after some of its trades went out counts those in stats.trades and the trades metric', async () => {
    // The topic refuses the batch as a whole (one value it refuses: published again value by value), the first two
    // go out, then the broker fails during a stop: the batch throws, and the two published trades are on the topic.
    const bus = new InProcessBus();
    const publish = bus.publish.bind(bus);
    const stop = new AbortController();
    let single = 0;
    bus.publish = (async (topic: Topic<unknown>, values: readonly unknown[]) => {
      if (topic.name === topics.trades.name) {
        if (values.length > 1) throw new InvalidValueError('publish to trades: invalid value (the test)');
        if (++single > 2) {
          stop.abort();
          throw new Error('connection to the broker lost (the test)');
        }
      }
      return publish(topic, values);
    }) as InProcessBus['publish'];
    const svc = new TradeService(bus);
    const batch = [0, 1, 2, 3].map((i) => trade({ exchange: 'counted', ts: T0 + i * 1_000, price: 100 + i }));
    const metric = async () =>
      (await metrics.trades.get()).values.find((v) => v.labels.exchange === 'counted')?.value ?? 0;
    await assert.rejects(
      async () => svc.sink('test', stop.signal).trades(batch),
      /connection to the broker lost/,
    );
    const onTopic = (await bus.readTail<TradeEvent>(topics.trades, 100)).map((r) =>
      r.value.type === 'trade' ? r.value.tradeId : r.value.type,
    );
    assert.deepEqual(
      onTopic,
      [batch[0]!.tradeId, batch[1]!.tradeId],
      'two trades published before the throw',
    );
    assert.equal(svc.stats.trades, 2, 'stats.trades counts the trades published before the batch threw');
    assert.equal(await metric(), 2, 'cryptocast_trades_total too');
    await bus.close();
  });
});
