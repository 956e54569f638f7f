import { log } from '../core/log.ts';
import { type Bus, HoldBatch, type Subscription } from '../runtime/bus.ts';
import { deadLetter } from '../schemas/dlq.ts';
import type { NewsItem } from '../schemas/news.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import { topics } from '../schemas/topics.ts';
import { SentimentError } from './labels.ts';
import { ScoringStopped, type SentimentScorer } from './scorer.ts';
import { signalsFor } from './signals.ts';

export interface NewsSignalServiceOptions {
  /**
   * An item that waited longer than this on the `news` topic is scored by the baseline instead of the LLM, so a
   * burst (or a slow model) costs signal quality, never freshness — unless the LLM's answer to its text is in the
   * scorer's cache (free). Default 60 s.
   */
  maxLagMs?: number;
  /**
   * The clock an item's wait is measured on. `wall` (default: live, and the services on Kafka): the time since the news
   * service took the item (or since its publish). `event` (a replay, which publishes recorded news in their event time
   * but many hours of it per second): the wait the item would have had live — from its fetch to when the model was
   * done with the items fetched before it, each taking the time it took here. On the wall clock a replay at full speed
   * put the LLM minutes behind and had the lexicon score nearly every item (655 of May 2022's 668 with a coin), though
   * live the model keeps up with that month (a new item every 35 min at the median, 0.2–1 s a text here).
   */
  clock?: 'wall' | 'event';
  group?: string;
  now?: () => number;
}

/**
 * `news` → sentiment per coin → `news.signals` (the LLM stage of the news feature pipeline).
 *
 * Never stops on an item: a failed or timed-out model call becomes a baseline signal flagged as such (the
 * scorer's fallback); an item with no text to score becomes a `dlq` entry with the reason. Offsets are committed
 * after the signals are published, so a restart re-scores at most one batch (the cache makes that cheap).
 */
export class NewsSignalService {
  readonly stats = { items: 0, signals: 0, baseline: 0, degraded: 0, rejects: 0 };
  private readonly bus: Bus;
  private readonly scorer: SentimentScorer;
  private readonly maxLagMs: number;
  private readonly clock: 'wall' | 'event';
  /** `clock: 'event'`: when (event time) the model is done with the items scored so far; an item waits for it. */
  private modelFreeAt = Number.NEGATIVE_INFINITY;
  private readonly group: string;
  private readonly now: () => number;
  private subscription: Subscription | undefined;

  constructor(bus: Bus, scorer: SentimentScorer, opts: NewsSignalServiceOptions = {}) {
    this.bus = bus;
    this.scorer = scorer;
    this.maxLagMs = opts.maxLagMs ?? 60_000;
    this.clock = opts.clock ?? 'wall';
    this.group = opts.group ?? 'news-signals';
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    await this.bus.ensureTopics([topics.news, topics.newsSignals, topics.dlq]);
    this.subscription = await this.bus.subscribe<NewsItem>({
      topic: topics.news,
      group: this.group,
      service: 'news-signals',
      from: 'earliest',
      handle: async (batch) => {
        const out: NewsSignal[] = [];
        // Counted once the batch's signals are published: a batch that fails comes again.
        const n = { items: 0, baseline: 0, degraded: 0, rejects: 0 };
        for (const r of batch.records) {
          const item = r.value;
          n.items++;
          const { lag, waited } = this.waitOf(item, r.timestamp);
          const degrade = !this.scorer.primary.baseline && lag > this.maxLagMs;
          try {
            const signals = await signalsFor(
              item,
              this.scorer,
              // The wait counts towards availability, so a signal is never dated before it existed.
              // The batch's signal ends the model call when the partition is lost (`Batch.signal`).
              degrade
                ? {
                    forceBaseline: `behind by ${Math.round(lag / 1000)} s${this.clock === 'event' ? ' of replay time' : ''} (limit ${this.maxLagMs / 1000} s)`,
                    waitedMs: waited,
                    signal: batch.signal,
                  }
                : { waitedMs: waited, signal: batch.signal },
            );
            // The model (or the lexicon) was busy with this item until its signals became available.
            for (const sig of signals) this.modelFreeAt = Math.max(this.modelFreeAt, sig.availableAt);
            if (signals.some((s) => s.baseline)) n.baseline++;
            // Degraded: scored by the baseline for its wait. Not when the scorer had the LLM's answer cached.
            if (degrade && signals.some((s) => s.baseline)) n.degraded++;
            out.push(...signals);
          } catch (err) {
            // The partition is lost to this member: its next owner scores the batch; nothing of it is published here.
            batch.signal.throwIfAborted();
            // A stop while the model answered (a scorer made with `whenStopped: 'throw'`): nothing of the batch is
            // published nor committed, so after the restart the model scores it (the answers it gave are cached) —
            // not the lexicon for good, as when the baseline answered what the stop left. Held, not failed: a stop
            // is no fault of the records (no poison count, one warning).
            if (err instanceof ScoringStopped)
              throw new HoldBatch('stopping: the batch is left uncommitted, to be scored after the restart');
            if (!(err instanceof SentimentError && err.kind === 'bad-input')) throw err;
            n.rejects++;
            await this.bus.publish(topics.dlq, [
              deadLetter({
                service: 'news-signals',
                origin: topics.news.name,
                kind: 'invalid',
                reason: err.message,
                payload: item,
                key: r.key,
                partition: r.partition,
                offset: r.offset,
              }),
            ]);
          }
        }
        // Lost while the last item was scored (a lexicon answer does not hear the signal): not published here either.
        batch.signal.throwIfAborted();
        if (out.length > 0) await this.bus.publish(topics.newsSignals, out);
        this.stats.signals += out.length;
        this.stats.items += n.items;
        this.stats.baseline += n.baseline;
        this.stats.degraded += n.degraded;
        this.stats.rejects += n.rejects;
        return undefined;
      },
    });
    log.info({ backend: this.scorer.primary.name, maxLagMs: this.maxLagMs }, 'news signals service started');
  }

  /**
   * How long the item has waited for the scorer: `lag`, compared with the limit, and `waited`, added to its
   * availability. Wall clock: `lag` on the topic; `waited` is the whole wait since the news service took the item —
   * the time before it reached the topic (publish retries while the broker was away) as well as the time on it (the
   * record's timestamp is the successful publish only, so a signal was stamped available up to the broker's outage
   * before it could exist). Event clock: both are the queue a live run would have had, in event time.
   */
  private waitOf(item: NewsItem, publishedTs: number): { lag: number; waited: number } {
    if (this.clock === 'event') {
      const waited = Math.max(0, this.modelFreeAt - item.fetchedAt);
      return { lag: waited, waited };
    }
    const lag = this.now() - publishedTs;
    const waited = Math.max(lag, item.receivedAt === undefined ? lag : this.now() - item.receivedAt);
    return { lag, waited };
  }

  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}
