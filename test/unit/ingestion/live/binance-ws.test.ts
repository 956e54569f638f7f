import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BinanceWsOptions, BinanceWsSource } from '../../../../src/ingestion/live/binance-ws.ts';
import { TradeSchema } from '../../../../src/schemas/trade.ts';
import { until } from '../../../support/exchanges/base.ts';
import { BinanceServer } from '../../../support/exchanges/binance.ts';
import { binanceRecordedEvents } from '../../../support/exchanges/fixtures.ts';
import { FAST_CONNECTOR, type LogSink, running } from '../../../support/exchanges/harness.ts';

const btc = binanceRecordedEvents('BTCUSDT', 1500); // real @trade events, contiguous ids
const eth = binanceRecordedEvents('ETHUSDT', 300);
const idsOf = (events: Record<string, unknown>[]) => events.map((e) => Number(e.t));

/** Waits for `cond`, an ETH trade published every 20 ms meanwhile (the frames that give the connector its turns). */
async function whileFraming(srv: BinanceServer, cond: () => boolean, what: string): Promise<void> {
  let i = 0;
  const timer = setInterval(() => srv.publish([eth[i++ % eth.length]!]), 20);
  try {
    await until(cond, 30_000, what);
  } finally {
    clearInterval(timer);
  }
}

async function withBinance(
  fn: (srv: BinanceServer, source: BinanceWsSource, sink: LogSink) => Promise<void>,
  options: Partial<BinanceWsOptions> = {},
  pingMs = 20_000,
): Promise<void> {
  const srv = new BinanceServer();
  srv.pingMs = pingMs;
  await srv.listen();
  const source = new BinanceWsSource({
    pairs: ['BTC/USDT', 'ETH/USDT'],
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    ...FAST_CONNECTOR,
    ...options,
  });
  try {
    await running(source, (sink) => fn(srv, source, sink));
  } finally {
    await srv.close();
  }
}

/**
 * Ten BTC trades streamed, the REST API made to fail for good, then ten trades the stream never brings and the one
 * after them: an id gap whose refill fails (counted unrecoverable) while the stream goes on. The REST calls so far.
 */
async function idGapWithRestDown(
  srv: BinanceServer,
  source: BinanceWsSource,
  sink: LogSink,
): Promise<number> {
  await until(() => source.subscribed.length === 2);
  srv.publish(btc.slice(0, 10));
  await until(() => sink.received.length === 10);
  srv.failNext = 1_000_000; // the REST API down
  srv.muted = true;
  srv.publish(btc.slice(10, 20));
  srv.muted = false;
  srv.publish(btc.slice(20, 21)); // the id gap: its refill fails
  await until(() => sink.ids('BTC/USDT').includes(Number(btc[20]!.t)), 30_000, 'the stream to go on');
  assert.equal(source.stats.unrecoverable, 10);
  return srv.restCalls.length;
}

