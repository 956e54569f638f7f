import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { orAbort } from '../core/or-abort.ts';
import type { Bus, Subscription } from '../runtime/bus.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { NewsSignal } from '../schemas/news-signal.ts';
import { topics } from '../schemas/topics.ts';
import { NEWS_COLUMNS, NewsFeatures } from './news.ts';
import type { FeatureSetDefinition, FeatureStore } from './store/store.ts';
import { FEATURE_COLUMNS, FEATURE_SET } from './technical.ts';

export const TECHNICAL_SET: FeatureSetDefinition = {
  ...FEATURE_SET,
  columns: FEATURE_COLUMNS,
  source: 'candles 1m → src/features/technical.ts (trading-signals)',
};

/** Per-coin news sentiment as of each candle's end, stored beside the technical set (same pair and windowEnd). */
export const NEWS_SET: FeatureSetDefinition = {
  name: 'news_sentiment',
  version: 1,
  columns: NEWS_COLUMNS,
  source: 'news.signals → src/features/news.ts (EWM by availability time)',
};

/** BTC/USD → BTC (Kraken's XBT is BTC). */
export const coinOf = (pair: string): string => {
  const base = pair.split('/')[0]!;
  return base === 'XBT' ? 'BTC' : base;
};

/**
 * `features` topic → feature store (offline history + online latest). The store write is idempotent and the
 * offsets are committed after it, so a crash re-writes at most a batch, never loses one.
 */
export class FeatureWriter {
  readonly stats = { written: 0, skipped: 0, signals: 0, newsRows: 0 };
  private readonly bus: Bus;
  private readonly store: FeatureStore;
  private subscription: Subscription | undefined;

  private readonly group: string;
  /** The newest offset per partition whose records are in `stats.written` or `stats.skipped`. */
  private readonly counted = new Map<number, bigint>();

  private readonly withNews: boolean;
  private newsSubscription: Subscription | undefined;
  /** Signals seen so far per coin, and the news feature state per exchange|pair (whose windowEnds only go forward). */
  private readonly signalsByCoin = new Map<string, NewsSignal[]>();
  private readonly newsByPair = new Map<string, NewsFeatures>();
  /**
   * `newsId|coin` of the signals taken: an article on `news` twice (scored twice) counts once, its first signal — as
   * in the batch computation (`cryptocast features --news`), whose items are deduplicated.
   */
  private readonly signalKeys = new Set<string>();

  /**
   * With `holdNews`, a vector's news row waits until `newsKnownUntil` says every signal available by its end has
   * arrived (a replay that plays faster than the LLM scores says so as the news stage catches up); without it, the
   * row is written with the signals at hand (live: they are published long before a candle closes).
   */
  private readonly holdNews: boolean;
  private readonly heldNews: FeatureVectorRecord[] = [];
  private newsWrites: Promise<void> = Promise.resolve();

  constructor(
    bus: Bus,
    store: FeatureStore,
    group = 'feature-writer',
    opts: { news?: boolean; holdNews?: boolean } = {},
  ) {
    this.bus = bus;
    this.store = store;
    this.group = group;
    this.withNews = opts.news ?? false;
    this.holdNews = this.withNews && (opts.holdNews ?? false);
  }

  async start(): Promise<void> {
    await this.store.migrate(TECHNICAL_SET);
    if (this.withNews) await this.startNews();
    this.subscription = await this.bus.subscribe<FeatureVectorRecord>({
      topic: topics.features,
      group: this.group,
      service: 'feature-writer',
      from: 'earliest',
      handle: async (batch) => {
        const isMine = (v: FeatureVectorRecord) =>
          v.featureSet === TECHNICAL_SET.name && v.featureSetVersion === TECHNICAL_SET.version;
        const mine = batch.records.map((r) => r.value).filter(isMine);
        // The partition given back meanwhile (`Batch.signal`: its next owner reads the batch again): nothing written.
        batch.signal.throwIfAborted();
        // A slow store (PostgreSQL waits up to its query timeout) must not hold a rebalance: the wait ends once the
        // batch is given back.
        await orAbort(this.store.write(TECHNICAL_SET, mine), batch.signal);
        // Counted once stored, each record once: the news write below may fail after this one committed (a full disk
        // stops `cryptocast run` there, which reports these counts), and the batch then comes again.
        const counted = this.counted.get(batch.partition) ?? -1n;
        for (const r of batch.records)
          if (r.offset > counted) {
            if (isMine(r.value)) this.stats.written++;
            else this.stats.skipped++;
          }
        const last = batch.records.at(-1)!.offset;
        if (last > counted) this.counted.set(batch.partition, last);
        if (this.holdNews) this.heldNews.push(...mine);
        else if (this.withNews) {
          const rows = this.newsRows(mine);
          try {
            batch.signal.throwIfAborted();
            await orAbort(this.store.write(NEWS_SET, rows), batch.signal);
          } catch (err) {
            this.forgetNewsClocks(mine); // the re-delivered batch makes these rows again
            throw err;
          }
          this.stats.newsRows += rows.length;
        }
        return undefined;
      },
    });
  }

