import { z } from 'zod';
import { EpochMs, Exchange, Pair } from './common.ts';
import { PendingIdsSchema } from './trade.ts';

export const INTERVALS = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000 } as const;
export type Interval = keyof typeof INTERVALS;
export const IntervalSchema = z.enum(['1m', '5m', '15m', '1h']);

/**
 * An OHLCV candle for the half-open event-time window [windowStart, windowEnd).
 * `filled` = no trade in the window: open = high = low = close = previous close, volume 0, vwap = close.
 * `revision` > 0 only under the `revise` late-trade policy: a re-emission that includes late trades.
 */
/** A candle's fields (`CandleSchema` adds the checks across them). */
const CandleFields = z.object({
  v: z.literal(1),
  exchange: Exchange,
  pair: Pair,
  interval: IntervalSchema,
  windowStart: EpochMs,
  windowEnd: EpochMs,
  open: z.number().finite().positive(),
  high: z.number().finite().positive(),
  low: z.number().finite().positive(),
  close: z.number().finite().positive(),
  volume: z.number().finite().nonnegative(),
  /** Trade count; absent for candles imported from OHLCV sources that do not give it. */
  trades: z.number().int().nonnegative().optional(),
  /** Volume-weighted average price; absent when the source does not give it. */
  vwap: z.number().finite().positive().optional(),
  filled: z.boolean(),
  revision: z.number().int().nonnegative(),
  /**
   * Set by the candle service: the offset of the last `trades` record it had read when it emitted this candle (every
   * trade in the candle is at or before it). A restarted service takes the largest of a partition's pairs as where
   * the earlier run had read to: a trade after it is new (docs/time-semantics.md). Absent elsewhere (imports, stores).
   */
  inputOffset: z.number().int().nonnegative().optional(),
  /**
   * Set by the candle service under the `revise` late policy on a traded candle: what a restarted service needs to
   * revise it with a late trade (docs/time-semantics.md) — the event times of the trades that gave `open` and `close`
   * (a later trade before the first is the new open, one at or after the last the new close) and the window's exact
   * sums of qty and of price × qty (`volume` above is rounded). Kept by the candles store (`cryptocast run` restarted
   * takes its minutes back from there). Absent elsewhere (filled candles, `dlq`, imports).
   */
  revisable: z
    .object({
      openTs: EpochMs,
      closeTs: EpochMs,
      volume: z.number().finite().nonnegative(),
      quoteVolume: z.number().finite().nonnegative(),
    })
    .optional(),
  /**
   * Set by the candle service of `cryptocast run --source live` (`CandleServiceOptions.closingTradeIds`): the ids of
   * the window's trades whose event time is in its last `REFILL_OVERLAP_MS`, the second a restart refill asks for
   * again. Kept by the candles store: the run restarted on it marks them seen, so of that second it takes again
   * exactly the trades the earlier process did not take (docs/time-semantics.md). Absent elsewhere (Kafka, whose
   * `trades` log keeps the ids; imports; stores written before it).
   */
  closingTradeIds: z.array(z.string()).optional(),
  /**
   * Set with `closingTradeIds`: where the pair's trades stood when this candle was emitted (the candle stage's stream
   * time `asOf`), for a restart's refill: the newest trade id and time taken in the minutes closed so far, the ids
   * of the second up to that time (`REFILL_OVERLAP_MS`: a refill by time asks for it again), and the ids the live
   * source had not yet got (`Watermark.pendingIds`). A restart from the newest stored minute's end alone lost a
   * trade of an earlier minute the earlier process had lost itself (a frame lost and not yet noticed, a gap waiting
   * for its retry); from here its refill asks for them (docs/connectors.md, "restart").
   */
  refillFrom: z
    .object({
      asOf: EpochMs,
      lastId: z.number().int().nonnegative().optional(),
      lastTs: EpochMs.optional(),
      recentIds: z.array(z.string()),
      pendingIds: PendingIdsSchema.optional(),
    })
    .optional(),
});

export const CandleSchema = CandleFields.refine((c) => c.windowEnd > c.windowStart, {
  message: 'windowEnd must be after windowStart',
}).refine(
  (c) => c.high >= c.low && c.high >= Math.max(c.open, c.close) && c.low <= Math.min(c.open, c.close),
  {
    message: 'impossible OHLC: need low <= open, close <= high',
  },
);
export type Candle = z.infer<typeof CandleSchema>;

/**
 * A candle as the API serves it (`/v1/candles`, the `candles` WebSocket channel): without the restart bookkeeping of
 * `cryptocast run` (`closingTradeIds`, `refillFrom`: up to thousands of trade ids per candle, of no use to a reader).
 */
export const PublicCandleSchema = CandleFields.omit({ closingTradeIds: true, refillFrom: true });
export type PublicCandle = z.infer<typeof PublicCandleSchema>;

export function publicCandle(c: Candle): PublicCandle {
  const { closingTradeIds: _ids, refillFrom: _from, ...rest } = c;
  return rest;
}

/** The CSV columns of `cryptocast candles` (a stable contract). */
export const CANDLE_CSV_COLUMNS = [
  'pair',
  'windowStart',
  'windowEnd',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'trades',
  'vwap',
  'filled',
] as const;
