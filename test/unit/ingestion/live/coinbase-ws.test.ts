import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CoinbaseWsOptions, CoinbaseWsSource } from '../../../../src/ingestion/live/coinbase-ws.ts';
import { TradeSchema } from '../../../../src/schemas/trade.ts';
import { until } from '../../../support/exchanges/base.ts';
import { CoinbaseServer } from '../../../support/exchanges/coinbase.ts';
import { coinbaseTradesFromRecording } from '../../../support/exchanges/fixtures.ts';
import { FAST_CONNECTOR, LogSink, RefusingSink, running } from '../../../support/exchanges/harness.ts';

const PAIR = 'BTC/USD';
/** Real BTC/USD trades (prices, sizes, times, taker sides) in Coinbase's `market_trades` shape. */
const real = coinbaseTradesFromRecording(2600);
const ids = (lo: number, hi: number) => real.slice(lo, hi).map((t) => Number(t.trade_id));
const takerSide = (i: number) => (real[i]!.side === 'SELL' ? 'buy' : 'sell'); // the recording's side

async function withCoinbase<K extends LogSink = LogSink>(
  fn: (srv: CoinbaseServer, source: CoinbaseWsSource, sink: K) => Promise<void>,
  options: Partial<CoinbaseWsOptions> = {},
  heartbeatMs = 40,
  sink: K = new LogSink() as K,
): Promise<void> {
  const srv = new CoinbaseServer();
  srv.heartbeatMs = heartbeatMs;
  await srv.listen();
  const source = new CoinbaseWsSource({
    pairs: [PAIR],
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    ...FAST_CONNECTOR,
    ...options,
  });
  try {
    await running(source, (sink) => fn(srv, source, sink), sink);
  } finally {
    await srv.close();
  }
}

/** 10 trades streamed, the connection dropped, 2,500 more traded meanwhile (three REST pages of up to 1,000),
 * reconnected and refilled. */
async function outageOf2500(srv: CoinbaseServer, source: CoinbaseWsSource, sink: LogSink): Promise<void> {
  await until(() => source.subscribed.includes(PAIR));
  srv.publish(real.slice(0, 10));
  await until(() => sink.received.length === 10);
  srv.muted = true;
  srv.dropAll();
  srv.publish(real.slice(10, 2510)); // 2,500 trades: three REST pages of up to 1,000
  srv.muted = false;
  await until(() => source.stats.reconnects === 1, 30_000, 'reconnect');
  await until(() => sink.received.length >= 2510, 30_000, 'refill');
}

