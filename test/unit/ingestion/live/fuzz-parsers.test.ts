import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Parsed,
  parseBinanceFrame,
  parseCoinbaseFrame,
  parseKrakenFrame,
} from '../../../../src/ingestion/live/parsers.ts';
import { TradeSchema } from '../../../../src/schemas/trade.ts';
import {
  REAL_BINANCE_TRADE as binanceTrade,
  REAL_COINBASE_TRADE as coinbaseTrade,
  REAL_KRAKEN_TRADE as krakenTrade,
  mutateFields,
} from '../../../support/fuzz.ts';

/**
 * Property-based fuzzing of the live frame parsers with hostile input. Properties, for every parser:
 * 1. total: never throws; every trade passes `TradeSchema`; every reject has a known kind and a reason; no
 *    input vanishes (it yields a trade, a control or a reject);
 * 2. junk (not JSON, or JSON that is not an object): rejects only — no trade, no control;
 * 3. accounting: a trade message with N entries yields exactly N trades + entry rejects, whatever the entries
 *    hold (nothing silently dropped);
 * 4. round trip: well-formed messages with arbitrary valid values give back exactly those values.
 */
const NOW = Date.now();
const parsers = {
  kraken: (s: string) => parseKrakenFrame(s, NOW),
  binance: (s: string) => parseBinanceFrame(s, NOW),
  coinbase: (s: string) => parseCoinbaseFrame(s, NOW),
};
const KINDS = new Set(['parse', 'invalid', 'unknown', 'exchange-error']);

function checkTotal(p: Parsed): void {
  for (const t of p.trades) assert.ok(TradeSchema.safeParse(t).success, JSON.stringify(t));
  for (const r of p.rejects) {
    assert.ok(KINDS.has(r.kind), r.kind);
    assert.ok(typeof r.reason === 'string' && r.reason.trim().length > 0, 'a reason');
  }
  assert.ok(p.trades.length + p.controls.length + p.rejects.length > 0, 'input vanished');
}

/** Values a field should never be trusted to hold. */
const hostile = fc.oneof(
  fc.constantFrom(
    null,
    'NaN',
    'Infinity',
    '-Infinity',
    '1e400',
    '-1e400',
    '-1',
    '0',
    '-0',
    ' 1 ',
    '0x1F',
    '1_000',
    '1,5',
    '',
    -5,
    0,
    -0.000001,
    1e308,
    -1e308,
    2 ** 63,
    2 ** 53 + 2,
    1.5e-320,
    true,
    false,
    'buy ',
    'BUY',
    'b',
    '2025-13-01T00:00:00Z',
    '2025-02-30T00:00:00Z',
    '1762795433.971',
    'x'.repeat(10_000),
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.object({ maxDepth: 2, maxKeys: 3 }),
);

/** A real message shape with any of its fields replaced by hostile values, or dropped. */
const mutate = (base: Record<string, unknown>, protect: string[] = []) =>
  // Extra keys never collide with the protocol's own names.
  mutateFields(base, hostile, { protect, extraKey: fc.string({ maxLength: 4 }).map((k) => `x_${k}`) });

const krakenFrame = (data: unknown[], type = 'update') => JSON.stringify({ channel: 'trade', type, data });
const coinbaseFrame = (trades: unknown[]) =>
  JSON.stringify({
    channel: 'market_trades',
    client_id: '',
    timestamp: '',
    sequence_num: 7,
    events: [{ type: 'update', trades }],
  });
const binanceFrame = (data: unknown) => JSON.stringify({ stream: 'btcusdt@trade', data });

/** Anything but a JSON object. */
const junk = fc.oneof(
  fc.string({ maxLength: 300 }).filter((s) => !/^\s*\{/.test(s)),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc
    .oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.jsonValue(), { maxLength: 5 }),
    )
    .map((v) => JSON.stringify(v)),
  fc.constant('['.repeat(100_000)),
  fc.constant(`[${'['.repeat(20_000)}${']'.repeat(20_001)}`),
  fc.constant(`"${'x'.repeat(2 * 1024 * 1024)}"`),
  fc.constant('{"channel":"trade","data":[1,2'),
);

