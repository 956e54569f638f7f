import type { DeadLetter } from '../schemas/dlq.ts';
import type { NewsItem } from '../schemas/news.ts';

/** Where a news source delivers (validated, normalised items) and where its rejects go. */
export interface NewsSink {
  news(items: readonly NewsItem[]): Promise<void> | void;
  reject(dl: DeadLetter): Promise<void> | void;
  /** Items delivered without the link their source gave: not an http(s) URL (`normaliseUrl`). Counted. */
  linksDropped?(count: number): void;
}

export interface NewsSource {
  readonly name: string;
  /** Until exhausted (recordings) or aborted (feeds). Never throws for a bad item or a failed poll. */
  run(sink: NewsSink, signal: AbortSignal): Promise<void>;
}

/**
 * Largest feed body read. Real feeds are well under 1 MB (CoinDesk's is about 200 KB); without a bound a broken or
 * hostile server's endless body was buffered until the 20 s timeout, and a large one parsed whole.
 */
export const MAX_FEED_BYTES = 8 * 1024 * 1024;

/**
 * Longest wait between polls, whatever a feed's ttl or Retry-After says: a day. Past 2^31 − 1 ms (24.8 days) Node's
 * timers wait 1 ms instead, so a Retry-After of years (or a ttl of 36,000 minutes) made a source poll without pause.
 */
export const MAX_POLL_WAIT_MS = 86_400_000;
