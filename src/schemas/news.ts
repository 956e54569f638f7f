import { z } from 'zod';
import { EpochMs } from './common.ts';

/**
 * A news item, normalised from any source. `publishedAt` is what the publisher claims (cut to `fetchedAt` when later); `fetchedAt` is when
 * cryptocast first saw it — the earliest moment it could have been used (point-in-time joins key on that, or later).
 */
export const NewsItemSchema = z.object({
  v: z.literal(1),
  /** Stable id: the feed's guid, else the normalised URL, hashed. */
  id: z.string().min(1).max(128),
  source: z.string().min(1).max(64),
  title: z.string().min(1).max(1_000),
  summary: z.string().max(10_000),
  url: z.string().max(2_000),
  publishedAt: EpochMs,
  fetchedAt: EpochMs,
  /**
   * When the news service took the item from its source, on its clock (absent on items published otherwise: a candle
   * replay). The time from here to the `news` topic — publish retries while the broker is away — is part of the wait
   * that `availableAt` counts (the record's timestamp is only the successful publish).
   */
  receivedAt: EpochMs.optional(),
  /** Coin tickers the text mentions (BTC, ETH, …), upper case, sorted. */
  coins: z.array(z.string().regex(/^[A-Z0-9]{2,10}$/)),
});
export type NewsItem = z.infer<typeof NewsItemSchema>;
