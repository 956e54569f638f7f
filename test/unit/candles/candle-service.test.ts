import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CandleService } from '../../../src/candles/candle-service.ts';
import { metrics } from '../../../src/core/metrics.ts';
import { TradeService } from '../../../src/ingestion/trade-service.ts';
import { partitionFor } from '../../../src/runtime/bus.ts';
import { InProcessBus } from '../../../src/runtime/in-process-bus.ts';
import type { Candle } from '../../../src/schemas/candle.ts';
import type { DeadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import type { Trade, TradeEvent } from '../../../src/schemas/trade.ts';
import { candle, MIN, ohlc, T0, trade, watermark } from '../../support/factories.ts';
import { busFailingOnce } from '../../support/failing-once.ts';
import { waitFor } from '../../support/wait.ts';

async function candlesOf(bus: InProcessBus): Promise<string[]> {
  return (await bus.readTail<Candle>(topics.candles, 10_000)).map((r) => ohlc(r.value));
}

describe('CandleService on the in-process bus', () => {
  it('counts a trade that reaches the trades topic twice once (a retried publish, a restarted source)', async () => {
    const bus = new InProcessBus();
    const service = new CandleService({ bus });
    await service.start();
    const a = trade({ ts: T0 + 1_000, price: 100, tradeId: '1' });
    const b = trade({ ts: T0 + 2_000, price: 101, tradeId: '2' });
    await bus.publish<TradeEvent>(topics.trades, [a, b, a, b, watermark(T0 + MIN + 10_000, { final: true })]);
    await service.caughtUp();
    assert.deepEqual(await candlesOf(bus), ['BTC/USD 00:00 100/101/100/101 v=2 n=2']);
    assert.equal(service.stats.duplicates, 2);
    await service.stop();
  });

  it('revise, restart: the minutes filled after a restart carry the revised close of the last window', async () => {
    const bus = new InProcessBus();
    const events: TradeEvent[] = [
      trade({ ts: T0 + 1_000, price: 100 }),
      watermark(T0 + MIN + 6_000), // closes 00:00 at 100
      trade({ ts: T0 + 30_000, price: 120 }), // late: 00:00 revised, close 120
    ];
    const first = new CandleService({ bus, latePolicy: 'revise' });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, events);
    await first.caughtUp();
    await first.stop();
    const second = new CandleService({ bus, latePolicy: 'revise' });
    await second.start();
    await bus.publish<TradeEvent>(topics.trades, [watermark(T0 + 3 * MIN + 6_000)]); // fills 00:01 and 00:02
    await second.caughtUp();
    await second.stop();
    assert.deepEqual(await candlesOf(bus), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:00 100/120/100/120 v=2 n=2 r1',
      'BTC/USD 00:01 120/120/120/120 v=0 n=0 filled',
      'BTC/USD 00:02 120/120/120/120 v=0 n=0 filled',
    ]);
  });

  it('sends late trades to dlq with the reason and the trade, and keeps going (dlq policy)', async () => {
    const bus = new InProcessBus();
    const service = new CandleService({ bus, graceMs: 1_000 });
    await service.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 1_000, price: 100 }),
      trade({ ts: T0 + MIN + 2_000, price: 102 }),
      trade({ ts: T0 + 30_000, price: 999 }), // its minute closed at 00:01:01
      trade({ ts: T0 + 2 * MIN + 2_000, price: 103 }),
    ]);
    await service.caughtUp();
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.kind, 'late');
    assert.equal(JSON.parse(dead[0]!.payload).price, 999);
    assert.deepEqual(await candlesOf(bus), [
      'BTC/USD 00:00 100/100/100/100 v=1 n=1',
      'BTC/USD 00:01 102/102/102/102 v=1 n=1',
    ]);
    assert.equal(service.stats.late, 1);
    await service.stop();
  });

  it('restart: a late trade for a minute published before the restart is dead-lettered, not dropped as re-read', async () => {
    const bus = new InProcessBus();
    const first = new CandleService({ bus });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 20_000, price: 100 }),
      watermark(T0 + MIN + 6_000), // closes 00:00; nothing stays open, so everything is committed
    ]);
    await first.caughtUp();
    await first.stop();
    const second = new CandleService({ bus });
    await second.start();
    await second.caughtUp();
    await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 40_000, price: 999 })]); // late for 00:00
    await second.caughtUp();
    await second.stop();
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => [d.kind, JSON.parse(d.payload).price]),
      [['late', 999]],
    );
    assert.match(dead[0]!.reason, /late trade: window .*T00:00:00/);
    assert.deepEqual([second.stats.late, second.stats.replayed], [1, 0]);
    assert.deepEqual(await candlesOf(bus), ['BTC/USD 00:00 100/100/100/100 v=1 n=1']);
  });

  it('revise, restart: a late trade for a minute published before the restart revises it, as without the restart', async () => {
    const events: TradeEvent[][] = [
      [
        trade({ ts: T0 + 20_000, price: 100, qty: 0.1 }),
        trade({ ts: T0 + 50_000, price: 110, qty: 0.2 }),
        watermark(T0 + MIN + 6_000), // closes 00:00
        trade({ ts: T0 + 30_000, price: 105, qty: 0.3 }), // late: 00:00 revised once before the restart
        watermark(T0 + 2 * MIN + 6_000), // fills 00:01 at 110
      ],
      // After the restart, late for 00:00: before its open and after its close, so both change (and the filled 00:01).
      [trade({ ts: T0 + 10_000, price: 90, qty: 0.7 }), trade({ ts: T0 + 55_000, price: 95, qty: 0.1 })],
    ];
    const uninterrupted = new InProcessBus();
    const once = new CandleService({ bus: uninterrupted, latePolicy: 'revise' });
    await once.start();
    for (const batch of events) await uninterrupted.publish<TradeEvent>(topics.trades, batch);
    await once.caughtUp();
    await once.stop();

    const bus = new InProcessBus();
    const [before, after] = events;
    const first = new CandleService({ bus, latePolicy: 'revise' });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, before!);
    await first.caughtUp();
    await first.stop();
    const second = new CandleService({ bus, latePolicy: 'revise' });
    await second.start();
    await second.caughtUp();
    await bus.publish<TradeEvent>(topics.trades, after!);
    await second.caughtUp();
    await second.stop();
    assert.deepEqual((await bus.readTail(topics.dlq, 100)).length, 0, 'nothing dead-lettered');
    // The retained 00:00 holds the commit at its first trade: its three trades are re-read (skipped), the two new revise it.
    assert.deepEqual([second.stats.late, second.stats.replayed], [2, 3]);
    const published = (await bus.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
    const expected = (await uninterrupted.readTail<Candle>(topics.candles, 100)).map((r) => r.value);
    assert.deepEqual(published.map(ohlc), [
      'BTC/USD 00:00 100/110/100/110 v=0.3 n=2',
      'BTC/USD 00:00 100/110/100/110 v=0.6 n=3 r1',
      'BTC/USD 00:01 110/110/110/110 v=0 n=0 filled',
      'BTC/USD 00:00 90/110/90/110 v=1.3 n=4 r2',
      'BTC/USD 00:00 90/110/90/95 v=1.4 n=5 r3',
      'BTC/USD 00:01 95/95/95/95 v=0 n=0 filled r1',
    ]);
    const values = ({ inputOffset: _, ...c }: Candle) => c;
    assert.deepEqual(
      published.map(values),
      expected.map(values),
      'the candles of an uninterrupted run, vwap too',
    );
  });

  for (const latePolicy of ['dlq', 'revise'] as const)
    it(`${latePolicy}, restart: a pair quiet behind 20,000 candles of others on its partition is still seeded`, async () => {
      // ADA/USD trades three minutes, then goes quiet (its exchange away); BTC/USD, on the same partition, goes on for
      // 20,001 minutes. A late trade for ADA's last minute then comes (a refill of what its socket missed), and a
      // watermark two minutes on: a run that never stopped dead-letters it (dlq) or revises the minute (revise) and
      // fills the two minutes after. A restart in between must do the same.
      assert.equal(
        partitionFor('ADA/USD', topics.candles.partitions),
        partitionFor('BTC/USD', topics.candles.partitions),
      );
      const ada = (o: { ts: number; price: number }) => trade({ ...o, pair: 'ADA/USD' });
      const before: TradeEvent[] = [
        ada({ ts: T0 + 20_000, price: 10 }),
        ada({ ts: T0 + MIN + 20_000, price: 11 }),
        ada({ ts: T0 + 2 * MIN + 20_000, price: 12 }),
        watermark(T0 + 3 * MIN + 6_000, { pair: 'ADA/USD' }),
      ];
      const after: TradeEvent[] = [
        ada({ ts: T0 + 2 * MIN + 40_000, price: 99 }),
        watermark(T0 + 5 * MIN + 6_000, { pair: 'ADA/USD' }),
      ];
      // BTC's candles, as the candle service published them meanwhile (no trade of ADA's among them).
      const others = Array.from({ length: 20_001 }, (_, i) =>
        candle({ windowEnd: T0 + (i + 1) * MIN, exchange: 'test', pair: 'BTC/USD' }),
      );
      const adaOf = async (bus: InProcessBus) => ({
        candles: (await bus.readTail<Candle>(topics.candles, 30_000))
          .map((r) => r.value)
          .filter((c) => c.pair === 'ADA/USD')
          .map(ohlc),
        dead: (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value.kind),
      });

      const uninterrupted = new InProcessBus();
      const once = new CandleService({ bus: uninterrupted, latePolicy });
      await once.start();
      await uninterrupted.publish<TradeEvent>(topics.trades, before);
      await once.caughtUp();
      await uninterrupted.publish(topics.candles, others);
      await uninterrupted.publish<TradeEvent>(topics.trades, after);
      await once.caughtUp();
      await once.stop();

      const bus = new InProcessBus();
      const first = new CandleService({ bus, latePolicy });
      await first.start();
      await bus.publish<TradeEvent>(topics.trades, before);
      await first.caughtUp();
      await first.stop();
      await bus.publish(topics.candles, others);
      const second = new CandleService({ bus, latePolicy });
      await second.start();
      await bus.publish<TradeEvent>(topics.trades, after);
      await second.caughtUp();
      await second.stop();

      const expected = await adaOf(uninterrupted);
      assert.deepEqual(
        expected,
        latePolicy === 'dlq'
          ? {
              candles: [
                'ADA/USD 00:00 10/10/10/10 v=1 n=1',
                'ADA/USD 00:01 11/11/11/11 v=1 n=1',
                'ADA/USD 00:02 12/12/12/12 v=1 n=1',
                'ADA/USD 00:03 12/12/12/12 v=0 n=0 filled',
                'ADA/USD 00:04 12/12/12/12 v=0 n=0 filled',
              ],
              dead: ['late'],
            }
          : {
              candles: [
                'ADA/USD 00:00 10/10/10/10 v=1 n=1',
                'ADA/USD 00:01 11/11/11/11 v=1 n=1',
                'ADA/USD 00:02 12/12/12/12 v=1 n=1',
                'ADA/USD 00:02 12/99/12/99 v=2 n=2 r1',
                'ADA/USD 00:03 99/99/99/99 v=0 n=0 filled',
                'ADA/USD 00:04 99/99/99/99 v=0 n=0 filled',
              ],
              dead: [],
            },
      );
      assert.deepEqual(await adaOf(bus), expected);
      await uninterrupted.close();
      await bus.close();
    });

  it('restart: a re-read trade of a published minute is skipped; a late one the re-read shows late is dead-lettered', async () => {
    const bus = new InProcessBus();
    // Two exchanges of one pair share a partition: coinbase's open minute holds the commit back to its first trade,
    // so the restart re-reads test's 00:00: its trade and the watermark that closed it.
    const first = new CandleService({ bus });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 10_000, price: 50, exchange: 'coinbase' }),
      trade({ ts: T0 + 20_000, price: 100 }),
      watermark(T0 + MIN + 6_000), // closes test's 00:00
    ]);
    await first.caughtUp();
    await first.stop();
    // While the service is down: a late trade for test's 00:00, after the watermark that closed it.
    await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 45_000, price: 998 })]);
    const second = new CandleService({ bus });
    await second.start();
    await second.caughtUp();
    await second.stop();
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => [d.kind, JSON.parse(d.payload).price]),
      [['late', 998]],
    );
    assert.deepEqual(
      [second.stats.late, second.stats.replayed],
      [1, 1],
      'the re-read trade of 00:00 counts once',
    );
    assert.deepEqual(await candlesOf(bus), ['BTC/USD 00:00 100/100/100/100 v=1 n=1']);
  });

  it('restart: a late trade appended while the service was down, before any record of its pair, is dead-lettered', async () => {
    const bus = new InProcessBus();
    const first = new CandleService({ bus });
    await first.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 20_000, price: 100 }),
      watermark(T0 + MIN + 6_000), // closes test's 00:00
      // Same pair, same partition: coinbase's open minute holds the commit here, after the watermark.
      trade({ ts: T0 + MIN + 10_000, price: 50, exchange: 'coinbase' }),
    ]);
    await first.caughtUp();
    await first.stop();
    // While the service is down: a late trade for test's 00:00, no record of test's pair before it since the commit.
    await bus.publish<TradeEvent>(topics.trades, [trade({ ts: T0 + 45_000, price: 998 })]);
    const second = new CandleService({ bus });
    await second.start();
    await second.caughtUp();
    await second.stop();
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
    assert.deepEqual(
      dead.map((d) => [d.kind, JSON.parse(d.payload).price]),
      [['late', 998]],
    );
    assert.deepEqual([second.stats.late, second.stats.replayed], [1, 0]);
  });

  it('a late trade whose dead letter failed in a batch that closes a later candle is dead-lettered on the retry', async () => {
    const { bus, inner } = busFailingOnce(topics.dlq.name);
    try {
      const service = new CandleService({ bus });
      await service.start();
      await bus.publish<TradeEvent>(topics.trades, [
        trade({ ts: T0 + 20_000, price: 100 }),
        watermark(T0 + MIN + 6_000), // closes test's 00:00
        // Same pair, same partition: coinbase's open minute holds the commit here, after the watermark.
        trade({ ts: T0 + MIN + 10_000, price: 50, exchange: 'coinbase' }),
      ]);
      await service.caughtUp();
      // One batch: a late trade for 00:00, then a watermark that closes test's 01:00 (a filled candle whose
      // inputOffset is past the late trade). Its dead letter fails: the batch is read again from the commit. Had the
      // candle been published before, the late trade would be at or before the published bound, with no record of its
      // pair before it: taken for a re-read, lost.
      await bus.publish<TradeEvent>(topics.trades, [
        trade({ ts: T0 + 45_000, price: 998 }),
        watermark(T0 + 2 * MIN + 6_000),
      ]);
      await waitFor(
        'the retried batch counted',
        () => service.stats.late + service.stats.replayed,
        (n) => n >= 1,
        { timeoutMs: 20_000 },
      );
      await service.stop();
      const dead = (await inner.readTail<DeadLetter>(topics.dlq, 100)).map((r) => r.value);
      assert.deepEqual(
        dead.map((d) => [d.kind, JSON.parse(d.payload).price, d.offset]),
        [['late', 998, '3']],
        'dead-lettered once, with its trades offset',
      );
      assert.deepEqual([service.stats.late, service.stats.replayed], [1, 0]);
      assert.deepEqual(
        (await inner.readTail<Candle>(topics.candles, 100)).map((r) => ohlc(r.value)),
        ['BTC/USD 00:00 100/100/100/100 v=1 n=1', 'BTC/USD 00:01 100/100/100/100 v=0 n=0 filled'],
      );
    } finally {
      await inner.close();
    }
  });

  it('stored candles (cryptocast run, its bus empty) count as published: the refill overlap is skipped, fills go on', async () => {
    const bus = new InProcessBus();
    const stored = { ...candle({ windowEnd: T0 + MIN, close: 100 }), exchange: 'test', pair: 'BTC/USD' };
    const service = new CandleService({ bus, stored: [stored] });
    await service.start();
    await bus.publish<TradeEvent>(topics.trades, [
      trade({ ts: T0 + 59_500, price: 90 }), // a REST refill overlaps the stored minute's last second
      trade({ ts: T0 + 2 * MIN + 1_000, price: 110 }),
      watermark(T0 + 3 * MIN + 6_000),
    ]);
    await service.caughtUp();
    await service.stop();
    assert.deepEqual(await candlesOf(bus), [
      'BTC/USD 00:01 100/100/100/100 v=0 n=0 filled',
      'BTC/USD 00:02 110/110/110/110 v=1 n=1',
    ]);
    assert.equal(service.stats.replayed, 1);
    assert.equal((await bus.readTail(topics.dlq, 10)).length, 0);
  });

  it('trade service: drops duplicates before publishing and retries publishing while the bus is away', async () => {
    const bus = new InProcessBus();
    let failures = 2;
    const publish = bus.publish.bind(bus);
    bus.publish = (async (topic, values) => {
      if (topic.name === 'trades' && failures-- > 0) throw new Error('broker unavailable');
      return publish(topic, values);
    }) as typeof bus.publish;
    const svc = new TradeService(bus);
    const sink = svc.sink('test');
    const t = trade({ ts: T0, price: 1, tradeId: '7' });
    await sink.trades([t, t]);
    await sink.trades([t]);
    assert.equal(svc.stats.trades, 1);
    assert.equal(svc.stats.duplicates, 2);
    assert.equal(svc.stats.publishRetries, 2);
    assert.equal((await bus.readTail(topics.trades, 10)).length, 1);
  });

  it('trade service: trades whose publish ended in an error (a stop while the bus was away) are taken back, not lost', async () => {
    const { bus, inner } = busFailingOnce(topics.trades.name);
    try {
      const svc = new TradeService(bus);
      const stopping = new AbortController();
      stopping.abort(); // the stop comes while the broker is away: the retries end with the publish's error
      const sink = svc.sink('live', stopping.signal);
      const t = trade({ ts: T0, price: 1, tradeId: '7' });
      await assert.rejects(async () => sink.trades([t]), /the broker is away/);
      // The source takes them back too (LiveSource.deliver) and delivers them again when it fetches them again.
      await sink.trades([t]);
      assert.deepEqual(
        (await inner.readTail<TradeEvent>(topics.trades, 10)).map((r) => (r.value as Trade).tradeId),
        ['7'],
      );
      assert.deepEqual([svc.stats.trades, svc.stats.duplicates], [1, 0]);
    } finally {
      await inner.close();
    }
  });

  it('trade service: of a batch that ended in an error half-way, only what was not published is taken back', async () => {
    const bus = new InProcessBus();
    const publish = bus.publish.bind(bus);
    let refuseDeadLetter = true;
    bus.publish = (async (topic, values) => {
      // The dead letter of the refused trade is refused as well, once: the sink throws after publishing 'a'.
      if (topic.name === 'dlq' && refuseDeadLetter) {
        refuseDeadLetter = false;
        throw new TypeError('the dead letter is refused (injected)');
      }
      return publish(topic, values);
    }) as typeof bus.publish;
    const svc = new TradeService(bus);
    const sink = svc.sink('buggy-connector');
    const bad = { ...trade({ ts: T0 + 1, price: 100, tradeId: 'b' }), side: 'hold' } as unknown as Trade;
    const batch = [
      trade({ ts: T0, price: 100, tradeId: 'a' }),
      bad,
      trade({ ts: T0 + 2, price: 100, tradeId: 'c' }),
    ];
    await assert.rejects(async () => sink.trades(batch), /the dead letter is refused/);
    await sink.trades(batch);
    assert.deepEqual(
      (await bus.readTail<TradeEvent>(topics.trades, 10)).map((r) => (r.value as Trade).tradeId),
      ['a', 'c'],
    );
    assert.deepEqual(
      (await bus.readTail<DeadLetter>(topics.dlq, 10)).map((r) => JSON.parse(r.value.payload).tradeId),
      ['b'],
    );
    assert.equal(svc.stats.duplicates, 1); // 'a', published before the error
  });

  it('trade service: a trade the topic refuses is dead-lettered, not retried for ever; the others are published', async () => {
    const bus = new InProcessBus();
    const svc = new TradeService(bus);
    const sink = svc.sink('buggy-connector');
    // Within every bound, but not a trade the schema accepts (a connector's bug).
    const bad = { ...trade({ ts: T0 + 1, price: 100, tradeId: 'b' }), side: 'hold' } as unknown as Trade;
    const done = sink.trades([
      trade({ ts: T0, price: 100, tradeId: 'a' }),
      bad,
      trade({ ts: T0 + 2, price: 100, tradeId: 'c' }),
    ]);
    await done;
    assert.deepEqual(
      (await bus.readTail<TradeEvent>(topics.trades, 10)).map((r) => (r.value as Trade).tradeId),
      ['a', 'c'],
    );
    const dead = (await bus.readTail<DeadLetter>(topics.dlq, 10)).map((r) => r.value);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.kind, 'invalid');
    assert.match(dead[0]!.reason, /side/);
    assert.equal(JSON.parse(dead[0]!.payload).tradeId, 'b');
    assert.equal(svc.stats.trades, 2);
    assert.equal(svc.stats.publishRetries, 0);
  });

  it('trade service: cryptocast_trades_total counts each published trade under its exchange and pair, duplicates not', async () => {
    const count = async (exchange: string, pair: string) =>
      (await metrics.trades.get()).values.find(
        (v) => v.labels.exchange === exchange && v.labels.pair === pair,
      )?.value ?? 0;
    const before = [await count('counted', 'BTC/USD'), await count('counted', 'ETH/USD')];
    const svc = new TradeService(new InProcessBus());
    const sink = svc.sink('test');
    const t = (i: number, pair: string) =>
      trade({ ts: T0 + i, price: 100, tradeId: `c${i}`, exchange: 'counted', pair });
    await sink.trades([t(1, 'BTC/USD'), t(2, 'ETH/USD'), t(3, 'BTC/USD'), t(4, 'BTC/USD')]);
    await sink.trades([t(4, 'BTC/USD'), t(5, 'ETH/USD')]); // the first is a duplicate
    assert.deepEqual(
      [(await count('counted', 'BTC/USD')) - before[0]!, (await count('counted', 'ETH/USD')) - before[1]!],
      [3, 2],
    );
  });
});
