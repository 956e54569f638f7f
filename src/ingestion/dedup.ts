import type { Trade } from '../schemas/trade.ts';

/**
 * Drops trades already seen, by (exchange, pair, tradeId). Memory is bounded: per (exchange, pair) it keeps
 * the most recent `capacity` ids, which covers any overlap between a websocket and a REST backfill of a gap
 * (both are recent). Duplicates older than that window are, by construction, not expected.
 */
export class TradeDeduplicator {
  private readonly seen = new Map<string, Set<string>>();
  private readonly order = new Map<string, string[]>();
  private readonly heads = new Map<string, number>();
  private readonly capacity: number;
  duplicates = 0;

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
    const k = t.exchange + '|' + t.pair;
    let set = this.seen.get(k);
    let ring = this.order.get(k);
    if (!set || !ring) {
      set = new Set();
      ring = [];
      this.seen.set(k, set);
      this.order.set(k, ring);
      this.heads.set(k, 0);
    }
    if (set.has(t.tradeId)) {
      this.duplicates++;
      return false;
    }
    set.add(t.tradeId);
    if (ring.length < this.capacity) ring.push(t.tradeId);
    else {
      const head = this.heads.get(k)!;
      set.delete(ring[head]!);
      ring[head] = t.tradeId;
      this.heads.set(k, (head + 1) % this.capacity);
    }
    return true;
  }
}
