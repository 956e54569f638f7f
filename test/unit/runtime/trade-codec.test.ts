import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeTradeEvent,
  encodeTradeEvent,
  isBinaryTrade,
  MAGIC,
} from '../../../src/runtime/trade-codec.ts';
import { type TradeEvent, TradeEventSchema } from '../../../src/schemas/trade.ts';

/**
 * The binary trades encoding: what goes in comes out (the very object the schema produces from the JSON), and a
 * decoded record is accepted exactly when the schema accepts the same values.
 */
const exchange = fc.constantFrom('binance', 'kraken', 'coinbase', 'bench', 'a', 'x-1');
const pair = fc.constantFrom('BTC/USD', 'ETH/USDT', 'XBT/USD', 'SOL/EUR');
const ts = fc.integer({ min: 1_230_768_000_000, max: 4_102_444_800_000 });
const price = fc.double({ min: 1e-12, max: 1e9, noNaN: true }); // TRADE_BOUNDS
const qty = fc.double({ min: Number.MIN_VALUE, max: 1e15, noNaN: true });
const trade = fc.record({
  v: fc.constant(1 as const),
  type: fc.constant('trade' as const),
  exchange,
  pair,
  price,
  qty,
  side: fc.constantFrom('buy' as const, 'sell' as const, 'unknown' as const),
  tradeId: fc.string({ minLength: 1, maxLength: 64 }),
  tradeTs: ts,
  receivedTs: ts,
});
const watermark = fc.record(
  {
    v: fc.constant(1 as const),
    type: fc.constant('watermark' as const),
    exchange,
    pair,
    ts,
    final: fc.boolean(),
  },
  { requiredKeys: ['v', 'type', 'exchange', 'pair', 'ts'] },
);

describe('binary trades encoding', () => {
  it('round-trips trades and watermarks to what the schema makes of their JSON', () => {
    fc.assert(
      fc.property(fc.oneof(trade, watermark), (e: TradeEvent) => {
        const bytes = encodeTradeEvent(e);
        assert.ok(isBinaryTrade(bytes));
        const viaJson = TradeEventSchema.parse(JSON.parse(JSON.stringify(e)));
        assert.deepEqual(decodeTradeEvent(bytes), viaJson);
      }),
      { numRuns: 5_000 },
    );
  });

  it('is about a third of the JSON', () => {
    const t: TradeEvent = {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair: 'BTC/USDT',
      price: 60123.45,
      qty: 0.00123,
      side: 'buy',
      tradeId: '3712093311',
      tradeTs: 1723161600123,
      receivedTs: 1723161600150,
    };
    assert.ok(encodeTradeEvent(t).length * 2.5 < Buffer.byteLength(JSON.stringify(t)));
  });

  it('refuses what the schema refuses (bad values written into a valid record)', () => {
    const base = encodeTradeEvent({
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair: 'BTC/USDT',
      price: 1,
      qty: 1,
      side: 'sell',
      tradeId: '1',
      tradeTs: 1723161600123,
      receivedTs: 1723161600150,
    });
    fc.assert(
      fc.property(
        fc.constantFrom(4, 12, 20, 28),
        fc.oneof(
          fc.double(),
          fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1.5, 1e9, 5e12, 1e-13, 1e16, 1e300),
        ),
        (at, x) => {
          const b = Buffer.from(base);
          b.writeDoubleLE(x, at);
          const field = { 4: 'price', 12: 'qty', 20: 'tradeTs', 28: 'receivedTs' }[at]!;
          const json = {
            ...(decodeTradeEvent(base) as object),
            [field]: x,
          };
          const schema = TradeEventSchema.safeParse(json).success;
          const decoded = decodeTradeEvent(b);
          assert.equal(typeof decoded !== 'string', schema, `${field} = ${x}`);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('refuses truncated, padded, unknown-version and malformed records with a reason', () => {
    const b = encodeTradeEvent({
      v: 1,
      type: 'watermark',
      exchange: 'kraken',
      pair: 'XBT/USD',
      ts: 1723161600000,
      final: true,
    });
    for (let n = 0; n < b.length; n++) assert.equal(typeof decodeTradeEvent(b.subarray(0, n)), 'string');
    assert.equal(typeof decodeTradeEvent(Buffer.concat([b, Buffer.from([0])])), 'string');
    const v2 = Buffer.from(b);
    v2[1] = 2;
    assert.match(decodeTradeEvent(v2) as string, /version 2/);
    const badPair = Buffer.from(b);
    badPair[badPair.length - 1] = 'x'.charCodeAt(0);
    assert.match(decodeTradeEvent(badPair) as string, /pair/);
    assert.equal(isBinaryTrade(Buffer.from('{"v":1}')), false);
    assert.equal(Buffer.from([MAGIC])[0], 0xcc);
  });
});
