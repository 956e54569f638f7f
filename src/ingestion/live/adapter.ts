import type { Logger } from '../../core/log.ts';
import type { Backoff } from '../../core/retry.ts';
import type { Trade } from '../../schemas/trade.ts';
import type { Parsed } from './parse-common.ts';

/**
 * What one exchange contributes to a live connector (`LiveTradeSource` does the rest): where to connect,
 * how to subscribe, how to parse frames, and how to fetch a stretch of missed trades over REST.
 */
export interface ExchangeAdapter {
  /** Exchange id on every trade (`kraken`, `binance`, `coinbase`). */
  readonly exchange: string;
  readonly url: string;
  /** Trade ids are consecutive integers per pair (Kraken v2, Binance): a jump is a gap. */
  readonly contiguousIds: boolean;
  /** Whether subscribe acks name their pairs (Kraken, Coinbase); if not (Binance), an ack covers all. */
  readonly acksNamePairs: boolean;
  /** No frame at all for this long ⇒ the connection is dead. Must exceed the exchange's heartbeat period. */
  readonly idleTimeoutMs: number;
  readonly appPing?: { intervalMs: number; frame(): string };
  subscribeFrames(pairs: readonly string[]): string[];
  parse(text: string, receivedTs: number): Parsed;
  /** Fetches trades that may have been missed (see `RefillRequest`); absent where no REST history exists. */
  refill?(req: RefillRequest): Promise<RefillResult>;
}

export interface RefillRequest {
  pair: string;
  /** Highest trade id already delivered for the pair (contiguous-id exchanges), if any. */
  afterId?: number;
  /** Event time from which trades may be missing (last trade's time, else last watermark, else start). */
  sinceTs: number;
  /** First id received after an id gap (exclusive bound); undefined: refill up to now. */
  untilId?: number;
  /** End of a time-window refill (a hole asked for again: where the stream took over); undefined: up to now. */
  untilTs?: number;
  /** REST retries of this refill, instead of `restRetries` (a hole asked for again: one attempt, see `holeRetry`). */
  retries?: number;
  signal: AbortSignal;
  log: Logger;
  /**
   * Where an adapter hands each page, oldest first (each page's new trades newer than the page before's), before asking
   * for the next, keeping none: a refill then holds one page at a time, however long the outage (they used to be kept
   * to its end: ~130 MB at 500 pages). Kraken and Binance by id page forward; Coinbase, and Binance for a pair with no
   * trade yet, whose REST APIs page backwards from the newest, first walk back to the refill's start keeping only where
   * each page was (`seekLimit`), then ask for the pages again oldest first. What it hands over is not in its
   * `RefillResult.trades`. Absent, every trade is in the result.
   */
  onPage?(page: RefillPage): Promise<void>;
  /**
   * Most pages this call reads, instead of `maxRefillPages`: an adapter that hands its pages over (`onPage`) stops there
   * and says whether more were left (`RefillResult.more`), so that the connector asks for the rest later, the
   * connection's frames handled in between. Others read their whole refill.
   */
  maxPages?: number;
  /** Where a refill stopped at `maxPages` goes on from (its `RefillResult.more`, handed back as it was). */
  goOnFrom?: unknown;
}

/** One page of a refill: its trades not yet seen by the refill, and the rows that could not be used. */
export interface RefillPage {
  trades: Trade[];
  rejects: string[];
}

export interface RefillResult {
  /** The trades fetched and not handed to `onPage`. */
  trades: Trade[];
  /** Rows the REST API returned that could not be used. */
  rejects: string[];
  /** False when the adapter knows it could not reach the end of the range (page limit, API limits, a failure). */
  complete: boolean;
  /** The REST failure that ended the refill early, if one did: `trades` holds the pages fetched before it. */
  error?: unknown;
  /**
   * A time-window refill (Coinbase) that handed pages over oldest first (`onPage`): the newest trade time handed over,
   * in this call or an earlier turn. Ended early, what it did not get is after it (and before `trades`, if any).
   */
  handedUpTo?: number;
  /**
   * Trades it knows it could not fetch besides (Coinbase: the older part of a second of more than a page, stepped past):
   * counted `unrecoverable` with the refill.
   */
  lost?: number;
  /**
   * Stopped at `RefillRequest.maxPages` with more to read (`complete` false, no error): where to go on from, opaque to
   * the connector (the adapter's paging state: Kraken's cursor is finer than any trade time the connector keeps).
   */
  more?: unknown;
}

