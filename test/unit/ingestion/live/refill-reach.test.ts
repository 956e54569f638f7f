import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seekLimit } from '../../../../src/ingestion/live/adapter.ts';
import { BinanceWsSource } from '../../../../src/ingestion/live/binance-ws.ts';
import { CoinbaseWsSource } from '../../../../src/ingestion/live/coinbase-ws.ts';
import { KrakenWsSource } from '../../../../src/ingestion/live/kraken-ws.ts';
import type { LiveTradeSource } from '../../../../src/ingestion/live/live-source.ts';
import { until } from '../../../support/exchanges/base.ts';
import { BinanceServer } from '../../../support/exchanges/binance.ts';
import { CoinbaseServer, type CoinbaseTrade } from '../../../support/exchanges/coinbase.ts';
import { FAST_CONNECTOR, type LogSink, range, running } from '../../../support/exchanges/harness.ts';
import { KrakenServer, type KrakenTrade } from '../../../support/exchanges/kraken.ts';

/**
 * How far one refill reaches in the same budget (`maxRefillPages`, every REST call counted), measured on the local
 * servers: an outage of 20 pages (1,000 trades each) refilled with a budget of 8. Kraken and Binance (from the pair's last
 * trade id) page forward: 8 calls, 8 pages of the outage, its oldest. Coinbase (and Binance for a pair with no trade
 * yet) page backwards from the newest: the pages are wanted oldest first (the candle stage), so the walk back keeps only
 * where each page was (one page in hand, whatever the outage) and reads them again forward — each page walked past costs
 * two calls, and the walk stops at `seekLimit` (5 of 8; 251 of 500) pages back. Not a limit applied twice: the calls are
 * made twice. What is older than the reach (backward) or newer (forward, until the next refill: the next trade's id gap)
 * is not refilled by this one, counted `unrecoverable`.
 */

const BUDGET = 8;
const OUTAGE = 20_000; // 20 pages of 1,000
const HOUR_AGO = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

/** Waits for the outage's one refill to end (incomplete: the budget is spent) and returns what it brought. */
async function refillOutcome(source: LiveTradeSource, sink: LogSink, pair: string, calls: () => number) {
  await until(() => source.stats.unrecoverable > 0, 60_000, 'the refill to end, its budget spent');
  return { calls: calls(), ids: sink.distinctIds(pair) };
}

