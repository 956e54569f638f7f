import { z } from 'zod';
import { EpochMs, Exchange, Pair, PositiveFinite } from './common.ts';

/**
 * One executed trade, normalised from any exchange or file. `side` is the taker (aggressor) side;
 * `unknown` when the source does not say. Unique by (exchange, pair, tradeId).
 */
/**
 * Bounds of a trade any venue could print: a unit price within [1e-12, 1e9] and at most 1e15 units. Finite is not
 * enough: a size of 1e300 at a normal price is finite, but a minute's volume or VWAP sum of a few such trades is not,
 * and the candle could then never be published (its schema wants finite sums). Within these bounds a minute's sums of
 * millions of trades stay finite.
 */
/**
 * `maxAheadMs`: how far a trade's time may be after the moment it was received — clock skew between an exchange and
 * us is well under a second; a trade "from the future" is a garbled time, and one a month ahead would make the candle
 * stage fill a month of empty minutes at once and then refuse every real trade as late.
 */
export const TRADE_BOUNDS = { minPrice: 1e-12, maxPrice: 1e9, maxQty: 1e15, maxAheadMs: 60_000 } as const;

/** Why a trade's price or size is out of `TRADE_BOUNDS` (undefined: within them). */
export function tradeOutOfBounds(t: { price: number; qty: number }): string | undefined {
  if (!(t.price >= TRADE_BOUNDS.minPrice && t.price <= TRADE_BOUNDS.maxPrice))
    return `price ${t.price} is outside [${TRADE_BOUNDS.minPrice}, ${TRADE_BOUNDS.maxPrice}]`;
  if (!(t.qty > 0 && t.qty <= TRADE_BOUNDS.maxQty))
    return `size ${t.qty} is outside (0, ${TRADE_BOUNDS.maxQty}]`;
  return undefined;
}

/** Why a trade's time is implausibly after its receipt (`TRADE_BOUNDS.maxAheadMs`); undefined: it is not. */
export function tradeAheadOfReceipt(t: { tradeTs: number; receivedTs: number }): string | undefined {
  const ahead = t.tradeTs - t.receivedTs;
  if (!(ahead > TRADE_BOUNDS.maxAheadMs)) return undefined;
  return `trade time ${new Date(t.tradeTs).toISOString()} is ${Math.round(ahead / 1000)} s after it was received (${new Date(t.receivedTs).toISOString()}; at most ${TRADE_BOUNDS.maxAheadMs / 1000} s of clock skew)`;
}

export const TradeSchema = z.object({
  v: z.literal(1),
  type: z.literal('trade'),
  exchange: Exchange,
  pair: Pair,
  price: z.number().min(TRADE_BOUNDS.minPrice).max(TRADE_BOUNDS.maxPrice),
  qty: PositiveFinite.max(TRADE_BOUNDS.maxQty),
  side: z.enum(['buy', 'sell', 'unknown']),
  tradeId: z.string().min(1).max(64),
  /** When the exchange executed the trade (event time). */
  tradeTs: EpochMs,
  /** When cryptocast received it (processing time). */
  receivedTs: EpochMs,
});
export type Trade = z.infer<typeof TradeSchema>;

/**
 * The ids of a pair a live source has not got (an id gap whose refill failed, asked for again later): every id after
 * `afterId` and before `untilId`, those in `got` excepted (come since it was said); `sinceTs` is the time a refill by
 * time pages from to reach them.
 */
export const PendingIdsSchema = z.object({
  afterId: z.number().int().nonnegative(),
  untilId: z.number().int().positive(),
  sinceTs: EpochMs,
  got: z.array(z.string()).optional(),
});
export type PendingIds = z.infer<typeof PendingIdsSchema>;

/**
 * In-band event-time progress from a source: "for (exchange, pair), event time has reached `ts`".
 * Live sources send one per pair every second from the wall clock (so an idle market still closes its
 * minute); replay sources send them from the replay clock. `final` marks the end of a finite source:
 * downstream closes every open window without waiting for the grace period.
 */
export const WatermarkSchema = z.object({
  v: z.literal(1),
  type: z.literal('watermark'),
  exchange: Exchange,
  pair: Pair,
  ts: EpochMs,
  final: z.boolean().optional(),
  /**
   * Live sources of exchanges that number trades (Kraken, Binance): ids of the pair not yet got, every trade up to `ts`
   * published but these — a gap whose refill failed, asked for again later (`PendingIds`). Said here so that what
   * keeps the minutes it closes (`Candle.refillFrom`) keeps them too, and a restart asks for them again.
   */
  pendingIds: PendingIdsSchema.optional(),
});
export type Watermark = z.infer<typeof WatermarkSchema>;

/** What flows on the `trades` topic. */
export const TradeEventSchema = z.discriminatedUnion('type', [TradeSchema, WatermarkSchema]);
export type TradeEvent = Trade | Watermark;
