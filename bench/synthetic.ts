import { validate } from '../src/runtime/validated.ts';
import { type Trade, TradeSchema } from '../src/schemas/trade.ts';

/**
 * The benchmarks' deterministic generator: values in [0, 1] (scale 0x7fffffff) or [0, 1) (0x80000000). A linear
 * congruential generator computed in doubles, so past 2^53 its product drops low bits (beyond ~2 M trades the price
 * walk of `syntheticTradeChunks` leaves the trade schema's range); kept as it is because every benchmark's recorded
 * figures were measured on the data it makes.
 */
export function seededRandom(seed: number, scale = 0x7fffffff): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / scale;
  };
}

/**
 * Deterministic synthetic trades for benchmarks: a random walk per pair, ~`perSecond` trades a second of
 * event time, a few out of order by up to 2 s (as real feeds are).
 */
export function syntheticTrades(count: number, pairs = ['BTC/USD', 'ETH/USD'], perSecond = 50): Trade[] {
  return [...syntheticTradeChunks(count, count, pairs, perSecond)].flat();
}

/** The same stream in chunks, so a large benchmark need not hold every trade in memory. */
export function* syntheticTradeChunks(
  count: number,
  chunk: number,
  pairs = ['BTC/USD', 'ETH/USD'],
  perSecond = 50,
): Generator<Trade[]> {
  const rand = seededRandom(42);
  const price = pairs.map((_, i) => 60_000 / (i * 20 + 1));
  let out: Trade[] = [];
  let ts = Date.UTC(2024, 7, 9);
  for (let i = 0; i < count; i++) {
    const k = i % pairs.length;
    ts += Math.round((1000 / perSecond) * rand() * 2);
    price[k]! *= 1 + (rand() - 0.5) * 0.0004;
    const late = rand() < 0.01 ? Math.round(rand() * 2000) : 0;
    const t: Trade = {
      v: 1,
      type: 'trade',
      exchange: 'bench',
      pair: pairs[k]!,
      price: Math.round(price[k]! * 100) / 100,
      qty: Math.round(rand() * 1e6) / 1e6 + 1e-6,
      side: rand() < 0.5 ? 'buy' : 'sell',
      tradeId: String(i),
      tradeTs: ts - late,
      receivedTs: ts,
    };
    // As a source would: validated once where it enters the system.
    const r = validate(TradeSchema, t);
    if (!r.success) throw new Error(r.error.message);
    out.push(r.data);
    if (out.length === chunk) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}
