import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KrakenRestBackfill } from '../../../../src/ingestion/backfill/kraken-rest.ts';
import { CoinbaseWsSource } from '../../../../src/ingestion/live/coinbase-ws.ts';
import { KrakenWsSource } from '../../../../src/ingestion/live/kraken-ws.ts';
import type { TradeSource } from '../../../../src/ingestion/source.ts';
import { TradeService } from '../../../../src/ingestion/trade-service.ts';
import { InProcessBus } from '../../../../src/runtime/in-process-bus.ts';
import type { DeadLetter } from '../../../../src/schemas/dlq.ts';
import { topics } from '../../../../src/schemas/topics.ts';
import type { TradeEvent } from '../../../../src/schemas/trade.ts';
import { until } from '../../../support/exchanges/base.ts';
import { CoinbaseServer, type CoinbaseTrade } from '../../../support/exchanges/coinbase.ts';
import { FAST_CONNECTOR } from '../../../support/exchanges/harness.ts';
import { KrakenServer, type KrakenTrade } from '../../../support/exchanges/kraken.ts';
import { waitFor } from '../../../support/wait.ts';

/**
 * Pages of a REST refill overlap (Kraken: the last trade's instant, asked from 1 ns before it; Coinbase: the oldest
 * row's second, each page back ending there): a malformed row in that overlap is in two pages. It is dead-lettered once.
 * Through the trade service on the in-process bus, as `cryptocast run` has it: the services on Kafka publish the dead
 * letters of the same `TradeService` sink to the same `dlq` topic (only the bus differs).
 */

const HOUR_AGO = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

/** Kraken trades of consecutive ids, one per instant, `stepMs` apart from an hour ago. */
function krakenTrades(n: number, stepMs = 10): KrakenTrade[] {
  return Array.from({ length: n }, (_, i) => {
    const ms = HOUR_AGO + i * stepMs;
    const time = `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}4321`;
    return { id: 70_000_000 + i, price: '100000.1', qty: '0.01', time, side: 'b', ordType: 'l' };
  });
}

/** Coinbase trades of consecutive ids, `stepMs` apart from an hour ago. */
function coinbaseTrades(
  n: number,
  stepMs: number,
  fromMs = HOUR_AGO,
  firstId = 995_000_000,
): CoinbaseTrade[] {
  return Array.from({ length: n }, (_, i) => ({
    trade_id: String(firstId + i),
    product_id: 'BTC-USD',
    price: '68900.50',
    size: '0.0015',
    side: 'BUY',
    time: new Date(fromMs + i * stepMs).toISOString().replace('Z', '000Z'),
  }));
}

/** A trade service on the in-process bus running `source`; `fn` then sees what reached the topics. */
async function throughTradeService(
  source: TradeSource,
  fn: (topic: { trades(): Promise<TradeEvent[]>; dead(): Promise<DeadLetter[]> }) => Promise<void>,
): Promise<void> {
  const bus = new InProcessBus();
  const svc = new TradeService(bus);
  const stop = new AbortController();
  const done = svc.run([source], stop.signal);
  try {
    await fn({
      trades: async () => (await bus.readTail<TradeEvent>(topics.trades, 100_000)).map((r) => r.value),
      dead: async () => (await bus.readTail<DeadLetter>(topics.dlq, 1_000)).map((r) => r.value),
    });
  } finally {
    stop.abort();
    await done;
    await bus.close();
  }
}

