import type { NewsItem } from '../schemas/news.ts';
import { normaliseUrl, titleKey } from './normalise.ts';

/**
 * Drops news already seen: the same id (guid), the same normalised URL, or a near-identical title (the same
 * words once punctuation, case and short words are gone — syndicated copies of one story). Bounded memory:
 * the most recent `capacity` keys of each kind.
 */
export class NewsDeduplicator {
  duplicates = 0;
  private readonly keys = new Set<string>();
  private readonly order: string[] = [];
  private readonly capacity: number;

  constructor(capacity = 50_000) {
    this.capacity = capacity;
  }

  accept(n: NewsItem): boolean {
    const keys = keysOf(n);
    if (keys.some((k) => this.keys.has(k))) {
      this.duplicates++;
      return false;
    }
    for (const k of keys) {
      this.keys.add(k);
      this.order.push(k);
    }
    while (this.order.length > this.capacity * 3) this.keys.delete(this.order.shift()!);
    return true;
  }

  /**
   * Takes back an item `accept` took (its publish failed): accepted again. Its keys were all new when it was accepted
   * (one seen key refuses an item), so no other item's are removed. Out of `order` as well: left there, the key accepted
   * again would be evicted at its first (older) place, early. Linear, but only on a failed publish.
   */
  forget(n: NewsItem): void {
    for (const k of keysOf(n)) {
      if (!this.keys.delete(k)) continue;
      const at = this.order.lastIndexOf(k);
      if (at >= 0) this.order.splice(at, 1);
    }
  }
}

function keysOf(n: NewsItem): string[] {
  return [`id:${n.id}`, `url:${normaliseUrl(n.url)}`, `title:${titleKey(n.title)}`].filter(
    (k) => !k.endsWith(':'),
  );
}
