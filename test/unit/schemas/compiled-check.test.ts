import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { z } from 'zod';
import { safeParse } from '../../../src/schemas/compiled-check.ts';
import { PredictionErrorSchema } from '../../../src/schemas/prediction-error.ts';
import { TRADE_BOUNDS, TradeEventSchema, TradeSchema, WatermarkSchema } from '../../../src/schemas/trade.ts';

/**
 * The compiled check of the trade schemas must agree with zod on every value: a value it accepts must be one zod
 * accepts unchanged, and whatever it refuses goes to zod. Random values near every bound, of every wrong type, with
 * keys missing or extra.
 */
const MIN_TS = 1_230_768_000_000;
const MAX_TS = 4_102_444_800_000;
const oddValue = fc.oneof(
  fc.constantFrom(
    null,
    undefined,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    0,
    '',
    [],
    {},
  ),
  fc.boolean(),
  fc.string({ maxLength: 3 }),
);
/** The bounds themselves most often, just inside and just outside them. */
const num = (values: number[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...values), weight: 6 },
    fc.double({ noNaN: false }),
    fc.integer(),
    fc.constantFrom(...values.map(String)),
    oddValue,
  );
const ts = num([
  MIN_TS,
  MIN_TS - 1,
  MAX_TS,
  MAX_TS + 1,
  1_700_000_000_000,
  1_700_000_000_000.5,
  1_700_000_000,
]);
const text = (values: string[]) =>
  fc.oneof({ arbitrary: fc.constantFrom(...values), weight: 6 }, fc.string({ maxLength: 70 }), oddValue);
const exchange = text([
  'binance',
  'kraken',
  'coinbase',
  'x',
  'Binance',
  '-x',
  'a'.repeat(32),
  'a'.repeat(33),
]);
const pair = text([
  'BTC/USD',
  'ETH/USDT',
  'btc/usd',
  'btc/USD',
  'BTC/usd',
  'BTC-USD',
  'B/USD',
  `${'A'.repeat(12)}/USD`,
  `${'A'.repeat(13)}/USD`,
]);
const fields = {
  v: fc.oneof(fc.constantFrom(1, 2, '1', 1.0000001), oddValue),
  type: fc.oneof(fc.constantFrom('trade', 'watermark', 'Trade'), oddValue),
  exchange,
  pair,
  price: num([
    TRADE_BOUNDS.minPrice,
    TRADE_BOUNDS.minPrice / 2,
    TRADE_BOUNDS.maxPrice,
    TRADE_BOUNDS.maxPrice * 1.0001,
    60_000.5,
  ]),
  qty: num([0, -0, Number.MIN_VALUE, 1e-9, TRADE_BOUNDS.maxQty, TRADE_BOUNDS.maxQty * 1.0001, -1, 0.5]),
  side: fc.oneof(fc.constantFrom('buy', 'sell', 'unknown', 'BUY', 'b'), oddValue),
  tradeId: text(['1', 'x'.repeat(64), 'x'.repeat(65), '😀'.repeat(32), '😀'.repeat(33)]),
  tradeTs: ts,
  receivedTs: ts,
  ts,
  final: fc.oneof(fc.boolean(), oddValue),
};
/** A trade or a watermark, each field valid most of the time, some keys dropped, sometimes an extra one. */
const candidate = fc
  .record({
    kind: fc.constantFrom('trade', 'watermark'),
    values: fc.record(fields),
    valid: fc.record({
      v: fc.constant(1),
      exchange: fc.constantFrom('binance', 'kraken'),
      pair: fc.constantFrom('BTC/USD', 'ETH/USDT'),
      price: fc.double({ min: TRADE_BOUNDS.minPrice, max: TRADE_BOUNDS.maxPrice, noNaN: true }),
      qty: fc.double({ min: 1e-9, max: TRADE_BOUNDS.maxQty, noNaN: true }),
      side: fc.constantFrom('buy', 'sell', 'unknown'),
      tradeId: fc.string({ minLength: 1, maxLength: 20 }),
      tradeTs: fc.integer({ min: MIN_TS, max: MAX_TS }),
      receivedTs: fc.integer({ min: MIN_TS, max: MAX_TS }),
      ts: fc.integer({ min: MIN_TS, max: MAX_TS }),
      final: fc.boolean(),
    }),
    // Mostly one field off at a time: two wrong fields hide each other's verdict.
    useOdd: fc.array(fc.constantFrom(...Object.keys(fields)), { maxLength: 2 }),
    drop: fc.array(fc.constantFrom(...Object.keys(fields)), { maxLength: 1 }),
    extra: fc.option(fc.constantFrom('note', 'id', '__proto__x'), { nil: undefined }),
  })
  .map(({ kind, values, valid, useOdd, drop, extra }) => {
    const keys =
      kind === 'trade'
        ? ['v', 'type', 'exchange', 'pair', 'price', 'qty', 'side', 'tradeId', 'tradeTs', 'receivedTs']
        : ['v', 'type', 'exchange', 'pair', 'ts', 'final'];
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      if (drop.includes(k)) continue;
      out[k] = useOdd.includes(k)
        ? values[k as keyof typeof values]
        : k === 'type'
          ? kind
          : valid[k as keyof typeof valid];
    }
    if (extra !== undefined) out[extra] = 1;
    return out as unknown;
  });
