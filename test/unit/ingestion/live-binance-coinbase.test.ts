import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binanceAdapter, coinbaseAdapter } from '../../../src/ingestion/live/exchanges.ts';
import { LiveTradeSource } from '../../../src/ingestion/live/live-source.ts';
import { TradeSchema } from '../../../src/schemas/trade.ts';
import { until } from '../../support/exchanges/base.ts';
import { BinanceServer } from '../../support/exchanges/binance.ts';
import { CoinbaseServer, type CoinbaseTrade } from '../../support/exchanges/coinbase.ts';
import { binanceRecordedEvents } from '../../support/exchanges/fixtures.ts';
import { RecordingSink } from '../../support/sink.ts';

const events = binanceRecordedEvents('BTCUSDT', 600); // real @trade events, contiguous ids

async function run(source: LiveTradeSource, fn: (sink: RecordingSink) => Promise<void>): Promise<void> {
  const sink = new RecordingSink();
  const abort = new AbortController();
  const done = source.run(sink, abort.signal);
  try {
    await fn(sink);
  } finally {
    abort.abort();
    await done;
  }
}

describe('Binance @trade connector against a local Binance server', () => {
  it('subscribes on the combined stream and normalises real events (m=true ⇒ taker sold)', async () => {
    const srv = await new BinanceServer().listen();
    const source = new LiveTradeSource(binanceAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: ['BTC/USDT'],
    });
    try {
      await run(source, async (sink) => {
        await until(() => srv.received.length === 1, 2_000, 'subscribe');
        assert.deepEqual(srv.received[0], { method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 });
        await new Promise((r) => setTimeout(r, 20));
        srv.publish(events.slice(0, 5));
        await until(() => sink.received.length === 5);
        const t = sink.received[0]!;
        const e = events[0]!;
        assert.ok(TradeSchema.safeParse(t).success);
        assert.deepEqual(
          { pair: t.pair, price: t.price, qty: t.qty, side: t.side, tradeId: t.tradeId, tradeTs: t.tradeTs },
          {
            pair: 'BTC/USDT',
            price: Number(e.p),
            qty: Number(e.q),
            side: e.m ? 'sell' : 'buy',
            tradeId: String(e.t),
            tradeTs: e.T,
          },
        );
      });
    } finally {
      await srv.close();
    }
  });

  it('answers server pings and survives; refills a disconnect and an id gap from historicalTrades', async () => {
    const srv = await new BinanceServer().listen();
    srv.pingMs = 30;
    const source = new LiveTradeSource(binanceAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: ['BTC/USDT'],
      backoff: { initialMs: 20, maxMs: 100 },
    });
    try {
      await run(source, async (sink) => {
        await until(() => srv.received.length === 1);
        await new Promise((r) => setTimeout(r, 100)); // a few pings go by
        srv.publish(events.slice(0, 100));
        await until(() => sink.received.length === 100);
        srv.muted = true;
        srv.dropAll();
        srv.publish(events.slice(100, 300)); // while disconnected
        srv.muted = false;
        await until(() => source.stats.reconnects === 1 && srv.received.length === 2, 3_000, 'resubscribed');
        await new Promise((r) => setTimeout(r, 20));
        srv.muted = true;
        srv.publish(events.slice(300, 350)); // lost frames on a live connection
        srv.muted = false;
        srv.publish(events.slice(350, 400));
        const want = events.slice(0, 400).map((e) => Number(e.t));
        await until(() => sink.ids('BTC/USDT').length === 400, 5_000, 'complete');
        assert.deepEqual(sink.ids('BTC/USDT'), want);
        assert.ok(source.stats.recovered >= 250);
        assert.ok(srv.restCalls.some((u) => u.startsWith('/api/v3/historicalTrades?symbol=BTCUSDT&fromId=')));
      });
    } finally {
      await srv.close();
    }
  });

  it('dead-letters malformed and non-trade frames and error replies', async () => {
    const srv = await new BinanceServer().listen();
    const source = new LiveTradeSource(binanceAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: ['BTC/USDT'],
    });
    try {
      await run(source, async (sink) => {
        await until(() => srv.received.length === 1);
        srv.broadcast('garbage');
        srv.broadcast({
          stream: 'btcusdt@trade',
          data: { e: 'trade', s: 'BTCUSDT', t: 5, p: '-1', q: '1', T: 1723161255342, m: true },
        });
        srv.broadcast({ error: { code: 2, msg: 'Invalid request' }, id: 7 });
        await until(() => sink.dead.length === 3, 2_000, 'rejects');
        assert.deepEqual(
          sink.dead.map((d) => d.kind),
          ['parse', 'invalid', 'exchange-error'],
        );
        assert.equal(sink.received.length, 0);
      });
    } finally {
      await srv.close();
    }
  });
});

describe('Coinbase market_trades connector against a local Coinbase server', () => {
  const trade = (i: number, side: 'BUY' | 'SELL' = 'BUY'): CoinbaseTrade => ({
    trade_id: String(995098700 + i),
    product_id: 'BTC-USD',
    price: (68900.5 + i).toFixed(2),
    size: '0.00150000',
    side,
    time: new Date(Date.UTC(2026, 3, 7, 14, 30, 2) + i * 10).toISOString(),
  });

  it('subscribes to market_trades and heartbeats; maps the documented (maker) side to the taker side', async () => {
    const srv = await new CoinbaseServer().listen();
    srv.heartbeatMs = 50;
    const source = new LiveTradeSource(coinbaseAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: ['BTC/USD'],
      watermarkIntervalMs: 50,
    });
    try {
      await run(source, async (sink) => {
        await until(() => srv.received.length === 2, 2_000, 'subscribes');
        assert.deepEqual(srv.received, [
          { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'market_trades' },
          { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'heartbeats' },
        ]);
        await new Promise((r) => setTimeout(r, 150)); // heartbeats only
        assert.equal(sink.received.length, 0);
        srv.publish([trade(0, 'BUY'), trade(1, 'SELL')]);
        await until(() => sink.received.length === 2);
        assert.deepEqual(
          sink.received.map((t) => [t.tradeId, t.price, t.side, t.tradeTs]),
          [
            ['995098700', 68900.5, 'sell', Date.UTC(2026, 3, 7, 14, 30, 2)],
            ['995098701', 68901.5, 'buy', Date.UTC(2026, 3, 7, 14, 30, 2) + 10],
          ],
        );
        assert.ok(sink.watermarks.length > 0);
      });
    } finally {
      await srv.close();
    }
  });

  it('sees a sequence_num jump as lost messages and refills from the recent-trades endpoint', async () => {
    const srv = await new CoinbaseServer().listen();
    srv.heartbeatMs = 10_000;
    const source = new LiveTradeSource(coinbaseAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: ['BTC/USD'],
    });
    try {
      await run(source, async (sink) => {
        await until(() => srv.received.length === 2);
        await new Promise((r) => setTimeout(r, 20));
        srv.publish([trade(0), trade(1)]);
        srv.muted = true;
        srv.publish([trade(2), trade(3)]);
        srv.muted = false;
        srv.publish([trade(4)]);
        await until(() => sink.ids('BTC/USD').length === 5, 3_000, 'refill');
        assert.equal(source.stats.gaps, 1);
        assert.ok(
          srv.restCalls.some((u) => u.startsWith('/api/v3/brokerage/market/products/BTC-USD/ticker?limit=')),
        );
      });
    } finally {
      await srv.close();
    }
  });
});