/** Hostile whole messages: real envelopes mutated at the top level, plus deep and giant objects. */
const messages = {
  kraken: fc.oneof(
    mutate({ channel: 'trade', type: 'snapshot', data: [krakenTrade] }).map((m) => JSON.stringify(m)),
    mutate({
      method: 'subscribe',
      result: { channel: 'trade', symbol: 'BTC/USD' },
      success: true,
      req_id: 1,
    }).map((m) => JSON.stringify(m)),
    mutate({ channel: 'status', type: 'update', data: [{ system: 'online', api_version: 'v2' }] }).map((m) =>
      JSON.stringify(m),
    ),
    mutate({ channel: 'heartbeat' }).map((m) => JSON.stringify(m)),
    mutate({ method: 'pong', req_id: 3 }).map((m) => JSON.stringify(m)),
  ),
  binance: fc.oneof(
    mutate({ stream: 'btcusdt@trade', data: binanceTrade }).map((m) => JSON.stringify(m)),
    mutate({ result: null, id: 1 }).map((m) => JSON.stringify(m)),
    mutate({ error: { code: 2, msg: 'Invalid request' }, id: 1 }).map((m) => JSON.stringify(m)),
    mutate(binanceTrade).map((m) => JSON.stringify(m)),
  ),
  coinbase: fc.oneof(
    mutate({
      channel: 'market_trades',
      sequence_num: 1,
      events: [{ type: 'snapshot', trades: [coinbaseTrade] }],
    }).map((m) => JSON.stringify(m)),
    mutate({
      channel: 'heartbeats',
      sequence_num: 2,
      events: [{ current_time: 'x', heartbeat_counter: 3 }],
    }).map((m) => JSON.stringify(m)),
    mutate({
      channel: 'subscriptions',
      sequence_num: 0,
      events: [{ subscriptions: { market_trades: ['BTC-USD'] } }],
    }).map((m) => JSON.stringify(m)),
    mutate({ type: 'error', message: 'Failure to subscribe' }).map((m) => JSON.stringify(m)),
  ),
};

const deep = fc
  .integer({ min: 1_000, max: 50_000 })
  .map((n) => `{"channel":"trade","data":${'['.repeat(n)}${']'.repeat(n)}}`);

describe('fuzzing the live frame parsers (hostile input)', () => {
  for (const [name, parse] of Object.entries(parsers)) {
    const ex = name as keyof typeof parsers;
    it(`${name}: total on junk, mutated messages, deep nesting and giant frames`, () => {
      fc.assert(
        fc.property(fc.oneof(junk, messages[ex], deep), (text) => {
          checkTotal(parse(text));
        }),
        { numRuns: 1200 },
      );
      const giant =
        ex === 'kraken'
          ? krakenFrame(Array(40_000).fill(krakenTrade))
          : ex === 'coinbase'
            ? coinbaseFrame(Array(40_000).fill(coinbaseTrade))
            : binanceFrame({ ...binanceTrade, pad: 'x'.repeat(1_100_000) });
      const p = parse(giant);
      assert.deepEqual([p.trades.length, p.rejects.length], [0, 1]);
      assert.match(p.rejects[0]!.reason, /exceeds/);
    });

    it(`${name}: anything that is not a JSON object is rejected with a reason, never a trade or a control`, () => {
      fc.assert(
        fc.property(junk, (text) => {
          const p = parse(text);
          assert.equal(p.trades.length, 0);
          assert.equal(p.controls.length, 0);
          assert.ok(p.rejects.length >= 1);
          checkTotal(p);
        }),
        { numRuns: 400 },
      );
    });
  }

  it('every entry of a trade message becomes a trade or a reject (kraken, coinbase: N entries; binance: one event)', () => {
    let trades = 0;
    let rejects = 0;
    const count = (p: Parsed, n: number) => {
      checkTotal(p);
      assert.equal(p.trades.length + p.rejects.length, n, JSON.stringify(p.rejects));
      trades += p.trades.length;
      rejects += p.rejects.length;
    };
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(krakenTrade), mutate(krakenTrade), hostile), {
          minLength: 1,
          maxLength: 8,
        }),
        (data) => count(parseKrakenFrame(krakenFrame(data), NOW), data.length),
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(coinbaseTrade), mutate(coinbaseTrade), hostile), {
          minLength: 1,
          maxLength: 8,
        }),
        (data) => count(parseCoinbaseFrame(coinbaseFrame(data), NOW), data.length),
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(mutate(binanceTrade, ['e', 's']), (data) =>
        count(parseBinanceFrame(binanceFrame(data), NOW), 1),
      ),
      { numRuns: 500 },
    );
    // Not vacuous: both outcomes occurred many times.
    assert.ok(trades > 300 && rejects > 1000, `${trades} trades, ${rejects} rejects`);
  });
});