const anything = fc.oneof(candidate, candidate, candidate, fc.anything());

const agree = (schema: z.ZodType, x: unknown) => {
  const fast = safeParse(schema, x);
  const zod = schema.safeParse(x);
  assert.equal(fast.success, zod.success, JSON.stringify(x));
  if (fast.success) assert.deepEqual(fast.data, zod.data);
  else assert.deepEqual(fast.error!.issues, zod.error!.issues);
  return fast;
};

describe('compiled checks of the trade schemas agree with zod', () => {
  for (const [name, schema] of [
    ['TradeSchema', TradeSchema],
    ['WatermarkSchema', WatermarkSchema],
    ['TradeEventSchema', TradeEventSchema],
  ] as const)
    it(`${name}: the same verdict, the same value, the same issues, on 20,000 random values`, () => {
      let accepted = 0;
      fc.assert(
        fc.property(anything, (x) => {
          if (agree(schema, x).success) accepted++;
        }),
        { numRuns: 20_000 },
      );
      // Not vacuous: a fair share of the values are valid ones.
      assert.ok(accepted > 1_000, `${accepted} accepted`);
    });

  it('a valid trade is taken as it is (the compiled path); one with a key zod strips gets zod’s copy', () => {
    const t = {
      v: 1,
      type: 'trade',
      exchange: 'binance',
      pair: 'BTC/USDT',
      price: 60_000,
      qty: 0.5,
      side: 'buy',
      tradeId: '7',
      tradeTs: 1_700_000_000_000,
      receivedTs: 1_700_000_000_001,
    };
    const r = safeParse(TradeSchema, t);
    assert.ok(r.success && r.data === t);
    const withExtra = { ...t, note: 'x' };
    const s = safeParse(TradeSchema, withExtra);
    assert.ok(s.success && s.data !== withExtra);
    assert.deepEqual(s.data, t);
  });
});

