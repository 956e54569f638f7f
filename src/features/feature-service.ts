import { faultPoint } from '../core/faults.ts';
import { log } from '../core/log.ts';
import { metrics, onScrape } from '../core/metrics.ts';
import type { Batch, Bus, CommitPlan, Subscription } from '../runtime/bus.ts';
import type { Candle } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import { topics } from '../schemas/topics.ts';
import { FEATURE_SET, type FeatureVector, TechnicalFeatures } from './technical.ts';

/**
 * The feature stage as a service: `candles` → technical features → `features`. The same `TechnicalFeatures`
 * code as `cryptocast features` (batch), fed one candle at a time. Impossible candles go to `dlq` and never
 * touch indicator state.
 *
 * Restart: offsets are committed `warmup` candles behind, per pair; a restarted service re-reads those candles
 * to rebuild its indicators (every one of them converges well within 1,000 minutes) and publishes only vectors
 * newer than the last one in `features`, so nothing is duplicated or skipped. Revised candles (late-trade policy `revise`) are not fed again: features are computed
 * once per closed minute, from its first emission.
 */
/** Candles a restarted feature stage re-reads (or is seeded with) before its first vector: every indicator converges. */
export const RESTART_WARMUP_CANDLES = 1_000;

export class FeatureService {
  readonly stats = { candles: 0, vectors: 0, ready: 0, rejected: 0, rewarmed: 0, seeded: 0 };
  private readonly bus: Bus;
  private readonly engines = new Map<number, TechnicalFeatures>();
  /** Per partition and pair, the offsets of the last `warmup` candles: a restart re-reads from the oldest. */
  private readonly kept = new Map<number, Map<string, bigint[]>>();
  /** Per pair, the last windowEnd already published (read back from `features` on (re)assignment). */
  private published: Map<string, number> | undefined;
  /** Candles re-read to rebuild indicator state after a restart; enough for every indicator to converge. */
  readonly warmup: number;
  private subscription: Subscription | undefined;
  private readonly group: string;
  onVectors?: (vs: readonly FeatureVectorRecord[]) => void;

  private readonly maxPriceFactor: number | undefined;

  constructor(
    bus: Bus,
    group = 'features',
    warmup = RESTART_WARMUP_CANDLES,
    opts: { maxPriceFactor?: number; seed?: readonly Candle[] } = {},
  ) {
    this.bus = bus;
    this.group = group;
    this.warmup = warmup;
    this.maxPriceFactor = opts.maxPriceFactor;
    for (const c of opts.seed ?? []) {
      const list = this.seed.get(c.pair) ?? [];
      list.push(c);
      this.seed.set(c.pair, list);
    }
  }

  /**
   * Per pair, stored candles older than anything on the bus (a live run resumed from its store, whose in-process bus
   * starts empty), oldest first: an engine takes them before its first candle of the pair, as a restarted service
   * takes the candles it re-reads, and publishes nothing for them (their vectors were stored by the earlier run).
   */
  private readonly seed = new Map<string, Candle[]>();
  /** The pairs each engine has been seeded for: a new engine (assignment, failed batch) is seeded again. */
  private readonly seeded = new WeakMap<TechnicalFeatures, Set<string>>();

  private seedBefore(engine: TechnicalFeatures, c: Candle): void {
    const seed = this.seed.get(c.pair);
    if (seed === undefined) return;
    let done = this.seeded.get(engine);
    if (done === undefined) {
      done = new Set();
      this.seeded.set(engine, done);
    }
    if (done.has(c.pair)) return;
    done.add(c.pair);
    for (const s of seed) {
      // Only what comes before the bus's candle; one the engine refuses is skipped, as a live run skips it.
      if (s.windowEnd > c.windowStart || engine.problem(s) !== undefined) continue;
      try {
        engine.update(s);
        this.stats.seeded++;
      } catch {}
    }
  }

  private newEngine(): TechnicalFeatures {
    return new TechnicalFeatures(60_000, { maxPriceFactor: this.maxPriceFactor });
  }

  /** The newest windowEnd computed per pair (the feature age metric). */
  private readonly newest = new Map<string, number>();

  async start(): Promise<void> {
    onScrape(() => {
      for (const [pair, end] of this.newest)
        metrics.featureAge.set({ pair }, Math.max(0, Date.now() - end) / 1000);
    });
    await this.bus.ensureTopics([topics.candles, topics.features, topics.dlq]);
    this.subscription = await this.bus.subscribe<Candle>({
      topic: topics.candles,
      group: this.group,
      service: 'features',
      from: 'earliest',
      onAssign: (ps) => {
        for (const p of ps) {
          this.engines.set(p, this.newEngine());
          this.kept.set(p, new Map());
        }
        this.published = undefined;
      },
      onRevoke: (ps) => {
        for (const p of ps) {
          this.engines.delete(p);
          this.kept.delete(p);
        }
      },
      handle: async (batch) => {
        try {
          return await this.process(batch);
        } catch (err) {
          // The bus re-delivers from the committed offset (up to `warmup` candles back): drop this partition's
          // indicators, which already absorbed the batch, and re-read what was published, so the retry rebuilds
          // them and publishes exactly the vectors that are missing (as after a restart).
          this.engines.delete(batch.partition);
          this.kept.delete(batch.partition);
          this.published = undefined;
          throw err;
        }
      },
    });
  }

