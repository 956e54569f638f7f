/**
 * How to page Kraken's `Trades` (which pages by time, `since` in ns) without losing trades that share an instant —
 * one rule for the REST backfill (src/ingestion/backfill/kraken-rest.ts) and the live connector's refill.
 *
 * - Each page is asked from **1 ns before** the cursor (the newest trade's time), not from it: trades that share the
 *   instant (one taker order filling many makers) may straddle a page boundary, and if `since` is exclusive
 *   (unconfirmed) the rest of them would be skipped. Re-sent trades are the caller's to drop, by id.
 * - A page that brings nothing new holds only that instant's trades: asking from 1 ns before again would return it
 *   for ever, so the instant is asked **past once** (from the cursor itself). Nothing there is the end (the present);
 *   new trades there mean a whole page shared one instant, and any beyond that page at it cannot be asked for by time
 *   (`steppedPastFullInstant`: the caller warns).
 */
export class KrakenTimeCursor {
  #askingPast = false;
  #steppedPastFullInstant = false;

  /** The `since` to ask with, for a cursor (ns, decimal string); a cursor of 0 (the epoch) is asked as it is. */
  since(cursorNs: string): string {
    const c = BigInt(cursorNs);
    return this.#askingPast || c === 0n ? cursorNs : String(c - 1n);
  }

  /**
   * After a page of `total` trades, `fresh` of them new: `next` (move the cursor to the page's last trade and go on),
   * `again` (the same cursor, asked past its instant) or `end` (nothing more to ask for).
   */
  after(total: number, fresh: number): 'next' | 'again' | 'end' {
    this.#steppedPastFullInstant = this.#askingPast && fresh > 0;
    if (total === 0 || (fresh === 0 && this.#askingPast)) return 'end';
    this.#askingPast = fresh === 0;
    return this.#askingPast ? 'again' : 'next';
  }

  /** The page just read came from asking past an instant that filled a whole page: trades at it may be missing. */
  get steppedPastFullInstant(): boolean {
    return this.#steppedPastFullInstant;
  }
}

export const STEPPED_PAST_FULL_INSTANT =
  'a whole page of trades shares one instant: stepped past it (trades beyond that page at that instant, if any, are not fetched: Kraken pages by time alone)';

/**
 * What a warning of an instant stepped past says besides (`sinceNs`: the cursor asked past it): the instant, and how many
 * trades of it were not fetched — the ids between the newest before (`maxIdBefore`) and the first of the page after it
 * (Kraken numbers a pair's trades consecutively).
 */
export function steppedPastInstant(
  sinceNs: string,
  maxIdBefore: number,
  pageAfter: readonly { tradeId: string }[],
): { instant: string; notFetched: number | 'unknown' } {
  let first = Number.POSITIVE_INFINITY;
  for (const t of pageAfter) first = Math.min(first, Number(t.tradeId));
  const ms = Number(BigInt(sinceNs) / 1_000_000n);
  return {
    instant: new Date(ms).toISOString(),
    notFetched:
      Number.isSafeInteger(first) && maxIdBefore >= 0 ? Math.max(0, first - maxIdBefore - 1) : 'unknown',
  };
}
