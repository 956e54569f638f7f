import { ByPair } from '../core/by-pair.ts';
import type { Trade } from '../schemas/trade.ts';

/** Ids tracked per (exchange, pair): covers a websocket gap refilled over REST of up to ~1M trades. */
const WINDOW_BITS = 1 << 20;

/**
 * Drops trades already seen, by (exchange, pair, tradeId), in bounded memory.
 *
 * Exchanges number trades with increasing integers (Kraken v2, Binance, Coinbase): for those a sliding
 * bitmap of the last `WINDOW_BITS` ids (128 KiB per pair) answers "seen?" exactly, in O(1), for any overlap
 * between a websocket and a REST backfill of a gap. An id older than the window cannot be checked: it is
 * accepted and counted in `unverifiable` (never silently dropped). Non-numeric ids (synthesised ones in
 * some files) fall back to a set of the most recent `capacity` ids.
 */
export class TradeDeduplicator {
  duplicates = 0;
  unverifiable = 0;
  private readonly capacity: number;
  /** Per exchange and pair: the window of numeric ids, or the recent set of other ids (made on first use). */
  private readonly seen = new ByPair<{ numeric?: NumericWindow; other?: RecentSet }>(() => ({}));

  constructor(capacity = 100_000) {
    this.capacity = capacity;
  }

  /** Returns the trades not seen before, in their original order. */
  filter(trades: readonly Trade[]): Trade[] {
    const out: Trade[] = [];
    for (const t of trades) if (this.accept(t)) out.push(t);
    return out;
  }

  accept(t: Trade): boolean {
    const seen = this.seen.get(t.exchange, t.pair);
    const id = Number(t.tradeId);
    let ok: boolean;
    if (Number.isSafeInteger(id) && id >= 0) {
      seen.numeric ??= new NumericWindow();
      const r = seen.numeric.add(id);
      if (r === 'old') this.unverifiable++;
      ok = r !== 'seen';
    } else {
      seen.other ??= new RecentSet(this.capacity);
      ok = seen.other.add(t.tradeId);
    }
    if (!ok) this.duplicates++;
    return ok;
  }

  /**
   * Marks the numeric ids `from`..`to` of a pair seen (those within the window below the newest id seen; none counted
   * as duplicates): trades an earlier process took, which a refetch would otherwise deliver again.
   */
  seenRange(exchange: string, pair: string, from: number, to: number): void {
    const seen = this.seen.get(exchange, pair);
    seen.numeric ??= new NumericWindow();
    for (let id = Math.max(from, to - WINDOW_BITS + 1, 0); id <= to; id++) seen.numeric.add(id);
  }

  /**
   * Takes back an `accept` of `t`: it counts as not seen again. For a trade accepted but not delivered (the sink
   * refused it): kept as seen, it would be dropped as a duplicate when fetched again — lost.
   */
  forget(t: Trade): void {
    const seen = this.seen.get(t.exchange, t.pair);
    const id = Number(t.tradeId);
    if (Number.isSafeInteger(id) && id >= 0) seen.numeric?.forget(id);
    else seen.other?.forget(t.tradeId);
  }
}

/**
 * REST rows dead-lettered, remembered to dead-letter each once (`RecentSet` of their reject texts, which carry the row):
 * pages overlap by design — Kraken's asked from 1 ns before the last page's newest instant, Coinbase's ending at the
 * second of the last page's oldest row — and a hole attempt asks for rows again, so a malformed row came once per page
 * that carried it. ~300 bytes each at most: ~3 MB.
 */
export const REJECTED_ROWS_KEPT = 10_000;

class NumericWindow {
  private readonly bits = new Uint32Array(WINDOW_BITS >>> 5);
  private max = -1;

  add(id: number): 'new' | 'seen' | 'old' {
    if (id > this.max) {
      // Ids between the old max and this one are not seen yet: clear their (reused) slots.
      if (this.max >= 0) {
        if (id - this.max >= WINDOW_BITS) this.bits.fill(0);
        else for (let i = this.max + 1; i < id; i++) this.clear(i);
      }
      this.max = id;
      this.set(id);
      return 'new';
    }
    if (id <= this.max - WINDOW_BITS) return 'old';
    if (this.test(id)) return 'seen';
    this.set(id);
    return 'new';
  }

  /** Clears `id` (within the window; the newest id seen stays the window's top). */
  forget(id: number): void {
    if (id <= this.max && id > this.max - WINDOW_BITS) this.clear(id);
  }

  private slot(id: number): number {
    return id & (WINDOW_BITS - 1);
  }
  private set(id: number): void {
    const s = this.slot(id);
    this.bits[s >>> 5]! |= 1 << (s & 31);
  }
  private clear(id: number): void {
    const s = this.slot(id);
    this.bits[s >>> 5]! &= ~(1 << (s & 31));
  }
  private test(id: number): boolean {
    const s = this.slot(id);
    return (this.bits[s >>> 5]! & (1 << (s & 31))) !== 0;
  }
}

/**
 * The most recent `capacity` keys, FIFO: the ids of trades without a numeric one here, and the REST rows a refill or a
 * backfill dead-lettered (the same row comes again in the overlap of two pages: `REJECTED_ROWS_KEPT`).
 */
export class RecentSet {
  private readonly seen = new Set<string>();
  private readonly ring: string[] = [];
  private head = 0;
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** False if `id` is among the recent ones (nothing changes then); else it is added. */
  add(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.ring.length < this.capacity) this.ring.push(id);
    else {
      this.seen.delete(this.ring[this.head]!);
      this.ring[this.head] = id;
      this.head = (this.head + 1) % this.capacity;
    }
    return true;
  }

  /**
   * Not seen any more. Its place in the ring stays until its turn to leave: taken again meanwhile, it leaves then —
   * early, and a later duplicate of it gets through (the sink deduplicates too).
   */
  forget(id: string): void {
    this.seen.delete(id);
  }

  /**
   * `send` for a key not among the recent ones, which it then is — unless `send` throws (not sent: the key is
   * forgotten, so it is sent when it comes again). The REST rows a refill or a backfill dead-letters, each once.
   */
  async once(id: string, send: () => Promise<void> | void): Promise<void> {
    if (!this.add(id)) return;
    try {
      await send();
    } catch (err) {
      this.forget(id);
      throw err;
    }
  }
}