describe('round trip: valid messages with arbitrary values are read exactly', () => {
  const decimalText = fc
    .tuple(fc.integer({ min: 0, max: 9_999_999 }), fc.integer({ min: 0, max: 99_999_999 }))
    .filter(([i, f]) => i + f > 0)
    .map(([i, f]) => `${i}.${String(f).padStart(8, '0')}`);
  const timeMs = fc.integer({ min: Date.UTC(2009, 0, 2), max: Date.UTC(2099, 11, 31) });
  const micros = fc.integer({ min: 0, max: 999 });
  const rfc = (ms: number, us: number) =>
    new Date(ms).toISOString().replace('Z', `${String(us).padStart(3, '0')}Z`);
  const id = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const pair = fc.constantFrom(['BTC', 'USD'], ['ETH', 'USDT'], ['SOL', 'EUR'], ['BTC', 'USDC']);

  it('kraken', () => {
    fc.assert(
      fc.property(
        pair,
        decimalText,
        decimalText,
        fc.boolean(),
        id,
        timeMs,
        micros,
        ([b, q], price, qty, buy, tid, ms, us) => {
          const d = {
            symbol: `${b}/${q}`,
            side: buy ? 'buy' : 'sell',
            price: Number(price),
            qty: Number(qty),
            ord_type: 'market',
            trade_id: tid,
            timestamp: rfc(ms, us),
          };
          const p = parseKrakenFrame(krakenFrame([d]), NOW);
          assert.deepEqual(p.rejects, []);
          assert.deepEqual(p.trades, [
            {
              v: 1,
              type: 'trade',
              exchange: 'kraken',
              pair: `${b}/${q}`,
              price: Number(price),
              qty: Number(qty),
              side: d.side,
              tradeId: String(tid),
              tradeTs: ms,
              receivedTs: NOW,
            },
          ]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('binance', () => {
    fc.assert(
      fc.property(
        pair,
        decimalText,
        decimalText,
        fc.boolean(),
        id,
        timeMs,
        ([b, q], price, qty, m, tid, ms) => {
          const s = `${b}${q}`;
          const text = JSON.stringify({
            stream: `${s.toLowerCase()}@trade`,
            data: { e: 'trade', E: ms + 1, s, t: tid, p: price, q: qty, T: ms, m, M: true },
          });
          const p = parseBinanceFrame(text, NOW);
          assert.deepEqual(p.rejects, []);
          assert.deepEqual(p.trades, [
            {
              v: 1,
              type: 'trade',
              exchange: 'binance',
              pair: `${b}/${q}`,
              price: Number(price),
              qty: Number(qty),
              side: m ? 'sell' : 'buy',
              tradeId: String(tid),
              tradeTs: ms,
              receivedTs: NOW,
            },
          ]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('coinbase, under both side readings', () => {
    fc.assert(
      fc.property(
        pair,
        decimalText,
        decimalText,
        fc.boolean(),
        id,
        timeMs,
        micros,
        fc.boolean(),
        ([b, q], price, qty, buy, tid, ms, us, maker) => {
          const t = {
            trade_id: String(tid),
            product_id: `${b}-${q}`,
            price,
            size: qty,
            side: buy ? 'BUY' : 'SELL',
            time: rfc(ms, us),
          };
          const p = parseCoinbaseFrame(coinbaseFrame([t]), NOW, maker ? 'maker' : 'taker');
          assert.deepEqual(p.rejects, []);
          const taker = buy !== maker ? 'buy' : 'sell';
          assert.deepEqual(p.trades, [
            {
              v: 1,
              type: 'trade',
              exchange: 'coinbase',
              pair: `${b}/${q}`,
              price: Number(price),
              qty: Number(qty),
              side: taker,
              tradeId: String(tid),
              tradeTs: ms,
              receivedTs: NOW,
            },
          ]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('timestamps with offsets and any fraction length are converted exactly, impossible dates refused', () => {
    const at = (ts: string) => parseKrakenFrame(krakenFrame([{ ...krakenTrade, timestamp: ts }]), NOW);
    assert.equal(
      at('2023-10-06T19:35:55.440295+02:00').trades[0]!.tradeTs,
      Date.UTC(2023, 9, 6, 17, 35, 55, 440),
    );
    assert.equal(
      at('2023-10-06T17:35:55.999999999Z').trades[0]!.tradeTs,
      Date.UTC(2023, 9, 6, 17, 35, 55, 999),
      'truncated, never rounded into the next second',
    );
    assert.equal(at('2023-10-06T17:35:55Z').trades[0]!.tradeTs, Date.UTC(2023, 9, 6, 17, 35, 55));
    for (const bad of [
      '2023-02-29T00:00:00Z',
      '2023-10-06 17:35:55Z',
      '2023-10-06T24:00:00Z',
      '2023-10-06T17:35:55',
      '1696613755',
    ])
      assert.match(at(bad).rejects[0]?.reason ?? '', /tradeTs/, bad);
  });
});