describe('Binance @trade connector against a local Binance server', () => {
  it('subscribes on the combined stream, is acknowledged, and normalises real events (m=true ⇒ taker sold)', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2, 2_000, 'SUBSCRIBE acknowledged');
      assert.deepEqual(srv.received, [
        { method: 'SUBSCRIBE', params: ['btcusdt@trade', 'ethusdt@trade'], id: 1 },
      ]);
      // A stretch with takers on both sides (the capture opens with 40 sells).
      const b = btc.findIndex((e) => e.m === false) - 2;
      const mixed = btc.slice(b, b + 5);
      srv.publish([...mixed, ...eth.slice(0, 5)]);
      await until(() => sink.received.length === 10);
      const expected = (e: Record<string, unknown>, pair: string) => ({
        v: 1,
        type: 'trade',
        exchange: 'binance',
        pair,
        price: Number(e.p),
        qty: Number(e.q),
        side: e.m ? 'sell' : 'buy',
        tradeId: String(e.t),
        tradeTs: e.T,
      });
      assert.deepEqual(
        sink.received.map(({ receivedTs: _, ...t }) => t),
        [
          ...mixed.map((e) => expected(e, 'BTC/USDT')),
          ...eth.slice(0, 5).map((e) => expected(e, 'ETH/USDT')),
        ],
      );
      // The capture's first event, as the README quotes it: t 3735683259, p "61837.63000000",
      // q "0.02000000", T 1723161255342, m true.
      srv.publish(btc.slice(0, 1));
      await until(() => sink.received.length === 11);
      const first = sink.received[10]!;
      assert.deepEqual(
        [first.tradeId, first.price, first.qty, first.tradeTs, first.side],
        ['3735683259', 61837.63, 0.02, 1723161255342, 'sell'],
      );
      assert.ok(sink.received.every((t) => TradeSchema.safeParse(t).success));
      assert.ok(sink.received.some((t) => t.side === 'buy') && sink.received.some((t) => t.side === 'sell'));
    }));

  it('reads trade times in µs when the URL asks for them (timeUnit=MICROSECOND), as ms otherwise', async () => {
    const srv = await new BinanceServer().listen();
    const source = new BinanceWsSource({
      pairs: ['BTC/USDT'],
      wsUrl: `${srv.wsUrl}?timeUnit=MICROSECOND`,
      restUrl: srv.restUrl,
      ...FAST_CONNECTOR,
    });
    try {
      await running(source, async (sink) => {
        await until(() => source.subscribed.length === 1, 30_000, 'SUBSCRIBE acknowledged');
        srv.publish(btc.slice(0, 3));
        await until(() => sink.received.length + sink.dead.length >= 3, 30_000, 'the trades');
        // Before, T was taken as ms: 1,000 times too far ahead, every trade dead-lettered as implausible.
        assert.deepEqual(sink.dead, []);
        assert.deepEqual(
          sink.received.map((t) => t.tradeTs),
          btc.slice(0, 3).map((e) => e.T),
        );
      });
    } finally {
      await srv.close();
    }
  });

  it('answers the server’s ping frames with pongs; pings keep it alive and make no trades', () =>
    withBinance(
      async (srv, source, sink) => {
        // 100 pings every 20 ms: two seconds, twice the idle timeout (1 s: a busy machine's pauses stay below it).
        await until(() => srv.pongs >= 100, 30_000, 'pongs');
        assert.equal(sink.received.length, 0);
        assert.equal(sink.dead.length, 0);
        assert.equal(source.socket.connects, 1, 'pings count as life (idle timeout 1 s)');
        assert.ok(
          sink.watermarks.some((w) => w.pair === 'BTC/USDT') &&
            sink.watermarks.some((w) => w.pair === 'ETH/USDT'),
        );
      },
      { idleTimeoutMs: 1_000 },
      20,
    ));

  it('after a dropped connection: resubscribes and refills both pairs by id from historicalTrades, without duplicates', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish([...btc.slice(0, 100), ...eth.slice(0, 50)]);
      await until(() => sink.received.length === 150);
      srv.muted = true;
      srv.dropAll();
      srv.publish([...btc.slice(100, 1300), ...eth.slice(50, 200)]); // while the client is away: > 1 REST page
      srv.muted = false;
      await until(
        () => source.stats.reconnects === 1 && source.subscribed.length === 2,
        3_000,
        'resubscribed',
      );
      await until(() => sink.received.length === 1500, 3_000, 'refilled');
      srv.publish([...btc.slice(1300, 1310), ...eth.slice(200, 210)]);
      await until(() => sink.received.length === 1520, 3_000, 'live again');
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf(btc.slice(0, 1310)));
      assert.deepEqual(sink.ids('ETH/USDT'), idsOf(eth.slice(0, 210)));
      assert.equal(srv.messages('method', 'SUBSCRIBE').length, 2);
      assert.equal(source.stats.recovered, 1350);
      const calls = srv.restCalls.filter((u) => u.startsWith('/api/v3/historicalTrades?symbol=BTCUSDT'));
      assert.deepEqual(calls, [
        `/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${Number(btc[99]!.t) + 1}&limit=1000`,
        `/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${Number(btc[1099]!.t) + 1}&limit=1000`,
      ]);
    }));

  // A refill by id kept every page to its end and held the connection's frames for all of them: each page is delivered
  // as it comes now, a few pages a turn, the frames handled in between (as Kraken's).
  it('a long refill by id (15 pages) is delivered page by page, and lets the other pair’s frames through between turns', () =>
    withBinance(async (srv, source, sink) => {
      // BTC trades of consecutive ids, an hour old, four a millisecond: 15 pages of 1,000 while away.
      const start = Date.now() - 3_600_000;
      const synthetic = (i: number) => ({
        e: 'trade',
        E: start + Math.floor(i / 4),
        s: 'BTCUSDT',
        t: 50_000_000 + i,
        p: '61837.63000000',
        q: '0.01000000',
        T: start + Math.floor(i / 4),
        m: i % 2 === 0,
        M: true,
      });
      const trades = Array.from({ length: 15_012 }, (_, i) => synthetic(i));
      const [during, after] = trades.slice(15_010);
      await until(() => source.subscribed.length === 2);
      srv.publish([...trades.slice(0, 10), ...eth.slice(0, 5)]);
      await until(() => sink.received.length === 15, 30_000, 'the streamed trades');
      // Once the refill is under way (its 4th BTC call; the new connection's SUBSCRIBE was sent before it began), an ETH
      // trade and a BTC one (streamed, not listed by REST yet: only the stream brings it); from then on, at each BTC
      // call, whether the ETH trade has been delivered yet; at every call, whether the page before it has been.
      const ethNow: Record<string, unknown> = { ...eth[5]!, T: Date.now(), E: Date.now() };
      let calls = 0;
      const ethDeliveredAtCall: boolean[] = [];
      const pagesHeldAtCall: number[] = [];
      srv.onRestCall = (url) => {
        if (!url.includes('symbol=BTCUSDT')) return;
        calls++;
        const from = Number(new URL(url, 'http://x').searchParams.get('fromId'));
        const delivered = new Set(sink.ids('BTC/USDT'));
        // The page before this one ends at from - 1: delivered by now unless pages are kept.
        if (calls > 1 && !delivered.has(from - 1)) pagesHeldAtCall.push(calls);
        if (ethDeliveredAtCall.length > 0 || calls >= 4) {
          if (ethDeliveredAtCall.length === 0) {
            srv.publish([ethNow]);
            srv.restLag = 1;
            srv.publish([during!]);
          }
          ethDeliveredAtCall.push(sink.ids('ETH/USDT').includes(Number(ethNow.t)));
        }
      };
      srv.restDelayMs = 5;
      srv.muted = true;
      srv.dropAll();
      srv.publish(trades.slice(10, 15_010));
      srv.muted = false;
      await until(() => sink.distinctIds('BTC/USDT').length === 15_011, 60_000, 'the outage refilled');
      srv.restLag = 0;
      srv.publish([after!]);
      await until(() => sink.ids('BTC/USDT').includes(Number(after!.t)), 30_000, 'live again');
      assert.deepEqual(
        sink.ids('BTC/USDT'),
        idsOf(trades),
        'the refilled pair: every id once, in order (the trade streamed during its refill after it)',
      );
      assert.equal(source.stats.unrecoverable, 0);
      assert.deepEqual(pagesHeldAtCall, [], 'REST calls made with the page before still held');
      const waited = ethDeliveredAtCall.indexOf(true);
      assert.ok(
        waited >= 1 && waited <= 4,
        `the ETH trade delivered after ${waited} more REST calls of the refill (${ethDeliveredAtCall.length} in all)`,
      );
      // ETH's watermarks moved on during the refill: between its first and last refilled trades' deliveries.
      const first = sink.events.findIndex(
        (e) => e.kind === 'trades' && e.trades.some((t) => t.tradeId === String(trades[10]!.t)),
      );
      const last = sink.events.findIndex(
        (e) => e.kind === 'trades' && e.trades.some((t) => t.tradeId === String(trades[15_009]!.t)),
      );
      const ethMarks = sink.events
        .slice(first, last)
        .flatMap((e) => (e.kind === 'watermark' && e.wm.pair === 'ETH/USDT' ? [e.wm.ts] : []));
      assert.ok(
        ethMarks.length >= 2 && ethMarks.at(-1)! > ethMarks[0]!,
        `ETH watermarks during the refill: ${JSON.stringify(ethMarks)}`,
      );
    }));

  // With no trade of ETH yet there is no id to page forward from: the refill pages backwards from the newest trades,
  // and delivered in fetch order the newest page would come first (the candle stage would call the older one late).
  it('refills an outage before a pair’s first trade backwards from the newest, but delivers it oldest first', () =>
    withBinance(async (srv, source, sink) => {
      // ETH traded before the client started (REST has it; the refill stops paging there) and, 1,200 times, during
      // the outage — stamped now, after the pair's last watermark, where the refill looks.
      srv.history.set('ETHUSDT', eth.slice(0, 100));
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      await until(() => sink.received.length === 10 && sink.watermarks.some((w) => w.pair === 'ETH/USDT'));
      srv.muted = true;
      srv.dropAll();
      const start = Date.now();
      const during = binanceRecordedEvents('ETHUSDT', 1300)
        .slice(100)
        .map((e, i) => ({ ...e, T: start + Math.floor(i / 4) })); // four trades a millisecond
      srv.publish(during);
      srv.muted = false;
      await until(() => source.stats.reconnects === 1, 30_000, 'reconnect');
      await until(() => sink.ids('ETH/USDT').length === 1200, 5_000, 'refilled');
      const calls = srv.restCalls.filter((u) => u.startsWith('/api/v3/historicalTrades?symbol=ETHUSDT'));
      assert.ok(calls.length >= 2, `paged backwards: ${JSON.stringify(calls)}`);
      assert.deepEqual(sink.ids('ETH/USDT'), idsOf(during), 'delivered in the order they traded');
    }));

  // Paged backwards and delivered oldest first, it used to be read whole, every page kept to its end, the
  // connection's frames (every pair's trades and watermarks) waiting behind it.
  it('a long refill before a pair’s first trade (12 pages) lets the other pair’s frames through between turns', () =>
    withBinance(async (srv, source, sink) => {
      srv.history.set('ETHUSDT', eth.slice(0, 100));
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      await until(() => sink.received.length === 10 && sink.watermarks.some((w) => w.pair === 'ETH/USDT'));
      const start = Date.now();
      const during = Array.from({ length: 12_000 }, (_, i) => ({
        ...eth[i % eth.length]!,
        t: Number(eth[99]!.t) + 1 + i,
        T: start + Math.floor(i / 4), // four trades a millisecond
      }));
      // From the refill's 4th ETH call on, a BTC trade streamed; at each ETH call after it, whether it is delivered.
      let calls = 0;
      let btcSent = false;
      const btcDeliveredAtCall: boolean[] = [];
      srv.onRestCall = (url) => {
        if (!url.includes('symbol=ETHUSDT')) return;
        calls++;
        if (!btcSent && calls >= 4) {
          btcSent = true;
          srv.publish(btc.slice(10, 11));
        }
        if (btcSent) btcDeliveredAtCall.push(sink.ids('BTC/USDT').includes(Number(btc[10]!.t)));
      };
      srv.restDelayMs = 5;
      srv.muted = true;
      srv.dropAll();
      srv.publish(during);
      srv.muted = false;
      await until(() => sink.distinctIds('ETH/USDT').length === 12_000, 60_000, 'the outage refilled');
      assert.deepEqual(sink.ids('ETH/USDT'), idsOf(during), 'every id once, in the order they traded');
      assert.equal(source.stats.unrecoverable, 0);
      const waited = btcDeliveredAtCall.indexOf(true);
      assert.ok(
        waited >= 1 && waited <= 4,
        `the BTC trade delivered after ${waited} more REST calls of the refill (${btcDeliveredAtCall.length} in all: ${btcDeliveredAtCall})`,
      );
    }));

  // Paging backwards, the refill stops at a page whose oldest trade is before its window: a page of rows that all
  // failed to parse has no oldest trade, and was taken for the end — the older pages never asked for.
  it('a backward refill page of 1,000 rows that all fail to parse is gone past, not taken for the end', () =>
    withBinance(async (srv, source, sink) => {
      srv.history.set('ETHUSDT', eth.slice(0, 100));
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      await until(() => sink.received.length === 10 && sink.watermarks.some((w) => w.pair === 'ETH/USDT'));
      srv.muted = true;
      srv.dropAll();
      const start = Date.now();
      const during = binanceRecordedEvents('ETHUSDT', 1600)
        .slice(100)
        .map((e, i) => ({ ...e, T: start + Math.floor(i / 4), ...(i >= 500 ? { p: 'not a price' } : {}) }));
      srv.publish(during); // the newest 1,000 malformed: the first page back has no trade
      srv.muted = false;
      await until(() => source.stats.reconnects === 1, 30_000, 'reconnect');
      await until(
        () => sink.dead.filter((d) => d.origin === 'binance-rest').length >= 1000,
        30_000,
        'the malformed rows dead-lettered',
      );
      srv.publish(btc.slice(10, 11)); // frames are handled in order: once this is in, the refill is done
      await until(() => sink.ids('BTC/USDT').includes(Number(btc[10]!.t)), 30_000, 'the stream to go on');
      assert.deepEqual(sink.ids('ETH/USDT'), idsOf(during.slice(0, 500)), 'the older, good page refilled');
      assert.equal(
        sink.dead.filter((d) => d.origin === 'binance-rest').length,
        1000,
        'one dead letter per row',
      );
    }));

  it('fills an id gap on a live connection, retrying through HTTP 429', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      srv.muted = true;
      srv.publish(btc.slice(10, 60));
      srv.muted = false;
      srv.rateLimitNext = 2;
      srv.publish(btc.slice(60, 70));
      await until(() => sink.received.length === 70, 3_000, 'gap filled');
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf(btc.slice(0, 70)));
      assert.equal(source.stats.gaps, 1);
      assert.equal(source.stats.unrecoverable, 0);
      assert.equal(srv.restCalls.length, 3, 'two 429s, then the page');
    }));

  it('a gap refill told to retry after an hour (Retry-After) gives up at once: the stream goes on, the gap counted', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      srv.muted = true;
      srv.publish(btc.slice(10, 60));
      srv.muted = false;
      srv.retryAfterSec = 3600; // an IP ban (418) or a long rate limit
      srv.rateLimitNext = 1;
      srv.publish(btc.slice(60, 70));
      // Before, the refill slept the hour out, every frame of the connection queued behind it (the stream stalled,
      // the watermarks of every pair held, memory growing).
      await until(() => sink.received.length === 20, 30_000, 'the trades after the gap');
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), ...btc.slice(60, 70)]));
      assert.equal(source.stats.unrecoverable, 50, 'the gap stays open, counted');
      assert.equal(srv.restCalls.length, 1, 'not asked again before the hour is out');
      srv.publish(eth.slice(0, 3));
      await until(() => sink.received.length === 23, 30_000, 'live after the refill gave up');
    }));

  it('a REST answer over the size limit is refused (not read whole, not used): the gap counted, the stream goes on', () =>
    withBinance(
      async (srv, source, sink) => {
        await until(() => source.subscribed.length === 2);
        srv.publish(btc.slice(0, 10));
        srv.muted = true;
        srv.publish(btc.slice(10, 60));
        srv.muted = false;
        srv.padNextBodies = 1;
        srv.padBytes = 17 * 1024 * 1024; // a page is ~150 KB: 17 MiB is a broken upstream (read whole, it could be GBs)
        srv.publish(btc.slice(60, 70));
        const last = Number(btc[69]!.t);
        await until(() => sink.ids('BTC/USDT').includes(last), 30_000, 'the trades after the gap');
        // Before, the body was read whole, however large, and the page used.
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), ...btc.slice(60, 70)]));
        assert.equal(source.stats.unrecoverable, 50, 'the gap stays open, counted');
      },
      { restRetries: 0 },
    ));

  it('a gap refill whose second page fails for good delivers the first page and counts only the rest unrecoverable', () =>
    withBinance(
      async (srv, source, sink) => {
        let calls = 0;
        srv.onRestCall = () => {
          if (++calls === 2) srv.failNext = 1_000; // HTTP 502 from the second page on, longer than the retries last
        };
        await until(() => source.subscribed.length === 2);
        srv.publish(btc.slice(0, 10));
        srv.muted = true;
        srv.publish(btc.slice(10, 1210)); // 1,200 lost: two pages of up to 1,000
        srv.muted = false;
        srv.publish(btc.slice(1210, 1211));
        await until(() => sink.ids('BTC/USDT').includes(Number(btc[1210]!.t)), 10_000, 'the refill to end');
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 1010), btc[1210]!]));
        assert.equal(source.stats.recovered, 1000);
        assert.equal(source.stats.unrecoverable, 200, 'only the ids not fetched');
      },
      { restRetries: 1 },
    ));

  it('a refilled REST row with a malformed decimal (" 1 ", "0x1A") is dead-lettered with the reason, not taken', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 5));
      srv.muted = true; // only REST sees these
      srv.publish([
        btc[5]!,
        { ...btc[6]!, p: ` ${btc[6]!.p} ` }, // Number() read it as the price
        { ...btc[7]!, q: '0x1A' }, // Number() read it as 26
        btc[8]!,
      ]);
      srv.muted = false;
      srv.publish(btc.slice(9, 10));
      await until(() => sink.ids('BTC/USDT').includes(Number(btc[9]!.t)), 30_000, 'the trade after the gap');
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 6), btc[8]!, btc[9]!]));
      const rest = sink.dead.filter((d) => d.origin === 'binance-rest');
      assert.equal(rest.length, 2, 'one dead letter per malformed row');
      assert.match(rest[0]!.reason, /"price":" 61/);
      assert.match(rest[1]!.reason, /"qty":"0x1A"/);
      assert.equal(source.stats.unrecoverable, 2, 'their ids stay missing, counted');
    }));

  // The next page was asked from the highest id among the trades parsed: a full page of rows none of which parsed gave
  // -1, so the refill started over from fromId=0 (the symbol's first trade) instead of going on past the page.
  it('a refill page of 1,000 rows that all fail to parse is dead-lettered, and the next page starts past its ids', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 10));
      await until(() => sink.received.length === 10);
      srv.muted = true; // only REST sees these: a page of 1,000 malformed rows, then 200 good ones
      srv.publish([
        ...btc.slice(10, 1010).map((e) => ({ ...e, p: 'not a price' })),
        ...btc.slice(1010, 1210),
      ]);
      srv.muted = false;
      srv.publish(btc.slice(1210, 1211));
      const btcCalls = () =>
        srv.restCalls.filter((u) => u.startsWith('/api/v3/historicalTrades?symbol=BTCUSDT'));
      // Until the trade after the gap comes, or a third page is asked for (the refill gone astray: shown below).
      await until(
        () => sink.ids('BTC/USDT').includes(Number(btc[1210]!.t)) || btcCalls().length > 2,
        30_000,
        'the trade after the gap',
      );
      assert.deepEqual(btcCalls(), [
        `/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${Number(btc[10]!.t)}&limit=1000`,
        `/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${Number(btc[1010]!.t)}&limit=1000`,
      ]);
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), ...btc.slice(1010, 1211)]));
      assert.equal(
        sink.dead.filter((d) => d.origin === 'binance-rest').length,
        1000,
        'one dead letter per row',
      );
    }));

  // An id gap still open after the refill's REST retries used to be counted and never asked for again. Binance sends no
  // heartbeats: the attempts come with the frames (here, ETH trades).
  it('ids a refill could not get (REST down) are asked for again, with back-off, while the stream goes on', () =>
    withBinance(
      async (srv, source, sink) => {
        const failedCalls = await idGapWithRestDown(srv, source, sink);
        await whileFraming(
          srv,
          () => srv.restCalls.length > failedCalls + 1,
          'asked again while REST is down',
        );
        srv.failNext = 0; // the REST API back
        await whileFraming(srv, () => source.stats.holesRefilled === 1, 'the ids refilled');
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), btc[20]!, ...btc.slice(10, 20)]));
        assert.match(srv.restCalls.at(-1)!, new RegExp(`fromId=${btc[10]!.t}&`), 'from the first id missing');
        assert.equal(source.stats.holesAbandoned, 0);
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 1_000_000 } },
    ));

  // The attempts used to come only with frames (`onFrame`): Binance sends no heartbeats, so on a quiet stream a gap's
  // ids were never asked for again. The clock of the back-off is injected: no frame comes while it moves.
  it('ids a refill could not get are asked for again on their own timer, with no frame coming (a quiet stream)', () => {
    let now = Date.now();
    return withBinance(
      async (srv, source, sink) => {
        const failedCalls = await idGapWithRestDown(srv, source, sink);
        // From here on the server sends nothing but its pings (every 20 s), and no trade is published.
        now += 61_000; // past the first back-off (30 to 60 s)
        await until(() => srv.restCalls.length > failedCalls, 30_000, 'asked again, with no frame');
        srv.failNext = 0; // the REST API back
        // A minute passes at each look: the failed attempt's next time may be set after any one step of the clock.
        await until(
          () => {
            now += 60_000;
            return source.stats.holesRefilled === 1;
          },
          30_000,
          'the ids refilled, with no frame',
        );
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), btc[20]!, ...btc.slice(10, 20)]));
        assert.equal(source.stats.holesAbandoned, 0);
      },
      {
        restRetries: 0,
        holeRetry: { backoff: { initialMs: 60_000, maxMs: 60_000 }, attempts: 8 },
        now: () => now,
      },
    );
  });

  // A hole's attempt is one REST call (the stream's frames wait behind it), not `restRetries` more with their back-off.
  it('a hole attempt is one REST call, not restRetries more', () =>
    withBinance(
      async (srv, source, sink) => {
        const calls = await idGapWithRestDown(srv, source, sink);
        assert.equal(calls, 1 + 2, 'the failed refill: 1 + 2 retries');
        await until(() => source.stats.holesAbandoned === 1, 30_000, 'the ids given up');
        assert.equal(srv.restCalls.length, calls + 3, '3 attempts of 1');
      },
      { restRetries: 2, holeRetry: { backoff: { initialMs: 5, maxMs: 20 }, attempts: 3 } },
    ));

  it('ids REST did not list yet (its history lagging the stream) are asked for again and come', () =>
    withBinance(
      async (srv, source, sink) => {
        await until(() => source.subscribed.length === 2);
        srv.publish(btc.slice(0, 10));
        await until(() => sink.received.length === 10);
        srv.restLag = 11; // the 10 lost and the one that shows the gap: not listed yet
        srv.muted = true;
        srv.publish(btc.slice(10, 20));
        srv.muted = false;
        srv.publish(btc.slice(20, 21));
        await until(() => sink.ids('BTC/USDT').includes(Number(btc[20]!.t)), 30_000, 'the stream to go on');
        assert.equal(source.stats.unrecoverable, 10, 'the refill found none of them');
        const calls = srv.restCalls.length;
        await whileFraming(srv, () => srv.restCalls.length > calls + 1, 'asked again while REST lags');
        srv.restLag = 0; // REST caught up
        await whileFraming(srv, () => source.stats.holesRefilled === 1, 'the ids refilled');
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf([...btc.slice(0, 10), btc[20]!, ...btc.slice(10, 20)]));
      },
      { restRetries: 0, holeRetry: { backoff: { initialMs: 20, maxMs: 100 }, attempts: 1_000_000 } },
    ));

  // Frames queue behind a refill (in order, one at a time) while its REST calls are retried — minutes per pair with the
  // API down (and a Kraken refill reads up to maxRefillPages at a page a second): the queue had no bound.
  it('frames waiting behind a refill past the bound cut the connection: bounded, counted, and nothing lost', () =>
    withBinance(
      async (srv, source, sink) => {
        await until(() => source.subscribed.length === 2);
        srv.publish(btc.slice(0, 10));
        await until(() => sink.received.length === 10);
        srv.failNext = 1_000_000; // the REST API down: the gap's refill retries, holding the frames
        srv.muted = true;
        srv.publish(btc.slice(10, 20));
        srv.muted = false;
        srv.publish(btc.slice(20, 21)); // the id gap
        await until(() => srv.restCalls.length > 0, 30_000, 'the refill retrying');
        let sent = 0;
        let peak = 0;
        const stream = setInterval(() => {
          if (sent < eth.length) srv.publish([eth[sent++]!]);
          peak = Math.max(peak, source.socket.queuedBytes);
        }, 2);
        try {
          await until(
            () => srv.sockets.size === 0,
            30_000,
            'the connection cut while the refill still waits',
          );
        } finally {
          clearInterval(stream);
        }
        assert.equal(source.stats.queueOverflows, 1);
        // The bound, give or take the frame that crossed it (the frames already queued are kept and handled).
        assert.ok(peak <= 16_384 + 2_048, `peak ${peak} bytes queued`);
        assert.ok(srv.restCalls.length > 0 && srv.failNext > 0, 'cut while the refill was still waiting');
        srv.publish(eth.slice(sent)); // traded while cut: not streamed to anyone
        srv.failNext = 0; // the REST API back: the refill ends, the frames are handled, the connector reconnects
        await until(
          () =>
            sink.distinctIds('ETH/USDT').length === eth.length && sink.distinctIds('BTC/USDT').length === 21,
          30_000,
          'every trade, streamed or refilled',
        );
        assert.deepEqual(sink.ids('ETH/USDT'), idsOf(eth), 'each once, in order');
        assert.deepEqual(sink.ids('BTC/USDT'), idsOf(btc.slice(0, 21)), 'the gap refilled in its place');
        assert.equal(source.stats.unrecoverable, 0);
      },
      { restRetries: 1_000_000, maxQueuedBytes: 16_384 },
    ));

  it('reconnects on a serverShutdown notice and loses nothing', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      srv.publish(btc.slice(0, 5));
      await until(() => sink.received.length === 5);
      srv.serverShutdown();
      await until(() => source.socket.connects === 2 && source.subscribed.length === 2, 2_000, 'reconnected');
      srv.publish(btc.slice(5, 8));
      await until(() => sink.received.length === 8, 2_000);
      assert.deepEqual(sink.ids('BTC/USDT'), idsOf(btc.slice(0, 8)));
      assert.equal(sink.dead.length, 0);
    }));

  it('dead-letters malformed frames, non-trade events and error replies, and keeps running', () =>
    withBinance(async (srv, source, sink) => {
      await until(() => source.subscribed.length === 2);
      const good = btc[0]!;
      srv.sendRaw('garbage');
      srv.sendRaw({ stream: 'btcusdt@trade', data: { ...good, p: '-1' } });
      srv.sendRaw({ stream: 'btcusdt@trade', data: { ...good, q: 12 } });
      srv.sendRaw({ stream: 'btcusdt@trade', data: { ...good, T: 1723161255 } }); // seconds, not ms
      srv.sendRaw({ stream: 'ethusdt@trade', data: good }); // envelope and event disagree
      srv.sendRaw({ stream: 'btcusdt@depth', data: { e: 'depthUpdate', s: 'BTCUSDT' } });
      srv.sendRaw({ error: { code: 2, msg: 'Invalid request: unknown variant' }, id: 7 });
      srv.publish(btc.slice(0, 1));
      await until(() => sink.dead.length === 7 && sink.received.length === 1, 2_000, 'rejects');
      assert.deepEqual(
        sink.dead.map((d) => d.kind),
        ['parse', 'invalid', 'invalid', 'invalid', 'invalid', 'unknown', 'exchange-error'],
      );
      const r = sink.dead.map((d) => d.reason);
      assert.match(r[1]!, /price/);
      assert.match(r[2]!, /qty/);
      assert.match(r[3]!, /tradeTs: timestamp before 2009/);
      assert.match(r[4]!, /stream "ethusdt@trade" carries "btcusdt@trade"/);
      assert.match(r[5]!, /not a trade event/);
      assert.match(r[6]!, /Invalid request/);
      assert.equal(sink.received[0]!.tradeId, String(good.t));
      // A trade after the bad frames arrives on the same connection: none of them cut it.
      srv.publish(btc.slice(1, 2));
      await until(() => sink.received.length === 2, 30_000, 'a trade after the bad frames');
      assert.equal(source.socket.connects, 1);
    }));
});
