import fc, { type Arbitrary } from 'fast-check';

/** Real trade messages of each exchange (docs/exchange-protocols.md and the recordings): the fuzzers' seeds. */
export const REAL_KRAKEN_TRADE = {
  symbol: 'BTC/USD',
  side: 'buy',
  price: 105944.2,
  qty: 0.00027625,
  ord_type: 'limit',
  trade_id: 10218208,
  timestamp: '2023-10-06T17:35:55.440295Z',
};
export const REAL_BINANCE_TRADE = {
  e: 'trade',
  E: 1723161255343,
  s: 'BTCUSDT',
  t: 3735683259,
  p: '61837.63000000',
  q: '0.02000000',
  T: 1723161255342,
  m: true,
  M: true,
};
export const REAL_COINBASE_TRADE = {
  trade_id: '995098700',
  product_id: 'BTC-USD',
  price: '68900.50',
  size: '0.00150000',
  side: 'BUY',
  time: '2026-04-07T14:30:02.789012Z',
};

/**
 * An object shaped like a real one, with some fields replaced by `hostile` values, dropped, or added. `protect`
 * keeps fields as they are; `extraKey` generates the names of added fields.
 */
export function mutateFields(
  base: Record<string, unknown>,
  hostile: Arbitrary<unknown>,
  opts: { protect?: readonly string[]; extraKey?: Arbitrary<string> } = {},
): Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(base).filter((k) => !opts.protect?.includes(k));
  return fc
    .record({
      drop: fc.subarray(keys),
      replace: fc.dictionary(fc.constantFrom(...keys), hostile, { maxKeys: 3 }),
      extra: fc.dictionary(opts.extraKey ?? fc.string({ maxLength: 5 }), hostile, { maxKeys: 2 }),
    })
    .map(({ drop, replace, extra }) => {
      const o: Record<string, unknown> = { ...base, ...replace, ...extra };
      for (const k of drop) delete o[k];
      return o;
    });
}
