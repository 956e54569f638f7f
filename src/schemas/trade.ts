import { z } from 'zod';
import { EpochMs, Exchange, Pair, PositiveFinite } from './common.ts';

/**
 * One executed trade, normalised from any exchange or file. `side` is the taker (aggressor) side;
 * `unknown` when the source does not say. Unique by (exchange, pair, tradeId).
 */
export const TradeSchema = z.object({
  v: z.literal(1),
  type: z.literal('trade'),
  exchange: Exchange,
  pair: Pair,
  price: PositiveFinite,
  qty: PositiveFinite,
  side: z.enum(['buy', 'sell', 'unknown']),
  tradeId: z.string().min(1).max(64),
  /** When the exchange executed the trade (event time). */
  tradeTs: EpochMs,
  /** When cryptocast received it (processing time). */
  receivedTs: EpochMs,
});
export type Trade = z.infer<typeof TradeSchema>;

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
});
export type Watermark = z.infer<typeof WatermarkSchema>;

/** What flows on the `trades` topic. */
export const TradeEventSchema = z.discriminatedUnion('type', [TradeSchema, WatermarkSchema]);
export type TradeEvent = Trade | Watermark;
