import { randomUUID } from 'node:crypto';
import { normaliseUrl } from '../news/normalise.ts';
import { type Bus, offsetsAfter, type Subscription } from '../runtime/bus.ts';
import type { NewsItem } from '../schemas/news.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import { topics } from '../schemas/topics.ts';

export interface NewsEntry {
  id: string;
  title: string;
  url: string | null;
  source: string;
  publishedAt: number;
  /** One signal per coin the item mentions (score −1…1, label, confidence, model). */
  signals: Pick<
    NewsSignal,
    'coin' | 'score' | 'label' | 'confidence' | 'model' | 'baseline' | 'availableAt'
  >[];
}

/**
 * The latest news with their sentiment, for the dashboard: the `news` items and their `news.signals`, joined by news
 * id, the newest `size` kept. Empty when the news pipeline does not run.
 */
export class NewsView {
  private readonly items = new Map<string, NewsEntry>();
  private readonly pending = new Map<string, NewsEntry['signals']>();
  private readonly size: number;
  private readonly subscriptions: Subscription[] = [];

  constructor(size = 100) {
    this.size = size;
  }

  addItem(n: NewsItem): void {
    const e: NewsEntry = {
      id: n.id,
      title: n.title,
      // Ingestion keeps http(s) links only; items the topic holds from before it did are served without theirs.
      url: normaliseUrl(n.url) === '' ? null : n.url,
      source: n.source,
      publishedAt: n.publishedAt,
      signals: this.items.get(n.id)?.signals ?? this.pending.get(n.id) ?? [],
    };
    this.pending.delete(n.id);
    this.items.set(n.id, e);
    if (this.items.size > this.size) {
      const oldest = [...this.items.values()].sort((a, b) => a.publishedAt - b.publishedAt)[0]!;
      this.items.delete(oldest.id);
    }
  }

  addSignal(s: NewsSignal): void {
    const sig = {
      coin: s.coin,
      score: s.score,
      label: s.label,
      confidence: s.confidence,
      model: s.model,
      baseline: s.baseline,
      availableAt: s.availableAt,
    };
    const e = this.items.get(s.newsId);
    const list = e ? e.signals : (this.pending.get(s.newsId) ?? []);
    const i = list.findIndex((x) => x.coin === s.coin);
    if (i >= 0) list[i] = sig;
    else list.push(sig);
    if (!e) {
      this.pending.set(s.newsId, list);
      if (this.pending.size > this.size * 10) this.pending.delete(this.pending.keys().next().value!);
    }
  }

  latest(limit = 50): NewsEntry[] {
    return [...this.items.values()].sort((a, b) => b.publishedAt - a.publishedAt).slice(0, limit);
  }

  async start(bus: Bus): Promise<void> {
    await bus.ensureTopics([topics.news, topics.newsSignals]);
    const group = `api-news-${randomUUID().slice(0, 8)}`;
    const items = await bus.readTail(topics.news, this.size);
    for (const r of items) this.addItem(r.value);
    const signals = await bus.readTail(topics.newsSignals, this.size * 3);
    for (const r of signals) this.addSignal(r.value);
    // Each topic followed from where its read ended (a partition the read found empty: from its start), not "from
    // latest" before the reads: on Kafka "latest" is fixed when the group is assigned the partitions, which a late
    // join or a rebalance puts after the read, and an item or signal published in between was never shown.
    this.subscriptions.push(
      await bus.subscribe({
        topic: topics.news,
        group,
        from: 'earliest',
        startAt: offsetsAfter(items),
        service: 'api',
        handle: (b) => {
          for (const r of b.records) this.addItem(r.value);
          return undefined;
        },
      }),
      await bus.subscribe({
        topic: topics.newsSignals,
        group: `${group}-signals`,
        from: 'earliest',
        startAt: offsetsAfter(signals),
        service: 'api',
        handle: (b) => {
          for (const r of b.records) this.addSignal(r.value);
          return undefined;
        },
      }),
    );
  }

  async stop(): Promise<void> {
    for (const s of this.subscriptions) await s.stop();
  }
}
