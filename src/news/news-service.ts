import { log } from '../core/log.ts';
import type { Bus } from '../runtime/bus.ts';
import { publishDurably, publishOrDeadLetter } from '../runtime/publish-durably.ts';
import type { DeadLetter } from '../schemas/dlq.ts';
import type { NewsItem } from '../schemas/news.ts';
import { topics } from '../schemas/topics.ts';
import { NewsDeduplicator } from './dedup.ts';
import type { NewsSink, NewsSource } from './source.ts';

/** Items of `news` read on start (its one partition): weeks of every feed's items, more than any feed lists. */
const NEWS_TAIL_RECORDS = 20_000;

/** News sources → deduplicated items on `news`, rejects on `dlq` (the news half of the feature pipelines). */
export class NewsService {
  readonly stats = { items: 0, duplicates: 0, rejects: 0, publishRetries: 0, linksDropped: 0 };
  private readonly bus: Bus;
  private readonly dedup = new NewsDeduplicator();
  private readonly now: () => number;

  constructor(bus: Bus, opts: { now?: () => number } = {}) {
    this.bus = bus;
    this.now = opts.now ?? Date.now;
  }

  async run(sources: readonly NewsSource[], signal: AbortSignal): Promise<void> {
    await this.bus.ensureTopics([topics.news, topics.dlq]);
    // What the topic already has is seen: a restarted service polls feeds that still list the items it published
    // before, stamped with a new fetch time — published again, they were scored again and counted twice in the news
    // features, the second copy "available" hours after the first.
    const tail = await this.bus.readTail(topics.news, NEWS_TAIL_RECORDS);
    for (const r of tail) this.dedup.accept(r.value);
    const sink: NewsSink = {
      // A source marks items seen (and a feed its ETag) once handed over: the hand-over only returns when they are
      // published, retried while the broker is away, so a Kafka restart neither stops a source nor loses its items.
      news: async (items: readonly NewsItem[]) => {
        // Stamped when taken: a publish retried while the broker is away delays the item before it reaches the
        // topic, and that delay must count towards its signals' availability (news-signal-service.ts).
        const receivedAt = this.now();
        const accepted = items.filter((n) => this.dedup.accept(n));
        this.stats.duplicates += items.length - accepted.length;
        if (accepted.length === 0) return;
        const fresh = accepted.map((n) => ({ ...n, receivedAt }));
        const out = new Set<NewsItem>();
        await publishOrDeadLetter(this.bus, topics.news, fresh, {
          source: 'news',
          service: 'news',
          signal,
          onRetry: this.onRetry,
          onRefused: () => this.stats.rejects++,
          // Counted as each goes out: a batch that throws half-way has published some.
          onPublished: (n) => {
            out.add(n);
            this.stats.items++;
          },
        }).catch((err: unknown) => {
          // Not published (a stop while the broker is away, a dead letter the bus refused too): taken back, as the
          // trade service does. Kept as seen, the same items fetched again (a feed's next poll, which does not keep
          // the ETag of a poll whose hand-over threw) were dropped as duplicates: lost. What went out stays seen.
          for (const n of fresh) if (!out.has(n)) this.dedup.forget(n);
          throw err;
        });
      },
      linksDropped: (count) => {
        this.stats.linksDropped += count;
      },
      reject: async (dl: DeadLetter) => {
        this.stats.rejects++;
        await publishDurably('news', signal, () => this.bus.publish(topics.dlq, [dl]), this.onRetry);
      },
    };
    const results = await Promise.allSettled(sources.map((s) => s.run(sink, signal)));
    for (const [i, r] of results.entries()) {
      if (r.status === 'rejected')
        log.error({ err: r.reason, source: sources[i]!.name }, 'news source stopped with an error');
    }
    // A source that failed (not one stopped by the signal) fails the service, so it exits non-zero and is restarted.
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined && failed.status === 'rejected' && !signal.aborted) throw failed.reason;
  }

  private readonly onRetry = () => {
    this.stats.publishRetries++;
  };
}