  /**
   * The news half: every signal of `news.signals` is kept in memory (hundreds an hour) and the subscription never
   * commits, so a restart re-reads the topic and rebuilds the exact state. A signal counts for a candle when it was
   * available by the candle's end and had reached this writer when the candle's vector was written; in live
   * operation signals are published long before the candle closes plus its grace, so the two agree (the batch path,
   * `cryptocast features --news`, is exact by construction).
   */
  private async startNews(): Promise<void> {
    await this.store.migrate(NEWS_SET);
    await this.bus.ensureTopics([topics.newsSignals]);
    this.newsSubscription = await this.bus.subscribe<NewsSignal>({
      topic: topics.newsSignals,
      // Every writer needs every signal (its pairs' news rows are made from all of them): a group of its own, as the
      // API's feeds. A group shared by the replicas would give the topic's one partition to one of them, and the
      // others would store news rows with no signal at all.
      group: `${this.group}-news-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      service: 'feature-writer',
      from: 'earliest',
      handle: (batch) => {
        for (const r of batch.records) {
          const s = r.value;
          const key = `${s.newsId}|${s.coin}`;
          if (this.signalKeys.has(key)) continue;
          this.signalKeys.add(key);
          this.stats.signals++;
          const list = this.signalsByCoin.get(s.coin) ?? [];
          list.push(s);
          this.signalsByCoin.set(s.coin, list);
          for (const [key, f] of this.newsByPair) if (coinOf(key.split('|')[1]!) === s.coin) f.add(s);
        }
        return new Map([[batch.partition, 0n]]); // never commit: state is rebuilt from the topic on start
      },
    });
    await this.newsSubscription.caughtUp();
  }

  private newsRows(vectors: readonly FeatureVectorRecord[]): FeatureVectorRecord[] {
    const rows: FeatureVectorRecord[] = [];
    for (const v of vectors) {
      const key = `${v.exchange}|${v.pair}`;
      let f = this.newsByPair.get(key);
      if (!f) {
        f = new NewsFeatures(this.signalsByCoin.get(coinOf(v.pair)) ?? []);
        this.newsByPair.set(key, f);
      }
      if (v.windowEnd < f.time) continue; // a redelivered batch: its rows are already stored
      const values = f.at(v.windowEnd);
      rows.push({
        ...v,
        featureSet: NEWS_SET.name,
        featureSetVersion: NEWS_SET.version,
        values,
        ready: values.every((x) => x !== null),
      });
    }
    return rows;
  }

  /**
   * Making news rows moves each pair's news clock past them (`NewsFeatures.at`), and rows behind the clock count as
   * stored already (a redelivered batch). When their write fails they are not: the pairs' clocks are dropped and
   * rebuilt from every signal on the next rows, so the retry makes exactly the rows that failed.
   */
  private forgetNewsClocks(vectors: readonly FeatureVectorRecord[]): void {
    for (const v of vectors) this.newsByPair.delete(`${v.exchange}|${v.pair}`);
  }

  /** Every signal published so far has reached this writer. */
  async newsCaughtUp(): Promise<void> {
    await this.newsSubscription?.caughtUp();
  }

  /**
   * Holding news (`holdNews`): every signal available by `ts` is known (the caller made sure, after
   * `newsCaughtUp`), so the held news rows up to `ts` are written, in order. Returns once they are stored.
   */
  newsKnownUntil(ts: number): Promise<void> {
    const write = this.newsWrites.then(async () => {
      let k = 0;
      while (k < this.heldNews.length && this.heldNews[k]!.windowEnd <= ts) k++;
      if (k === 0) return;
      const due = this.heldNews.splice(0, k);
      try {
        await this.store.write(NEWS_SET, this.newsRows(due));
      } catch (err) {
        // Held again, in front, with their pairs' clocks rebuilt: the next call writes them.
        this.heldNews.unshift(...due);
        this.forgetNewsClocks(due);
        throw err;
      }
      this.stats.newsRows += due.length;
    });
    // A failed write fails this call only: the next one starts from a settled chain, not a rejected one.
    this.newsWrites = write.catch(() => {});
    return write;
  }

  async caughtUp(): Promise<void> {
    await this.newsSubscription?.caughtUp();
    await this.subscription?.caughtUp();
    await this.newsWrites;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    await this.newsSubscription?.stop();
  }
}
