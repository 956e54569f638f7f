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
    const keys = [`id:${n.id}`, `url:${normaliseUrl(n.url)}`, `title:${titleKey(n.title)}`].filter(
      (k) => !k.endsWith(':'),
    );
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
}
