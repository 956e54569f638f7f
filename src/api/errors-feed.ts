import { RollingQuality } from '../monitoring/rolling-quality.ts';
import type { ErrorsStore } from '../monitoring/store/errors-store.ts';
import type { Bus } from '../runtime/bus.ts';
import { errorKey, type PredictionError, revisable, supersedes } from '../schemas/prediction-error.ts';
import { topics } from '../schemas/topics.ts';
import { Feed, type FeedOptions } from './feed.ts';

/**
 * The API's view of `predictions.errors` (a `Feed`: the WebSocket `errors` channel and its resume) and the rolling
 * quality served by `GET /v1/quality`, kept from the same records: rebuilt from the errors store on start (the
 * longest window back from the newest record), then fed live. Adding a record twice is harmless (by key).
 *
 * The windows end at the stream's clock: the newest target time seen (a replay of last year shows its last hour),
 * or the wall clock with `clock: 'wall'` (live: a silent hour reads as an empty window, not as the last busy one).
 */
/** How long the store's pair list is reused by `allPairs` (see there), unless the feed is given another. */
export const STORE_PAIRS_TTL_MS = 60_000;

export class ErrorsFeed extends Feed<PredictionError> {
  readonly quality: RollingQuality;
  readonly clockKind: 'event' | 'wall';
  readonly store: ErrorsStore;
  private readonly pairsTtlMs: number;
  private storePairs: { at: number; pairs: readonly string[] } | undefined;
  private readingPairs: Promise<readonly string[]> | undefined;

  constructor(
    store: ErrorsStore,
    o: FeedOptions & { clock?: 'event' | 'wall'; windows?: Record<string, number>; pairsTtlMs?: number } = {},
  ) {
    super(
      {
        channel: 'errors',
        frameType: 'prediction_error',
        topic: topics.predictionErrors,
        key: errorKey,
        // A prediction timed out and scored after all (`MaturityJoin`): the scored verdict is news; never the reverse.
        revision: (next, held) =>
          supersedes(next, held) ? true : supersedes(held, next) ? false : undefined,
        revisable,
        // The monitor revises a time-out only while it keeps its pair's closes: a day behind the newest candle.
        revisableForMs: 2 * 86_400_000,
        tiebreak: (a, b) => a.modelName.localeCompare(b.modelName) || a.modelVersion - b.modelVersion,
        newer: (a, b) => a.windowEnd >= b.windowEnd,
        history: (pair, from, to, opts) => this.store.history(pair, from, to, opts),
      },
      o,
    );
    this.store = store;
    this.pairsTtlMs = o.pairsTtlMs ?? STORE_PAIRS_TTL_MS;
    this.clockKind = o.clock ?? 'event';
    this.quality = new RollingQuality(o.windows);
  }

  private prunedAt = Number.NEGATIVE_INFINITY;

  /** Every record also counts in the rolling quality (once per key), the quiet ones of a cold start included. */
  override add(e: PredictionError, quiet = false) {
    this.quality.add(e);
    const now = this.clock();
    if (now - this.prunedAt >= 60_000) {
      this.quality.prune(now);
      this.prunedAt = now;
    }
    return super.add(e, quiet);
  }

  /**
   * Where the windows end now. On the event clock before the first record (a cold start, the rebuild not done yet)
   * the stream has no time: the wall clock stands in, so the windows read as empty rather than ending at −∞ (which
   * no answer can carry).
   */
  clock(): number {
    if (this.clockKind === 'wall') return Date.now();
    const c = this.quality.clock;
    return Number.isFinite(c) ? c : Date.now();
  }

  override async start(o: { bus: Bus; pairs: readonly string[]; group?: string }): Promise<void> {
    await super.start(o);
    await this.rebuild();
  }

  /** Folds the stored records of the longest window into the rolling quality (and the ring's latest per pair). */
  async rebuild(): Promise<number> {
    const newest = await this.store.maxTargetTs();
    if (newest === undefined) return 0;
    const end = this.clockKind === 'wall' ? Date.now() : newest;
    const longest = Math.max(...Object.values(this.quality.windows));
    const records = await this.store.byTargetTime(end - longest, end + 1);
    for (const e of records) this.quality.add(e);
    for (const e of records.slice(-1000)) super.add(e, true);
    return records.length;
  }

  /**
   * Pairs with records, in the feed or the store. `/v1/errors` and `/v1/quality` ask on every request, and the
   * store's answer is a `SELECT DISTINCT pair` over every record: it is reused for `pairsTtlMs` (60 s), one read at a
   * time. The list only grows, and a pair the monitor records is in the feed (the topic) at once; one only in the
   * store (a backfill, a monitor this API does not hear) appears within the TTL. A failed read is not kept.
   */
  async allPairs(): Promise<string[]> {
    return [...new Set([...this.knownPairs(), ...(await this.pairsInStore())])].sort();
  }

  private pairsInStore(): Promise<readonly string[]> {
    const cached = this.storePairs;
    if (cached !== undefined && Date.now() - cached.at < this.pairsTtlMs)
      return Promise.resolve(cached.pairs);
    this.readingPairs ??= this.store.pairs().then(
      (pairs) => {
        this.storePairs = { at: Date.now(), pairs };
        this.readingPairs = undefined;
        return pairs;
      },
      (err: unknown) => {
        this.readingPairs = undefined;
        throw err;
      },
    );
    return this.readingPairs;
  }
}