describe('a malformed row in the overlap of two refill pages is dead-lettered once', () => {
  it('Kraken live refill: the row at the instant a page ends (asked again from 1 ns before it), and the hole retries', async () => {
    const srv = new KrakenServer();
    srv.heartbeatMs = 50;
    srv.pageSize = 10;
    await srv.listen();
    const trades = krakenTrades(31);
    // The gap's refill asks from 1 ms before #4: its first page is #4..#13, the next from 1 ns before #13's instant.
    const bad = { ...trades[13]!, price: 'x' };
    const source = new KrakenWsSource({
      pairs: ['BTC/USDT'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
      restMinIntervalMs: 0,
      // The bad row's id stays missing: asked for again (twice here), each attempt fetching the row again.
      holeRetry: { backoff: { initialMs: 10, maxMs: 20 }, attempts: 2 },
    });
    try {
      await throughTradeService(source, async (topic) => {
        await until(() => source.subscribed.includes('BTC/USDT'), 10_000, 'subscribed');
        srv.publish('BTC/USDT', trades.slice(0, 5));
        await until(() => source.stats.trades === 5, 10_000, 'the streamed trades');
        srv.record('BTC/USDT', [...trades.slice(5, 13), bad, ...trades.slice(14, 30)]);
        srv.publish('BTC/USDT', trades.slice(30, 31)); // the id gap: refilled over REST, 10 rows a page
        await until(() => source.stats.holesAbandoned === 1, 30_000, 'the hole retries to give up');
        const ids = (await topic.trades()).flatMap((e) => (e.type === 'trade' ? [Number(e.tradeId)] : []));
        assert.deepEqual(
          [...new Set(ids)].sort((a, b) => a - b),
          trades.filter((t) => t !== trades[13]).map((t) => t.id),
          'every good trade',
        );
        assert.ok(
          srv.pagesServed.filter((p) => p.rows > 0).length >= 4,
          'the row came in two pages of the refill and in the hole attempts',
        );
        const dead = (await topic.dead()).filter((d) => d.origin === 'kraken-rest');
        assert.equal(
          dead.length,
          1,
          `one dead letter for the bad row: ${dead.map((d) => d.reason).join(' | ')}`,
        );
        assert.match(dead[0]!.reason, /^price: .*"x".*70000013/);
      });
    } finally {
      await srv.close();
    }
  });

  it('Coinbase live refill: a row of the second where a page back ends (in both pages)', async () => {
    const srv = new CoinbaseServer();
    srv.heartbeatMs = 40;
    await srv.listen();
    // 2,501 trades 100 ms apart: the walk back's newest page is #1501..#2500, the next ends at #1501's second (#1501..
    // #1509 again); #1505 is malformed.
    const trades = coinbaseTrades(2_501, 100);
    const bad = { ...trades[1505]!, price: 'x' };
    const source = new CoinbaseWsSource({
      pairs: ['BTC/USD'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
    });
    try {
      await throughTradeService(source, async (topic) => {
        await until(() => source.subscribed.includes('BTC/USD'), 10_000, 'subscribed');
        srv.publish(trades.slice(0, 10));
        await until(() => source.stats.trades === 10, 10_000, 'the streamed trades');
        srv.muted = true;
        srv.publish([...trades.slice(10, 1505), bad, ...trades.slice(1506, 2_500)]); // lost: a sequence gap
        srv.muted = false;
        srv.publish(trades.slice(2_500));
        await until(() => source.stats.trades === 2_500, 30_000, 'the refill');
        await until(() => source.stats.refills >= 1 && source.stats.rejects >= 1, 10_000, 'the dead letter');
        // Every page of the refill has been handed over (the newest last, with #2500 in it).
        const dead = (await topic.dead()).filter((d) => d.origin === 'coinbase-rest');
        assert.equal(
          dead.length,
          1,
          `one dead letter for the bad row: ${dead.map((d) => d.reason).join(' | ')}`,
        );
        assert.match(dead[0]!.reason, /"price":"x"/);
        assert.equal(source.stats.rejects, 1);
      });
    } finally {
      await srv.close();
    }
  });

  it('Kraken REST backfill: the row at the instant a page ends', async () => {
    const srv = new KrakenServer();
    srv.pageSize = 10;
    await srv.listen();
    const trades = krakenTrades(30);
    srv.record('BTC/USDT', [...trades.slice(0, 9), { ...trades[9]!, price: 'x' }, ...trades.slice(10)]);
    const since = HOUR_AGO;
    const source = new KrakenRestBackfill({
      pair: 'BTC/USDT',
      since,
      until: since + 60_000,
      baseUrl: srv.restUrl,
      minIntervalMs: 0,
      log: FAST_CONNECTOR.log,
    });
    try {
      await throughTradeService(source, async (topic) => {
        const events = await waitFor(
          'the backfill to end (its final watermark)',
          () => topic.trades(),
          (es) => es.some((e) => e.type === 'watermark' && e.final === true),
          { timeoutMs: 30_000, everyMs: 20 },
        );
        assert.equal(events.filter((e) => e.type === 'trade').length, 29, 'every good trade');
        assert.ok(srv.pagesServed.length >= 4, 'pages of 10, each from 1 ns before the last');
        const dead = (await topic.dead()).filter((d) => d.origin === 'kraken-rest');
        assert.equal(
          dead.length,
          1,
          `one dead letter for the bad row: ${dead.map((d) => d.reason).join(' | ')}`,
        );
      });
    } finally {
      await srv.close();
    }
  });
});