/** A verdict, each field valid most of the time (null where the schema allows it), some off, dropped or extra. */
const price = num([0, -0, Number.MIN_VALUE, 60_000.5, -1]);
const signed = num([0, -0, -1.5, 1.5, Number.MAX_VALUE]);
const errorFields = {
  v: fields.v,
  status: text(['scored', 'unscorable', 'Scored']),
  exchange,
  pair,
  windowEnd: ts,
  modelName: text(['', 'price', 'x'.repeat(200)]),
  modelVersion: num([0, 1, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2]),
  horizonMs: num([0, 300_000, -300_000, 0.5]),
  targetTs: ts,
  close: price,
  predictedClose: price,
  p10: price,
  p90: price,
  actualClose: fc.oneof(fc.constant(null), price),
  error: fc.oneof(fc.constant(null), signed),
  absError: fc.oneof(fc.constant(null), price),
  pctError: fc.oneof(fc.constant(null), signed),
  persistenceAbsError: fc.oneof(fc.constant(null), price),
  directionHit: fc.oneof(fc.constant(null), fc.boolean(), oddValue),
  directionTie: fc.oneof(fc.boolean(), oddValue),
  inBand: fc.oneof(fc.constant(null), fc.boolean(), oddValue),
  scoredAt: ts,
  latenessMs: num([0, -0, -1, 1_000.5]),
  reason: fc.oneof(
    fc.constantFrom(null, 'no_candle_at_target', 'target_not_closed_in_time', 'target_before_retention', 'x'),
    oddValue,
  ),
};
const finitePositive = fc.double({ min: 1e-6, max: 1e9, noNaN: true });
const finite = fc.double({ min: -1e9, max: 1e9, noNaN: true });
const verdict = fc
  .record({
    values: fc.record(errorFields),
    valid: fc.record({
      v: fc.constant(1),
      status: fc.constantFrom('scored', 'unscorable'),
      exchange: fc.constantFrom('binance', 'kraken'),
      pair: fc.constantFrom('BTC/USD', 'ETH/USDT'),
      windowEnd: fc.integer({ min: MIN_TS, max: MAX_TS }),
      modelName: fc.string({ minLength: 1, maxLength: 20 }),
      modelVersion: fc.integer({ min: 1, max: 1_000 }),
      horizonMs: fc.constantFrom(300_000, 60_000),
      targetTs: fc.integer({ min: MIN_TS, max: MAX_TS }),
      close: finitePositive,
      predictedClose: finitePositive,
      p10: finitePositive,
      p90: finitePositive,
      actualClose: fc.option(finitePositive, { nil: null }),
      error: fc.option(finite, { nil: null }),
      absError: fc.option(fc.double({ min: 0, max: 1e9, noNaN: true }), { nil: null }),
      pctError: fc.option(finite, { nil: null }),
      persistenceAbsError: fc.option(fc.double({ min: 0, max: 1e9, noNaN: true }), { nil: null }),
      directionHit: fc.option(fc.boolean(), { nil: null }),
      directionTie: fc.boolean(),
      inBand: fc.option(fc.boolean(), { nil: null }),
      scoredAt: fc.integer({ min: MIN_TS, max: MAX_TS }),
      latenessMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
      reason: fc.constantFrom(
        null,
        'no_candle_at_target',
        'target_not_closed_in_time',
        'target_before_retention',
      ),
    }),
    useOdd: fc.array(fc.constantFrom(...Object.keys(errorFields)), { maxLength: 2 }),
    drop: fc.array(fc.constantFrom(...Object.keys(errorFields)), { maxLength: 1 }),
    extra: fc.option(fc.constantFrom('note', 'id'), { nil: undefined }),
  })
  .map(({ values, valid, useOdd, drop, extra }) => {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(errorFields)) {
      if (drop.includes(k)) continue;
      out[k] = useOdd.includes(k) ? values[k as keyof typeof values] : valid[k as keyof typeof valid];
    }
    if (extra !== undefined) out[extra] = 1;
    return out as unknown;
  });

describe('the compiled check of the monitor’s verdicts agrees with zod', () => {
  it('PredictionErrorSchema: the same verdict, the same value, the same issues, on 20,000 random values', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(verdict, verdict, verdict, fc.anything()), (x) => {
        if (agree(PredictionErrorSchema, x).success) accepted++;
      }),
      { numRuns: 20_000 },
    );
    assert.ok(accepted > 1_000, `${accepted} accepted`);
  });
});
