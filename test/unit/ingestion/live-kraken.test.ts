import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { krakenAdapter } from '../../../src/ingestion/live/exchanges.ts';
import { type ExchangeAdapter, LiveTradeSource } from '../../../src/ingestion/live/live-source.ts';
import { TradeSchema } from '../../../src/schemas/trade.ts';
import { until } from '../../support/exchanges/base.ts';
import { krakenRecordedTrades } from '../../support/exchanges/fixtures.ts';
import { KrakenServer } from '../../support/exchanges/kraken.ts';
import { RecordingSink } from '../../support/sink.ts';

const PAIR = 'BTC/USDT';
const real = krakenRecordedTrades(); // 1,000 real trades, ids 10218208..10219207

/** A fresh local Kraken and a connector on it; always torn down. */
async function withKraken(
  fn: (x: { srv: KrakenServer; sink: RecordingSink; source: LiveTradeSource }) => Promise<void>,
  tweak: { heartbeatMs?: number; adapter?: Partial<ExchangeAdapter> } = {},
): Promise<void> {
  const srv = await new KrakenServer().listen();
  srv.heartbeatMs = tweak.heartbeatMs ?? 100;
  const sink = new RecordingSink();
  const source = new LiveTradeSource(
    { ...krakenAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), ...tweak.adapter },
    { pairs: [PAIR], watermarkIntervalMs: 50, backoff: { initialMs: 20, maxMs: 100 } },
  );
  const abort = new AbortController();
  const done = source.run(sink, abort.signal);
  try {
    await fn({ srv, sink, source });
  } finally {
    abort.abort();
    await done;
    await srv.close();
  }
}

describe('Kraken WebSocket v2 connector against a local Kraken server', () => {
  it('subscribes, gets acked, and normalises real trades exactly', () =>
    withKraken(async ({ srv, sink }) => {
      await until(() => srv.received.length > 0, 2_000, 'subscribe');
      assert.deepEqual(srv.received[0], {
        method: 'subscribe',
        params: { channel: 'trade', symbol: [PAIR], snapshot: true },
        req_id: 1,
      });
      await until(() => srv.sockets.size === 1);
      srv.publish(PAIR, real.slice(0, 3));
      await until(() => sink.received.length === 3, 2_000, 'trades');
      const t = sink.received[0]!;
      assert.ok(TradeSchema.safeParse(t).success);
      assert.deepEqual(
        {
          exchange: t.exchange,
          pair: t.pair,
          price: t.price,
          qty: t.qty,
          side: t.side,
          tradeId: t.tradeId,
          tradeTs: t.tradeTs,
        },
        {
          exchange: 'kraken',
          pair: 'BTC/USDT',
          price: 105433.6,
          qty: 0.00027625,
          side: 'buy',
          tradeId: '10218208',
          tradeTs: 1762795433971,
        },
      );
    }));

  it('takes the snapshot of recent trades on subscribe', async () => {
    const srv = await new KrakenServer().listen();
    srv.publish(PAIR, real.slice(0, 80)); // history before anyone connects
    const sink = new RecordingSink();
    const source = new LiveTradeSource(krakenAdapter({ ws: srv.wsUrl, rest: srv.restUrl }), {
      pairs: [PAIR],
    });
    const abort = new AbortController();
    const done = source.run(sink, abort.signal);
    try {
      await until(() => sink.received.length === 50, 2_000, 'snapshot');
      assert.deepEqual(
        sink.ids(PAIR),
        real.slice(30, 80).map((t) => t.id),
      );
    } finally {
      abort.abort();
      await done;
      await srv.close();
    }
  });

  it('turns heartbeats into liveness and watermarks, not trades; watermarks follow the wall clock', () =>
    withKraken(async ({ sink }) => {
      await until(() => sink.watermarks.length >= 3, 2_000, 'watermarks');
      assert.equal(sink.received.length, 0);
      const wm = sink.watermarks;
      assert.ok(wm.every((w) => w.pair === PAIR && w.exchange === 'kraken' && !w.final));
      assert.ok(wm[wm.length - 1]!.ts >= wm[0]!.ts);
      assert.ok(
        Math.abs(wm[wm.length - 1]!.ts - (Date.now() - 2_000)) < 1_000,
        'now minus the 2 s watermark delay',
      );
    }));

  it('recovers over REST what traded while disconnected: complete ids after reconnecting', () =>
    withKraken(async ({ srv, sink, source }) => {
      await until(() => srv.sockets.size === 1);
      srv.publish(PAIR, real.slice(0, 100));
      await until(() => sink.received.length >= 100);
      srv.muted = true; // the network fails: trades happen that the client never sees
      srv.dropAll();
      srv.publish(PAIR, real.slice(100, 400));
      srv.muted = false;
      await until(() => source.stats.reconnects === 1, 3_000, 'reconnect');
      await until(() => sink.ids(PAIR).length >= 400, 3_000, 'refill');
      srv.publish(PAIR, real.slice(400, 450));
      await until(() => sink.ids(PAIR).length === 450, 3_000, 'live again');
      assert.deepEqual(
        sink.ids(PAIR),
        real.slice(0, 450).map((t) => t.id),
      );
      assert.ok(source.stats.recovered >= 300);
      assert.ok(srv.restCalls.some((u) => u.startsWith('/0/public/Trades?pair=XBTUSDT&since=')));
    }));

  it('fills an id gap in the stream over REST, through a rate-limit error', () =>
    withKraken(async ({ srv, sink, source }) => {
      await until(() => srv.sockets.size === 1);
      srv.publish(PAIR, real.slice(0, 10));
      srv.muted = true;
      srv.publish(PAIR, real.slice(10, 20)); // lost frames, connection stays up
      srv.muted = false;
      srv.rateLimitNext = 1; // first REST call: EAPI:Rate limit exceeded
      srv.publish(PAIR, real.slice(20, 30));
      await until(() => sink.ids(PAIR).length === 30, 8_000, 'gap fill');
      assert.deepEqual(
        sink.ids(PAIR),
        real.slice(0, 30).map((t) => t.id),
      );
      assert.equal(source.stats.gaps, 1);
      assert.equal(source.stats.unrecoverable, 0);
      assert.ok(srv.restCalls.length >= 2, 'retried after the rate-limit error');
    }));

  it('dead-letters malformed frames and exchange errors, and keeps running', () =>
    withKraken(async ({ srv, sink }) => {
      await until(() => srv.sockets.size === 1);
      srv.broadcast('{not json');
      srv.broadcast({
        channel: 'trade',
        type: 'update',
        data: [
          {
            symbol: PAIR,
            side: 'buy',
            price: 'NaN',
            qty: 1,
            trade_id: 1,
            timestamp: '2025-11-10T17:23:53.971Z',
          },
        ],
      });
      srv.broadcast({ method: 'subscribe', success: false, error: 'Currency pair not supported', req_id: 9 });
      srv.publish(PAIR, real.slice(500, 501));
      await until(() => sink.received.length === 1 && sink.dead.length >= 3, 2_000, 'rejects');
      assert.match(sink.dead[0]!.reason, /not JSON/);
      assert.match(sink.dead[1]!.reason, /price/);
      assert.equal(sink.dead[2]!.kind, 'exchange-error');
      assert.ok(sink.dead.every((d) => d.origin === 'kraken-ws' && d.payload.length > 0));
    }));

  it('drops a silent connection and reconnects (liveness)', () =>
    withKraken(
      async ({ source }) => {
        await until(() => source.socket.connects >= 3, 3_000, 'reconnects after silence');
      },
      { heartbeatMs: 60_000, adapter: { idleTimeoutMs: 200 } },
    ));
});
