import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishInBatches } from '../../../src/cli/commands/dlq.ts';
import { CryptocastError } from '../../../src/core/errors.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { TradeEvent } from '../../../src/schemas/trade.ts';
import { T0, trade } from '../../support/factories.ts';

describe('cryptocast dlq replay: a broker that goes silent mid-publish', () => {
  it('ends with CC_ERR_BUS within --timeout, the bus closed, counting only the acknowledged batches', async () => {
    const bus = new InProcessBus();
    await bus.ensureTopics([topics.trades]);
    const values = Array.from({ length: 1_200 }, (_, i) => trade({ ts: T0 + i, price: 100 }));
    // The first batch is acknowledged; then the broker answers nothing, as a frozen host or a partition does (the
    // Kafka bus then waits for it, as services must).
    const publish = bus.publish.bind(bus);
    let calls = 0;
    bus.publish = (async (topic, batch) => {
      if (++calls === 1) return publish(topic, batch);
      return new Promise<void>(() => {});
    }) as typeof bus.publish;
    let closed = false;
    const close = bus.close.bind(bus);
    bus.close = async () => {
      closed = true;
      await close();
    };
    const started = Date.now();
    const err = await publishInBatches(bus, topics.trades, values, { ms: 200, label: '0.2s' }).then(
      () => assert.fail('expected the replay to give up'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CryptocastError);
    assert.equal(err.code, 'CC_ERR_BUS');
    assert.equal(err.exitCode, 1);
    assert.match(
      err.message,
      /failed after 500 of 1200: the broker did not acknowledge the next 500 within 0\.2s/,
    );
    assert.match(err.hint ?? '', /the first 500 are on trades/);
    assert.ok(closed, 'the bus is closed, which ends its wait for the broker');
    assert.ok(Date.now() - started < 30_000);
    assert.equal((await bus.readTail<TradeEvent>(topics.trades, 10_000)).length, 500);
  });
});