describe(`how far one refill reaches with maxRefillPages ${BUDGET}, through an outage of 20 pages`, () => {
  it('Kraken, forward by time: 8 calls, the 8 oldest pages of the outage', async () => {
    const srv = new KrakenServer();
    srv.heartbeatMs = 50;
    await srv.listen();
    const trade = (i: number): KrakenTrade => {
      const ms = HOUR_AGO + i * 50;
      const time = `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}1`;
      return { id: 90_000_000 + i, price: '100000.1', qty: '0.01', time, side: 'b', ordType: 'l' };
    };
    const source = new KrakenWsSource({
      pairs: ['BTC/USDT'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
      restMinIntervalMs: 0,
      snapshot: false, // no snapshot on resubscribing: the refill alone
      maxRefillPages: BUDGET,
    });
    try {
      await running(source, async (sink) => {
        await until(() => source.subscribed.includes('BTC/USDT'), 10_000, 'subscribed');
        srv.publish('BTC/USDT', range(0, 9).map(trade));
        await until(() => sink.received.length === 10, 10_000, 'the streamed trades');
        srv.dropAll();
        srv.record('BTC/USDT', range(10, 10 + OUTAGE - 1).map(trade));
        const r = await refillOutcome(source, sink, 'BTC/USDT', () => srv.restCalls.length);
        assert.equal(r.calls, BUDGET);
        // Each page from 1 ns before the last one's newest instant (the first from 1 ms before #9): 999 new a page.
        assert.deepEqual(r.ids, range(90_000_000, 90_000_009 + 999 * BUDGET));
      });
    } finally {
      await srv.close();
    }
  });

  const binanceEvent = (i: number, T: number) => ({
    e: 'trade',
    E: T,
    s: 'BTCUSDT',
    t: i,
    p: '61837.63000000',
    q: '0.02000000',
    T,
    m: true,
    M: true,
  });

  it('Binance, forward by id: 8 calls, the 8 oldest pages of the outage', async () => {
    const srv = new BinanceServer();
    await srv.listen();
    const source = new BinanceWsSource({
      pairs: ['BTC/USDT'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
      maxRefillPages: BUDGET,
    });
    try {
      await running(source, async (sink) => {
        await until(() => source.subscribed.includes('BTC/USDT'), 10_000, 'subscribed');
        srv.publish(range(0, 9).map((i) => binanceEvent(i, HOUR_AGO + i)));
        await until(() => sink.received.length === 10, 10_000, 'the streamed trades');
        srv.dropAll();
        srv.muted = true;
        srv.publish(range(10, 10 + OUTAGE - 1).map((i) => binanceEvent(i, HOUR_AGO + i)));
        srv.muted = false;
        const r = await refillOutcome(source, sink, 'BTC/USDT', () => srv.restCalls.length);
        assert.equal(r.calls, BUDGET);
        assert.deepEqual(r.ids, range(0, 9 + 1_000 * BUDGET));
      });
    } finally {
      await srv.close();
    }
  });

  it(`Binance, walking back by id (no trade of the pair yet): the ${seekLimit(BUDGET)} newest pages, read twice`, async () => {
    const srv = new BinanceServer();
    await srv.listen();
    const source = new BinanceWsSource({
      pairs: ['BTC/USDT'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
      maxRefillPages: BUDGET,
    });
    try {
      await running(source, async (sink) => {
        await until(() => source.subscribed.includes('BTC/USDT'), 10_000, 'subscribed');
        await until(() => sink.watermarks.length > 0, 10_000, 'a watermark: where its refill starts');
        srv.dropAll();
        srv.muted = true;
        const now = Date.now();
        srv.publish(range(0, OUTAGE - 1).map((i) => binanceEvent(i, now + Math.floor(i / 100))));
        srv.muted = false;
        const r = await refillOutcome(source, sink, 'BTC/USDT', () => srv.restCalls.length);
        const reach = seekLimit(BUDGET);
        assert.equal(r.calls, BUDGET);
        // Walked back `reach` pages (ids 15,000.. here), then forward from there: the pages between read again, the
        // newest one (kept from the walk) handed over as it is. It used to be asked for again too, one call past the
        // budget: ids 19,000.. (the newest page) were left to the stream's next trade.
        assert.deepEqual(r.ids, range(OUTAGE - 1_000 * reach, OUTAGE - 1));
      });
    } finally {
      await srv.close();
    }
  });

  it(`Coinbase, walking back by time window: the ${seekLimit(BUDGET)} newest pages, read twice`, async () => {
    const srv = new CoinbaseServer();
    srv.heartbeatMs = 40;
    await srv.listen();
    const trade = (i: number): CoinbaseTrade => ({
      trade_id: String(995_000_000 + i),
      product_id: 'BTC-USD',
      price: '68900.50',
      size: '0.0015',
      side: 'BUY',
      time: new Date(HOUR_AGO + i * 100).toISOString().replace('Z', '000Z'),
    });
    const source = new CoinbaseWsSource({
      pairs: ['BTC/USD'],
      wsUrl: srv.wsUrl,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
      maxRefillPages: BUDGET,
    });
    try {
      await running(source, async (sink) => {
        await until(() => source.subscribed.includes('BTC/USD'), 10_000, 'subscribed');
        srv.publish(range(0, 9).map(trade));
        await until(() => sink.received.length === 10, 10_000, 'the streamed trades');
        srv.dropAll();
        srv.record(range(10, 10 + OUTAGE - 1).map(trade));
        const r = await refillOutcome(source, sink, 'BTC/USD', () => srv.restCalls.length);
        const reach = seekLimit(BUDGET);
        assert.equal(r.calls, BUDGET);
        // Each page back ends at the second of the last one's oldest row (10 trades a second here): 990 new a page.
        const oldest = 10 + OUTAGE - 1_000 - 990 * (reach - 1);
        assert.deepEqual(
          r.ids,
          [...range(0, 9), ...range(oldest, 10 + OUTAGE - 1)].map((i) => 995_000_000 + i),
        );
      });
    } finally {
      await srv.close();
    }
  });
});