describe('Coinbase Advanced Trade market_trades connector against a local Coinbase server', () => {
  it('subscribes to market_trades and heartbeats, takes the snapshot, normalises real trades (default: side = maker)', () =>
    withCoinbase(async (srv, source, sink) => {
      srv.history.push(...real.slice(0, 3)); // before the client connects: the snapshot
      await until(() => source.subscribed.includes(PAIR), 2_000, 'subscriptions message');
      assert.deepEqual(srv.received, [
        { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'market_trades' },
        { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'heartbeats' },
      ]);
      await until(() => sink.received.length === 3, 2_000, 'snapshot');
      srv.publish(real.slice(3, 6));
      await until(() => sink.received.length === 6, 2_000, 'update');
      assert.deepEqual(
        sink.received.map(({ receivedTs: _, ...t }) => t),
        real.slice(0, 6).map((r, i) => ({
          v: 1,
          type: 'trade',
          exchange: 'coinbase',
          pair: PAIR,
          price: Number(r.price),
          qty: Number(r.size),
          side: takerSide(i),
          tradeId: r.trade_id,
          tradeTs: Date.parse(r.time),
        })),
      );
      // First recorded trade: 2019-07-01T00:00:03.172Z, taker sell 0.004 at 10749.4 → Coinbase field "BUY".
      assert.deepEqual(
        [sink.received[0]!.price, sink.received[0]!.qty, sink.received[0]!.tradeTs, sink.received[0]!.side],
        [10749.4, 0.004, 1561939203172, 'sell'],
      );
      assert.ok(sink.received.every((t) => TradeSchema.safeParse(t).success));
    }));

  it('with sideMeaning "taker", takes the field as the taker side', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 4));
        await until(() => sink.received.length === 4);
        assert.deepEqual(
          sink.received.map((t) => t.side),
          real.slice(0, 4).map((r) => r.side.toLowerCase()),
        );
      },
      { sideMeaning: 'taker' },
    ));

  it('heartbeats make no trades; watermarks follow the wall clock', () =>
    withCoinbase(async (srv, source, sink) => {
      await until(() => source.subscribed.includes(PAIR));
      await until(
        () => srv.heartbeats >= 5 && sink.watermarks.length >= 5,
        30_000,
        'heartbeats and watermarks',
      );
      // Frames are handled in order: once this trade is in, every heartbeat sent before it has been handled.
      srv.publish(real.slice(0, 1));
      await until(() => sink.received.length === 1, 30_000, 'the trade after the heartbeats');
      assert.deepEqual(sink.ids(PAIR), ids(0, 1), 'the heartbeats made no trades');
      assert.equal(sink.dead.length, 0);
      assert.equal(source.stats.gaps, 0, 'consecutive counters and sequence numbers');
      // Each watermark is the wall clock at its emission minus the 2 s delay (to the millisecond, give or take
      // the time between reading the clock and emitting, however loaded the machine).
      const lags = sink.watermarkLagsBeyond(2_000);
      assert.ok(
        lags.every((l) => l >= 0 && l < 1_000),
        `watermarks trail the wall clock by 2 s: ${lags}`,
      );
    }));

  it('a sequence_num jump (lost update) is refilled from the public market-trades endpoint by time window', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        srv.muted = true;
        srv.publish(real.slice(2, 6)); // lost: the sequence number moves on unseen
        srv.muted = false;
        srv.publish(real.slice(6, 7));
        await until(() => sink.received.length === 7, 2_000, 'refill');
        assert.deepEqual(sink.distinctIds(PAIR), ids(0, 7));
        assert.equal(sink.received.length, 7, 'no duplicates');
        assert.equal(source.stats.gaps, 1);
        const since = Math.floor((Date.parse(real[1]!.time) - 1_000) / 1000);
        assert.match(
          srv.restCalls[0]!,
          new RegExp(
            `^/api/v3/brokerage/market/products/BTC-USD/ticker\\?limit=1000&start=${since}&end=\\d+$`,
          ),
        );
      },
      {},
      10_000, // no heartbeats in this test
    ));

  it('a heartbeat_counter jump means lost messages too; when the sequence also jumps, one refill covers both', () =>
    // Heartbeats by hand (heartbeatMs 0): the test decides which ones are sent, lost or seen, not a timer. Frames
    // are handled in order, so a trade published after heartbeats arrives after they were handled.
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.heartbeat();
        srv.heartbeat(); // counters 1 and 2: the counter is known
        srv.publish(real.slice(0, 1));
        await until(() => sink.received.length === 1, 30_000, 'the first trade');
        assert.equal(source.stats.gaps, 0);
        // 1. A counter jump alone (a heartbeat frame without sequence_num).
        srv.record(real.slice(1, 2));
        srv.sendRaw({ channel: 'heartbeats', events: [{ current_time: '', heartbeat_counter: 1_000 }] });
        await until(() => sink.received.length === 2, 30_000, 'refill after the counter jump');
        assert.deepEqual([source.stats.gaps, source.stats.refills, srv.restCalls.length], [1, 1, 1]);
        srv.heartbeat(); // the server's own counter resumes (3) below 1 000: backwards is not a loss
        srv.publish(real.slice(2, 3));
        await until(() => sink.received.length === 3, 30_000, 'the trade after the resumed heartbeat');
        assert.equal(source.stats.gaps, 1);
        // 2. Heartbeats lost: the next one shows a sequence jump and a counter jump in the same frame.
        srv.muted = true;
        srv.heartbeat(); // lost: its counter and sequence number are used up unseen
        srv.record(real.slice(3, 5));
        srv.muted = false;
        srv.heartbeat();
        await until(() => sink.received.length === 5, 30_000, 'refill after lost heartbeats');
        assert.deepEqual([source.stats.gaps, source.stats.refills, srv.restCalls.length], [3, 2, 2]);
        assert.deepEqual(sink.ids(PAIR), ids(0, 5));
      },
      {},
      0,
    ));

  it('after a dropped connection: resubscribes and refills the outage, paging back through full pages', () =>
    withCoinbase(async (srv, source, sink) => {
      await outageOf2500(srv, source, sink);
      srv.publish(real.slice(2510, 2515));
      await until(() => sink.received.length >= 2515, 2_000, 'live again');
      // Frames are handled in order: once one more trade is in, a duplicate from before it would be in too.
      srv.publish(real.slice(2515, 2516));
      await until(() => sink.distinctIds(PAIR).length === 2516, 30_000, 'the last trade');
      assert.deepEqual(sink.distinctIds(PAIR), ids(0, 2516));
      assert.equal(sink.received.length, 2516, 'no duplicates (pages and the snapshot overlap)');
      assert.equal(srv.messages('type', 'subscribe').length, 4, 'both channels resubscribed');
      assert.ok(srv.restCalls.length >= 3, `${srv.restCalls.length} pages`);
      assert.equal(source.stats.unrecoverable, 0);
    }));

  // The endpoint answers newest first and the refill pages backwards in time: delivered in fetch order, the candle
  // stage's clock would jump to the newest page and dead-letter the two older ones as late.
  it('delivers an outage refill of several pages in time order, oldest page first', () =>
    withCoinbase(async (srv, source, sink) => {
      await outageOf2500(srv, source, sink);
      assert.ok(srv.restCalls.length >= 3, `${srv.restCalls.length} pages`);
      assert.deepEqual(sink.ids(PAIR), ids(0, 2510), 'delivered in the order they traded');
    }));

  // The endpoint pages only backwards (newest first) and a refill must be delivered oldest first: it used to be read
  // whole, every page kept to its end, the connection's frames (every pair's trades and watermarks) waiting behind it.
  it('a long outage refill (10 pages) lets the other pair’s frames through between turns, delivered oldest first', () =>
    withCoinbase(
      async (srv, source, sink) => {
        // BTC trades, four a second, the last 45 minutes: 10 pages of 1,000 while away.
        const start = Date.now() - 45 * 60_000;
        const synthetic = (i: number) => ({
          ...real[i % real.length]!,
          trade_id: String(700_000_000 + i),
          time: new Date(start + i * 250).toISOString(),
        });
        const trades = Array.from({ length: 10_010 }, (_, i) => synthetic(i));
        const ethTrade = (i: number) => ({
          ...real[i]!,
          product_id: 'ETH-USD',
          trade_id: String(800_000_000 + i),
          time: new Date().toISOString(),
        });
        await until(() => ['BTC/USD', 'ETH/USD'].every((p) => source.subscribed.includes(p)));
        srv.publish([...trades.slice(0, 10), ethTrade(0)]);
        await until(() => sink.received.length === 11, 30_000, 'the streamed trades');
        // From the refill's 4th REST call on, an ETH trade streamed; at each BTC call after it, whether it is delivered.
        let calls = 0;
        let ethSent: string | undefined;
        const ethDeliveredAtCall: boolean[] = [];
        const btcDeliveredAtCall: number[] = [];
        srv.onRestCall = (url) => {
          if (!url.includes('/BTC-USD/')) return;
          calls++;
          btcDeliveredAtCall.push(sink.ids(PAIR).length);
          if (ethSent === undefined && calls >= 4) {
            const t = ethTrade(1);
            ethSent = t.trade_id;
            srv.publish([t]);
          }
          if (ethSent !== undefined) ethDeliveredAtCall.push(sink.ids('ETH/USD').includes(Number(ethSent)));
        };
        srv.restDelayMs = 5;
        srv.muted = true;
        srv.dropAll();
        srv.publish(trades.slice(10));
        srv.muted = false;
        await until(() => sink.distinctIds(PAIR).length === 10_010, 60_000, 'the outage refilled');
        assert.deepEqual(
          sink.ids(PAIR),
          trades.map((t) => Number(t.trade_id)),
          'every BTC trade once, in the order they traded',
        );
        assert.equal(source.stats.unrecoverable, 0);
        // Read again forward, a page at a time: each delivered before the next is asked for, none kept to the end.
        const forward = btcDeliveredAtCall.filter((n) => n > 10);
        assert.ok(
          forward.length >= 5 && forward.every((n, i) => i === 0 || n >= forward[i - 1]! + 900),
          `BTC trades delivered at each REST call: ${btcDeliveredAtCall}`,
        );
        const waited = ethDeliveredAtCall.indexOf(true);
        assert.ok(
          waited >= 1 && waited <= 4,
          `the ETH trade delivered after ${waited} more REST calls of the refill (${ethDeliveredAtCall.length} in all: ${ethDeliveredAtCall})`,
        );
      },
      { pairs: ['BTC/USD', 'ETH/USD'] },
    ));

  // A refill read in turns ends where its window began (when it started): messages lost while it goes on (a
  // sequence_num jump) are after that, and their frames were never held.
  it('messages lost while a long refill goes on are refilled after it, before the trades held meanwhile', () =>
    withCoinbase(async (srv, source, sink) => {
      const start = Date.now() - 30 * 60_000;
      const outage = Array.from({ length: 4_010 }, (_, i) => ({
        ...real[i % real.length]!,
        trade_id: String(700_000_000 + i),
        time: new Date(start + i * 250).toISOString(),
      }));
      const now = (i: number) => ({
        ...real[i]!,
        trade_id: String(700_100_000 + i),
        time: new Date().toISOString(),
      });
      const lost = [now(0), now(1), now(2)]; // ids a little after the outage's, as Coinbase numbers them
      const streamed = now(3);
      await until(() => source.subscribed.includes(PAIR));
      srv.publish(outage.slice(0, 10));
      await until(() => sink.received.length === 10, 30_000, 'the streamed trades');
      let calls = 0;
      srv.onRestCall = () => {
        if (++calls !== 2) return;
        srv.muted = true;
        srv.publish(lost); // lost: the sequence number moves on unseen
        srv.muted = false;
        srv.publish([streamed]); // its sequence_num jump: messages lost, while the refill goes on
      };
      srv.muted = true;
      srv.dropAll();
      srv.publish(outage.slice(10));
      srv.muted = false;
      await until(() => sink.ids(PAIR).includes(Number(streamed.trade_id)), 30_000, 'the streamed trade');
      assert.deepEqual(
        sink.ids(PAIR),
        [...outage, ...lost, streamed].map((t) => Number(t.trade_id)),
        'every trade once, in the order they traded',
      );
      assert.equal(source.stats.unrecoverable, 0);
    }));

  // Read forward, what a failed refill delivered is its oldest part: the hole left is what came after it.
  it('a long refill failing on its way forward leaves the rest as a hole, asked for again from where it stopped', () =>
    withCoinbase(
      async (srv, source, sink) => {
        const start = Date.now() - 30 * 60_000;
        const outage = Array.from({ length: 4_010 }, (_, i) => ({
          ...real[i % real.length]!,
          trade_id: String(700_000_000 + i),
          time: new Date(start + i * 250).toISOString(),
        }));
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(outage.slice(0, 10));
        await until(() => sink.received.length === 10, 30_000, 'the streamed trades');
        // The REST API fails once, at the first call after the oldest page was delivered.
        let failedAt: number | undefined;
        let newestDelivered = 0;
        srv.onRestCall = () => {
          if (failedAt === undefined && sink.ids(PAIR).length > 10) {
            failedAt = srv.restCalls.length;
            srv.failNext = 1;
            newestDelivered = Math.max(...sink.received.map((t) => t.tradeTs));
          }
        };
        srv.muted = true;
        srv.dropAll();
        srv.publish(outage.slice(10));
        srv.muted = false;
        await until(() => sink.distinctIds(PAIR).length === 4_010, 30_000, 'the outage refilled, at last');
        assert.ok(failedAt !== undefined);
        assert.equal(sink.received.length, 4_010, 'no duplicates');
        assert.equal(source.stats.holesRefilled, 1);
        // The hole asked for again from the newest trade delivered before the failure, not the outage's start.
        const retry = new URL(srv.restCalls[failedAt]!, 'http://x').searchParams;
        const outageStart = Math.floor((Date.parse(outage[9]!.time) - 1_000) / 1000);
        assert.ok(
          newestDelivered > Date.parse(outage[9]!.time) + 5_000,
          'a page delivered before the failure',
        );
        assert.deepEqual(
          [Number(retry.get('start')), outageStart],
          [Math.floor((newestDelivered - 1_000) / 1000), outageStart],
          srv.restCalls[failedAt],
        );
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 5 } },
    ));

  // Paging backwards, the refill stops at a page that is not full or reaches back before its window: a full page of
  // rows that all failed to parse had no oldest trade, and was taken for the end — the older pages never asked for.
  it('a refill page of 1,000 rows that all fail to parse is gone past by their times, not taken for the end', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        srv.muted = true; // 1,500 lost updates, the newest 1,000 with a malformed price: the first page has no trade
        srv.publish(real.slice(2, 502));
        srv.publish(real.slice(502, 1502).map((t) => ({ ...t, price: 'not a price' })));
        srv.muted = false;
        srv.publish(real.slice(1502, 1503)); // its sequence_num jump starts the refill
        srv.publish(real.slice(1503, 1504)); // frames are handled in order: once this is in, the refill is done
        await until(() => sink.ids(PAIR).includes(ids(1503, 1504)[0]!), 30_000, 'a later trade');
        assert.deepEqual(
          sink.ids(PAIR),
          [...ids(0, 502), ...ids(1502, 1504)],
          'the older, good page refilled',
        );
        // Each bad row dead-lettered (those of the second two pages share, twice: rows are not deduplicated).
        const dead = new Set(sink.dead.filter((d) => d.origin === 'coinbase-rest').map((d) => d.payload));
        assert.equal(dead.size, 1000, 'every malformed row dead-lettered');
        assert.equal(source.stats.unrecoverable, 0);
      },
      {},
      10_000, // no heartbeats: only the sequence_num jump reveals the loss
    ));

  // Coinbase's endpoint keeps recent trades only: a page thrown away with the failure of the next is lost for good.
  it('a refill whose second page fails for good still delivers the first page, and counts the refill incomplete', () =>
    withCoinbase(
      async (srv, source, sink) => {
        let calls = 0;
        srv.onRestCall = () => {
          if (++calls === 2) srv.failNext = 1_000; // HTTP 502 from the second page on, longer than the retries last
        };
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        srv.muted = true;
        srv.publish(real.slice(2, 1502)); // 1,500 lost updates: two pages
        srv.muted = false;
        srv.publish(real.slice(1502, 1503)); // its sequence_num jump starts the refill
        await until(() => source.stats.unrecoverable > 0, 10_000, 'the refill to end');
        // Frames are handled in order: once a later trade is in, the refill and the frame that started it are done.
        srv.publish(real.slice(1503, 1504));
        await until(() => sink.ids(PAIR).includes(ids(1503, 1504)[0]!), 30_000, 'a later trade');
        // The first page: the newest 1,000 of the window (the last of them is also the trade that revealed the gap).
        assert.deepEqual(sink.ids(PAIR), [...ids(0, 2), ...ids(503, 1504)]);
        assert.equal(source.stats.recovered, 1000);
        assert.equal(source.stats.unrecoverable, 1, 'the rest of the window: how many is unknown');
        assert.ok(calls >= 2, `${calls} REST calls`);
      },
      { restRetries: 1 },
      10_000, // no heartbeats: only the sequence_num jump reveals the loss
    ));

  // A refill that fails while the REST API is down used to leave its hole for good, the stream going on past it.
  it('a hole whose refill failed (REST down) is refilled later, with back-off, while the stream goes on', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        srv.failNext = 1_000; // the REST API down: HTTP 502 on every call
        srv.muted = true;
        srv.publish(real.slice(2, 6)); // lost: the sequence number moves on unseen
        srv.muted = false;
        srv.publish(real.slice(6, 7)); // its sequence_num jump starts the refill, which fails
        await until(() => source.stats.unrecoverable === 1, 10_000, 'the refill to fail');
        srv.publish(real.slice(7, 8));
        await until(() => sink.ids(PAIR).includes(ids(7, 8)[0]!), 10_000, 'the stream to go on');
        assert.deepEqual(sink.ids(PAIR), [...ids(0, 2), ...ids(6, 8)], 'the hole is still open');
        const failedCalls = srv.restCalls.length;
        srv.failNext = 0; // the REST API back
        await until(() => sink.distinctIds(PAIR).length === 8, 30_000, 'the hole refilled');
        assert.deepEqual(sink.distinctIds(PAIR), ids(0, 8));
        assert.deepEqual(sink.ids(PAIR).slice(4), ids(2, 6), 'the refilled trades come after the stream');
        assert.equal(sink.received.length, 8, 'no duplicates');
        assert.ok(srv.restCalls.length > failedCalls, 'asked again');
        assert.equal(source.stats.holesRefilled, 1);
        // The retry asked for the hole's window only: from its start to when the failed refill began.
        const since = Math.floor((Date.parse(real[1]!.time) - 1_000) / 1000);
        assert.match(srv.restCalls.at(-1)!, new RegExp(`start=${since}&end=\\d+$`));
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 5 } },
      40,
    ));

  // A refill's trades were marked seen before the sink took them: refused (the bus away), the hole's retry fetched them
  // again and dropped them as duplicates — lost, and the hole counted refilled.
  it('a refill the sink refuses is taken back: its window asked for again, every trade delivered once', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        const lost = String(real[2]!.trade_id);
        sink.refuseOnce = (batch) => batch.some((t) => t.tradeId === lost);
        srv.muted = true;
        srv.publish(real.slice(2, 6)); // lost: the sequence number moves on unseen
        srv.muted = false;
        srv.publish(real.slice(6, 7)); // its sequence_num jump starts the refill, which the sink refuses
        await until(() => source.stats.holesRefilled === 1, 30_000, 'the hole asked for again');
        srv.publish(real.slice(7, 8));
        await until(() => sink.ids(PAIR).includes(ids(7, 8)[0]!), 30_000, 'still streaming');
        assert.equal(sink.refused.length, 1, 'the sink refused one batch');
        assert.deepEqual(sink.distinctIds(PAIR), ids(0, 8), 'every trade delivered');
        assert.equal(sink.received.length, 8, 'each once');
        assert.equal(source.stats.sinkRefusals, 1);
        // The retry asked for the whole window: nothing of the refused refill counted as fetched.
        const since = Math.floor((Date.parse(real[1]!.time) - 1_000) / 1000);
        assert.match(srv.restCalls.at(-1)!, new RegExp(`start=${since}&end=\\d+$`));
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 5 } },
      10_000, // no heartbeats: only the sequence_num jump reveals the loss
      new RefusingSink(),
    ));

  // Refused streamed trades were taken back, but nothing asked for them again until the pair's next refill (a reconnect,
  // a sequence gap): Coinbase ids are not checked for gaps and the frame's sequence number was already accepted.
  it('streamed trades the sink refuses open a hole for their window: fetched again, every trade delivered once', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        const refusedId = String(real[2]!.trade_id);
        sink.refuseOnce = (batch) => batch.some((t) => t.tradeId === refusedId);
        srv.publish(real.slice(2, 5)); // one frame: refused by the sink
        srv.publish(real.slice(5, 7)); // the stream goes on, no sequence gap
        await until(
          () => source.stats.holesRefilled === 1,
          30_000,
          'the refused trades’ window asked for again',
        );
        await until(() => sink.distinctIds(PAIR).length === 7, 30_000, 'every trade delivered');
        srv.publish(real.slice(7, 8));
        await until(() => sink.ids(PAIR).includes(ids(7, 8)[0]!), 30_000, 'still streaming');
        assert.equal(sink.refused.length, 1);
        assert.deepEqual(
          sink.refused[0]!.map((t) => Number(t.tradeId)),
          ids(2, 5),
          'the sink refused that frame',
        );
        assert.deepEqual(sink.distinctIds(PAIR), ids(0, 8), 'every trade delivered');
        assert.equal(sink.received.length, 8, 'each once');
        assert.equal(source.stats.recovered, 3, 'the refused trades came again from REST (the hole)');
        assert.equal(source.stats.sinkRefusals, 1);
        assert.equal(source.stats.gaps, 0, 'no sequence gap: only the hole asked for them');
        assert.equal(source.stats.reconnects, 0);
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 5 } },
      10_000, // no heartbeats: nothing but the hole asks for the refused trades
      new RefusingSink(),
    ));

  it('a hole is asked for again a bounded number of times, then given up and said', () =>
    withCoinbase(
      async (srv, source, sink) => {
        await until(() => source.subscribed.includes(PAIR));
        srv.publish(real.slice(0, 2));
        await until(() => sink.received.length === 2);
        srv.failNext = 1_000_000; // down for good
        srv.muted = true;
        srv.publish(real.slice(2, 6));
        srv.muted = false;
        srv.publish(real.slice(6, 7));
        await until(() => source.stats.holesAbandoned === 1, 30_000, 'the hole given up');
        const calls = srv.restCalls.length;
        assert.equal(calls, 1 + 3, 'the failed refill, then 3 attempts');
        // Frames are handled in order: once a later trade is in, any further attempt would have been made.
        srv.publish(real.slice(7, 8));
        await until(() => sink.ids(PAIR).includes(ids(7, 8)[0]!), 10_000, 'a later trade');
        assert.equal(srv.restCalls.length, calls, 'not asked again');
        assert.deepEqual(sink.ids(PAIR), [...ids(0, 2), ...ids(6, 8)]);
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 5, maxMs: 20 }, attempts: 3 } },
      40,
    ));

  it('a refilled REST row with a malformed decimal (" 1 ", "0x1A") is dead-lettered with the reason, not taken', () =>
    withCoinbase(async (srv, source, sink) => {
      await until(() => source.subscribed.includes(PAIR));
      srv.publish(real.slice(0, 2));
      await until(() => sink.received.length === 2);
      srv.muted = true; // only REST sees these
      srv.publish([
        real[2]!,
        { ...real[3]!, price: ` ${real[3]!.price} ` }, // Number() read it as the price
        { ...real[4]!, size: '0x1A' }, // Number() read it as 26
        real[5]!,
      ]);
      srv.muted = false;
      srv.publish(real.slice(6, 7)); // its sequence_num jump starts the refill
      await until(() => sink.ids(PAIR).includes(ids(6, 7)[0]!), 30_000, 'the trade after the loss');
      assert.deepEqual(sink.distinctIds(PAIR), [...ids(0, 3), ...ids(5, 7)]);
      const rest = sink.dead.filter((d) => d.origin === 'coinbase-rest');
      assert.equal(rest.length, 2, 'one dead letter per malformed row');
      // Newest first, as the endpoint answers.
      assert.match(rest[0]!.reason, /"size":"0x1A"/);
      assert.match(rest[1]!.reason, /"price":" \d/);
    }));

  it('dead-letters malformed frames and errors, and keeps running', () =>
    withCoinbase(async (srv, source, sink) => {
      await until(() => source.subscribed.includes(PAIR));
      const env = (events: unknown) => ({ channel: 'market_trades', client_id: '', timestamp: '', events });
      srv.sendRaw('\u0000\u00ff binary junk');
      srv.sendRaw(env([{ type: 'update', trades: [{ ...real[0]!, price: 'Infinity' }] }]));
      srv.sendRaw(env([{ type: 'update', trades: [{ ...real[0]!, size: '-0.5' }] }]));
      srv.sendRaw(env([{ type: 'update', trades: [{ ...real[0]!, side: 'HOLD' }] }]));
      srv.sendRaw(env([{ type: 'update', trades: [{ ...real[0]!, time: '2019-07-01 00:00:03' }] }]));
      srv.sendRaw(env('not a list'));
      srv.sendRaw({ channel: 'level2', events: [] });
      srv.sendRaw({ type: 'error', message: 'Failure to subscribe' });
      srv.publish(real.slice(0, 1));
      await until(() => sink.dead.length === 8 && sink.received.length === 1, 2_000, 'rejects');
      assert.deepEqual(
        sink.dead.map((d) => d.kind),
        ['parse', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'unknown', 'exchange-error'],
      );
      const r = sink.dead.map((d) => d.reason);
      assert.match(r[1]!, /price/);
      assert.match(r[2]!, /qty/);
      assert.match(r[3]!, /side/);
      assert.match(r[4]!, /tradeTs/);
      assert.match(r[5]!, /without an events array/);
      assert.match(r[6]!, /unexpected channel "level2"/);
      assert.equal(sink.received[0]!.tradeId, real[0]!.trade_id);
    }));
});