  private async process(batch: Batch<Candle>): Promise<CommitPlan> {
    let engine = this.engines.get(batch.partition);
    if (engine === undefined) {
      engine = this.newEngine();
      this.engines.set(batch.partition, engine);
    }
    // A broker away: the read-back waits for it, until the batch is given back (`Batch.signal`).
    if (this.published === undefined) this.published = await this.readPublished(batch.signal);
    let kept = this.kept.get(batch.partition);
    if (kept === undefined) {
      kept = new Map();
      this.kept.set(batch.partition, kept);
    }
    const out: FeatureVectorRecord[] = [];
    const dead: DeadLetter[] = [];
    // Counted once the batch's vectors and dead letters are published: a batch that fails comes again.
    const n = { candles: 0, ready: 0, rejected: 0, rewarmed: 0 };
    for (const r of batch.records) {
      const c = r.value;
      if (c.revision > 0) continue;
      this.seedBefore(engine, c);
      n.candles++;
      const bad = engine.problem(c);
      let v: FeatureVector | undefined;
      let reason = bad;
      if (bad === undefined) {
        try {
          v = engine.update(c);
        } catch (err) {
          reason = (err as Error).message;
        }
      }
      if (v === undefined) {
        n.rejected++;
        dead.push(
          deadLetter({
            service: 'features',
            origin: topics.candles.name,
            kind: 'invalid',
            reason: reason!,
            payload: c,
            key: c.pair,
            partition: r.partition,
            offset: r.offset,
          }),
        );
        continue;
      }
      let offsets = kept.get(c.pair);
      if (offsets === undefined) {
        offsets = [];
        kept.set(c.pair, offsets);
      }
      offsets.push(r.offset);
      if (offsets.length > this.warmup) offsets.shift();
      if (v.windowEnd <= (this.published.get(v.pair) ?? Number.NEGATIVE_INFINITY)) {
        n.rewarmed++; // re-read after a restart to rebuild state: published already
        continue;
      }
      if (v.ready) n.ready++;
      this.newest.set(v.pair, Math.max(this.newest.get(v.pair) ?? 0, v.windowEnd));
      out.push(toRecord(c.exchange, v));
    }
    // The partition given back meanwhile (`Batch.signal`: its next owner reads the batch again): nothing published.
    if (out.length > 0) {
      batch.signal.throwIfAborted();
      await this.bus.publish(topics.features, out);
      this.stats.vectors += out.length;
      this.onVectors?.(out);
      faultPoint('features:published');
    }
    if (dead.length > 0) {
      log.warn({ service: 'features', count: dead.length, reason: dead[0]!.reason }, 'candles rejected');
      batch.signal.throwIfAborted();
      await this.bus.publish(topics.dlq, dead);
    }
    this.stats.candles += n.candles;
    this.stats.ready += n.ready;
    this.stats.rejected += n.rejected;
    this.stats.rewarmed += n.rewarmed;
    for (const v of out) metrics.featureVectors.inc({ ready: String(v.ready) });
    // Commit only up to the oldest candle still needed to re-warm every pair of this partition.
    let oldest: bigint | undefined;
    for (const offsets of kept.values())
      if (offsets.length > 0 && (oldest === undefined || offsets[0]! < oldest)) oldest = offsets[0];
    return oldest === undefined ? undefined : new Map([[batch.partition, oldest]]);
  }

  /**
   * What an earlier run already published: the newest windowEnd per pair on `features`. The whole topic is read (its
   * retention bounds it), as the predictor reads `predictions`: a tail of N records per partition missed a pair quiet
   * behind N vectors of the others on its partition (a halted market, or many pairs on one partition), and the
   * candles re-read to re-warm it (up to `warmup` of them, the commit waits for its oldest) were published again. It
   * is read a page at a time and folded as it comes: one windowEnd per pair is held, not the topic.
   */
  private async readPublished(signal?: AbortSignal): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await this.bus.readPages<FeatureVectorRecord>(
      topics.features,
      (page) => {
        for (const { value: v } of page)
          if (v.windowEnd > (out.get(v.pair) ?? Number.NEGATIVE_INFINITY)) out.set(v.pair, v.windowEnd);
      },
      { signal },
    );
    return out;
  }

  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }
}

export function toRecord(exchange: string, v: FeatureVector): FeatureVectorRecord {
  return {
    v: 1,
    featureSet: FEATURE_SET.name,
    featureSetVersion: FEATURE_SET.version,
    exchange,
    pair: v.pair,
    windowStart: v.windowStart,
    windowEnd: v.windowEnd,
    close: v.close,
    ready: v.ready,
    values: v.values,
  };
}