/** `LiveSourceOptions.maxRefillPages` by default. */
export const DEFAULT_MAX_REFILL_PAGES = 500;

/**
 * How many pages back a refill that pages backwards (Coinbase, Binance for a pair with no trade yet) walks to find its
 * start, of `maxPages` in all: it reads the pages it walked past again, oldest first, so walk and read fit in the whole
 * refill's budget (the newest page, kept from the walk, and the oldest, handed over where the walk ends, are read once).
 * Past it, the walk stops there: what is older is not refilled, counted `unrecoverable`.
 */
export function seekLimit(maxPages: number): number {
  return Math.max(1, Math.floor((maxPages + 2) / 2));
}

/**
 * Runs a refill's paging into `out` (or `onPage`); a REST call that fails for good ends it incomplete, keeping the pages
 * already fetched (thrown away with the error, they would be lost for good where the exchange keeps only recent trades).
 * Stopping (`signal`) still throws: nothing more is delivered then.
 */
export async function keepingFetchedPages(
  out: RefillResult,
  signal: AbortSignal,
  paging: () => Promise<unknown>,
): Promise<RefillResult> {
  try {
    await paging();
  } catch (err) {
    if (signal.aborted) throw err;
    out.complete = false;
    out.error = err;
  }
  return out;
}

/**
 * The longest `Retry-After` a refill waits out: it holds the connection's frames (every pair's trades and watermarks)
 * while it waits, so a longer one — an IP ban of minutes to days (Binance's 418) — ends the refill at once, what it had
 * fetched delivered and the rest counted unrecoverable, and the stream goes on.
 */
export const REFILL_MAX_RETRY_AFTER_MS = 60_000;

/** Options shared by every live connector. */
export interface LiveSourceOptions {
  /** Canonical pairs (`BTC/USD`) to follow. */
  pairs: readonly string[];
  /** How often a watermark per pair is sent (default 1 000 ms). */
  watermarkIntervalMs?: number;
  /** Watermark = wall clock − this (default 2 000 ms): room for exchange latency and clock skew. */
  watermarkDelayMs?: number;
  /** Reconnect back-off (default 500 ms doubling to 30 s). */
  backoff?: Backoff;
  /** Overrides the exchange's default liveness deadline. */
  idleTimeoutMs?: number;
  /** Back-off of REST retries while refilling (default 1 s doubling to 60 s). */
  restBackoff?: Backoff;
  /** REST retries before a refill gives up (default 8). */
  restRetries?: number;
  /**
   * A time-window refill (Coinbase) that failed (the REST API down), or ids an id refill (Kraken, Binance) did not get
   * (the REST API down, or its history behind the stream's), leave a hole the stream has gone past: it is asked
   * for again after `backoff` (growing, with jitter), one REST attempt each time so the stream is never held long,
   * up to `attempts` times, then given up (default 30 s doubling to 5 min, 8 attempts: about half an hour, while
   * the exchange still lists those trades).
   */
  holeRetry?: { backoff: Backoff; attempts: number };
  /**
   * Most bytes of frames waiting to be handled — behind a refill retrying a REST API that is down (minutes per pair),
   * or a slow sink — before the connection is cut; those already queued are handled, what the cut connection would
   * have brought is refilled on reconnecting (`stats.queueOverflows`). Default 32 MiB.
   */
  maxQueuedBytes?: number;
  /**
   * Most REST pages one refill may read (default 500, i.e. up to ~500 000 trades), delivered one by one
   * (`RefillRequest.onPage`), a few at a time with the connection's frames handled in between (`REFILL_PAGES_PER_TURN`).
   * Coinbase's, and Binance's for a pair with no trade yet, walk back first and read their pages twice: they reach
   * about half as far back (`seekLimit`).
   */
  maxRefillPages?: number;
  /**
   * A pair neither acknowledged nor refused this long after subscribing (and every frame received read) ⇒ it alone is
   * subscribed again on the same connection, after a back-off, the other pairs streaming on (default 10 000 ms).
   */
  ackTimeoutMs?: number;
  log?: Logger;
  /**
   * The connector's clock: its watermarks' event time, the subscription time-outs and back-offs, the hole retries'
   * back-off (default `Date.now`; tests inject one). Refill windows stay on the wall clock: they are compared with the
   * exchange's trade times.
   */
  now?: () => number;
  /** Jitter source for the reconnect back-off (tests). */
  random?: () => number;
}
