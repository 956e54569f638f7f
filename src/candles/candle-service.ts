import { faultPoint } from '../core/faults.ts';
import { log } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { TradeDeduplicator } from '../ingestion/dedup.ts';
import { laterRefillFrom, REFILL_OVERLAP_MS } from '../ingestion/resume-points.ts';
import { type Bus, type CommitPlan, partitionFor, type Subscription } from '../runtime/bus.ts';
import { type Candle, INTERVALS, type Interval } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import { topics } from '../schemas/topics.ts';
import type { TradeEvent } from '../schemas/trade.ts';
import {
  type AggregatorStats,
  CandleAggregator,
  type LatePolicy,
  type PairSeed,
  REVISION_HORIZON,
} from './aggregator.ts';

/**
 * Windows before a pair's last one that a restart's seed keeps (`readSeeds`): the revision horizon, which is as far
 * as a revision (or a retained window's re-read trade) reaches back, and as many again.
 */
const SEED_WINDOWS = 2 * REVISION_HORIZON;

/**
 * The candle stage as a service: `trades` → event-time windows → `candles`, late trades → `dlq`.
 *
 * One aggregator per input partition (a pair lives in exactly one partition), so partitions can move
 * between replicas of the service: on revoke the state is dropped, and the new owner rebuilds it by
 * re-reading from the group's committed offset.
 *
 * Exactly-once output without transactions:
 * - the committed offset of a partition is the lowest input offset still needed to rebuild its open
 *   windows (`CandleAggregator.lowestNeededPosition`), never past data whose candle is not yet durable;
 * - on start, the service reads back the whole `candles` topic, folded per pair, and seeds each pair with what was
 *   already published, so windows rebuilt from re-read trades are not published twice.
 * Killing the process at any moment and restarting it therefore yields the same candles as an
 * uninterrupted run. Dead letters are at-least-once (they carry origin partition/offset to deduplicate).
 */
export interface CandleServiceOptions {
  bus: Bus;
  interval?: Interval;
  graceMs?: number;
  latePolicy?: LatePolicy;
  group?: string;
  /**
   * Candles an earlier process published and stored, taken as published as well as those read back from `candles`:
   * `cryptocast run` gives the newest of each pair from its store, since its in-process bus starts empty (under
   * `revise` the minutes of the revision horizon before it too, taken back for revisions). Given, the bus is taken to
   * be this process's own: none of its records was read by the earlier process (`PairSeed.inputEnd`, `retaken`).
   */
  stored?: readonly Candle[];
  /**
   * Each candle carries the ids of its trades of its last `REFILL_OVERLAP_MS` (`Candle.closingTradeIds`), for the store
   * a restarted `cryptocast run` resumes from (it has no `trades` log to know them by), and where its pair's trades
   * stood (`Candle.refillFrom`: the newest taken, the ids not yet got), where that restart's refill starts. Default: false.
   */
  closingTradeIds?: boolean;
  onCandles?(candles: readonly Candle[]): void;
}

export interface CandleServiceStats {
  trades: number;
  watermarks: number;
  candles: number;
  filled: number;
  late: number;
  suppressed: number;
  replayed: number;
  duplicates: number;
}

export class CandleService {
  readonly stats: CandleServiceStats = {
    trades: 0,
    watermarks: 0,
    candles: 0,
    filled: 0,
    late: 0,
    suppressed: 0,
    replayed: 0,
    duplicates: 0,
  };
  private readonly opts: CandleServiceOptions;
  private readonly aggregators = new Map<number, CandleAggregator>();
  private readonly dedups = new Map<number, TradeDeduplicator>();
  /** The newest offset per partition whose records are in `stats` (a re-read after a failure is not counted again). */
  private readonly counted = new Map<number, bigint>();
  private seeds: PairSeed[] | undefined;
  /**
   * Per partition, the offset of its last trade record when it was assigned (or re-read after a failure): whoever
   * read it before had stopped, so nothing after it can be a re-read (a later trade for a published minute is late,
   * not replayed). `undefined`: unknown (see `readInputEnds`), every offset may be a re-read.
   */
  private readonly inputEnds = new Map<number, number | undefined>();
  /** The offset of the `trades` record being read: stamped on the candles it emits (`Candle.inputOffset`). */
  private readingOffset = 0;
  private subscription: Subscription | undefined;

  constructor(options: CandleServiceOptions) {
    this.opts = options;
  }

  async start(): Promise<void> {
    const { bus } = this.opts;
    await bus.ensureTopics([topics.trades, topics.candles, topics.dlq]);
    this.subscription = await bus.subscribe<TradeEvent>({
      topic: topics.trades,
      group: this.opts.group ?? 'candles',
      service: 'candles',
      from: 'earliest',
      onAssign: async (partitions) => {
        // The previous owner may have published more since we last looked: re-read `candles` before the
        // first batch of a newly assigned partition (process() does it lazily).
        for (const p of partitions) this.aggregators.delete(p);
        this.seeds = undefined;
        // Where the input ends now, before the first batch: a record appended from here on is new.
        await this.readInputEnds(partitions);
        log.info({ service: 'candles', partitions }, 'partitions assigned');
      },
      onRevoke: (partitions) => {
        for (const p of partitions) {
          this.aggregators.delete(p);
          this.dedups.delete(p);
          this.inputEnds.delete(p);
          this.durableDeadLetters.delete(p);
        }
        log.info({ service: 'candles', partitions }, 'partitions revoked');
      },
      handle: (batch) => this.handle(batch.partition, batch.records, batch.signal),
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }

  /** Resolves once every record in `trades` at call time has been processed. */
  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  private newAggregator(partition: number): CandleAggregator {
    const pending = this.pendingFor(partition);
    const agg = new CandleAggregator(
      {
        candle: (c) => pending.candles.push({ ...c, inputOffset: this.readingOffset }),
        late: (t, reason) =>
          pending.dead.push(
            deadLetter({
              service: 'candles',
              origin: topics.trades.name,
              kind: 'late',
              reason,
              payload: t,
              key: t.pair,
              partition,
              // The late trade's own offset: what tells its dead letter on a retry or to a consumer deduplicating.
              offset: this.readingOffset,
            }),
          ),
      },
      {
        interval: this.opts.interval,
        graceMs: this.opts.graceMs,
        latePolicy: this.opts.latePolicy,
        closingTradesMs: this.opts.closingTradeIds ? REFILL_OVERLAP_MS : undefined,
        refillFrom: this.opts.closingTradeIds === true,
      },
    );
    const inputEnd = this.earlierRunReadTo(partition);
    for (const s of this.seeds ?? []) {
      if (partitionFor(s.pair, topics.trades.partitions) === partition) agg.seed({ ...s, inputEnd });
    }
    return agg;
  }

  private readonly pending = new Map<number, { candles: Candle[]; dead: DeadLetter[] }>();
  /**
   * Per partition, the `trades` offsets (as in `DeadLetter.offset`) of late trades whose dead letter is published, at
   * or after the last commit: a batch retried after its candles publish failed computes them again and must not send
   * them twice. In memory: after a crash they may be sent again (at least once; the offset tells them apart).
   */
  private readonly durableDeadLetters = new Map<number, Set<string>>();
  private pendingFor(partition: number): { candles: Candle[]; dead: DeadLetter[] } {
    let p = this.pending.get(partition);
    if (p === undefined) {
      p = { candles: [], dead: [] };
      this.pending.set(partition, p);
    }
    return p;
  }

  private async handle(
    partition: number,
    records: readonly { offset: bigint; value: TradeEvent }[],
    signal: AbortSignal,
  ): Promise<CommitPlan> {
    try {
      return await this.process(partition, records, signal);
    } catch (err) {
      // The bus re-delivers from the committed offset: drop this partition's state (it already absorbed the
      // batch) and re-read what was published, so the retry rebuilds it exactly.
      this.aggregators.delete(partition);
      this.dedups.delete(partition);
      this.pending.delete(partition);
      this.seeds = undefined;
      // This run has read past the end taken at assignment: what it published from there is re-read too.
      this.inputEnds.delete(partition);
      throw err;
    }
  }

  private async process(
    partition: number,
    records: readonly { offset: bigint; value: TradeEvent }[],
    signal: AbortSignal,
  ): Promise<CommitPlan> {
    // A broker away: the read-backs wait for it, until the batch is given back (`Batch.signal`).
    if (!this.inputEnds.has(partition)) await this.readInputEnds([partition], signal);
    if (this.seeds === undefined) this.seeds = await this.readSeeds(signal);
    let agg = this.aggregators.get(partition);
    let dedup = this.dedups.get(partition);
    if (agg === undefined || dedup === undefined) {
      agg = this.newAggregator(partition);
      this.aggregators.set(partition, agg);
      // The trades topic may hold a trade twice (a producer that retried, a restarted trades service).
      dedup = new TradeDeduplicator();
      this.dedups.set(partition, dedup);
    }
    // Counted once the batch's candles and dead letters are published, and each offset once: after a failure the
    // partition is re-read from its last commit, through records already counted. They come first (offset order): the
    // aggregator's counts are taken as they stand when the first record not yet counted comes.
    const counted = this.counted.get(partition) ?? -1n;
    let before: AggregatorStats | undefined;
    let duplicates = 0;
    let watermarks = 0;
    for (const r of records) {
      const v = r.value;
      const fresh = r.offset > counted;
      this.readingOffset = Number(r.offset);
      if (fresh) before ??= { ...agg.stats };
      if (v.type === 'trade') {
        if (dedup.accept(v)) agg.onTrade(v, Number(r.offset));
        else if (fresh) duplicates++;
      } else {
        if (fresh) watermarks++;
        agg.onWatermark(v, Number(r.offset));
      }
    }
    const from = before ?? { ...agg.stats };
    const delta = (k: 'trades' | 'late' | 'filled' | 'suppressed' | 'replayed') => agg.stats[k] - from[k];
    const pending = this.pendingFor(partition);
    const candles = pending.candles.splice(0);
    // Effects first (durable), then the commit plan. Dead letters before candles: a published candle read later in the
    // batch raises the bound of re-reads (`inputOffset`), so a retry after a failed dead-letter publish would take the
    // late trade for a re-read and lose it. Those a failed candles publish already made durable are not sent again.
    const durable = this.durableDeadLetters.get(partition) ?? new Set<string>();
    this.durableDeadLetters.set(partition, durable);
    const dead = pending.dead.splice(0).filter((d) => !durable.has(d.offset!));
    // The partition given back meanwhile (`Batch.signal`: its next owner reads the batch again): nothing published.
    if (dead.length > 0) {
      signal.throwIfAborted();
      await this.opts.bus.publish(topics.dlq, dead);
      for (const d of dead) durable.add(d.offset!);
    }
    if (candles.length > 0) {
      signal.throwIfAborted();
      await this.opts.bus.publish(topics.candles, candles);
      this.stats.candles += candles.length;
      const now = Date.now();
      for (const c of candles) {
        metrics.candles.inc({ pair: c.pair, filled: String(c.filled) });
        metrics.lastCandle.set({ exchange: c.exchange, pair: c.pair }, c.windowEnd / 1000);
        metrics.candleClose.set({ pair: c.pair }, c.close);
        if (c.revision === 0) metrics.candleCloseDelay.observe(Math.max(0, now - c.windowEnd) / 1000);
      }
      this.opts.onCandles?.(candles);
    }
    if (candles.length > 0) faultPoint('candles:published');
    this.stats.duplicates += duplicates;
    this.stats.watermarks += watermarks;
    this.stats.trades += delta('trades');
    this.stats.late += delta('late');
    if (delta('late') > 0) metrics.lateTrades.inc({ policy: this.opts.latePolicy ?? 'dlq' }, delta('late'));
    this.stats.filled += delta('filled');
    this.stats.suppressed += delta('suppressed');
    this.stats.replayed += delta('replayed');
    const last = records[records.length - 1]!.offset;
    if (last > counted) this.counted.set(partition, last);
    const lowest = agg.lowestNeededPosition();
    const next = records[records.length - 1]!.offset + 1n;
    const commit = lowest === undefined ? next : BigInt(lowest);
    // A retry re-reads from the commit on: dead letters of records before it are never computed again.
    for (const o of durable) if (BigInt(o) < commit) durable.delete(o);
    return new Map([[partition, commit]]);
  }

  /**
   * Records in `inputEnds` the offset of the last record of each of `partitions` now. A partition that is empty (or
   * whose last record is invalid, never handed to the service) gets `undefined`: every offset of it may be a re-read.
   */
  private async readInputEnds(partitions: readonly number[], signal?: AbortSignal): Promise<void> {
    const tail = await this.opts.bus.readTail(topics.trades, 1, { signal });
    for (const p of partitions) this.inputEnds.set(p, undefined);
    for (const r of tail)
      if (partitions.includes(r.partition)) this.inputEnds.set(r.partition, Number(r.offset));
  }

  /**
   * Where whoever read `partition` before had read to when it last published: the largest `inputOffset` among the
   * read-back candles of its pairs (a candle holds only trades at or before its `inputOffset`, so a later trade is in
   * none of them: new). Bounded by the partition's end at assignment. Without such a candle (none published since
   * candles carried it), the end at assignment alone: `undefined` when unknown, every offset may be a re-read.
   */
  private earlierRunReadTo(partition: number): number | undefined {
    const atAssignment = this.inputEnds.get(partition);
    // With stored candles (`cryptocast run`) the bus is this process's own, empty when it started: what the earlier
    // process read is on no position of it, so only what this process published holds a trade of it (none: -1).
    const published =
      this.publishedReadTo.get(partition) ?? (this.opts.stored !== undefined ? -1 : undefined);
    if (published === undefined) return atAssignment;
    return atAssignment === undefined ? published : Math.min(published, atAssignment);
  }

  /** Per `trades` partition, the largest `inputOffset` of the candles read back from `candles` (see readSeeds). */
  private readonly publishedReadTo = new Map<number, number>();

  /**
   * What was already published, per pair: the whole `candles` topic (its retention bounds it) folded a page at a time.
   * A tail of 20,000 records per partition missed a pair quiet behind 20,000 candles of the others on its partition
   * (its exchange away for a while, or many pairs on one partition): unseeded, a late trade for its last minute was
   * published as that minute again (revision 0, that trade alone) instead of dead-lettered or revised, the minutes up
   * to its next trade were filled at that trade's price, and under `revise` its retained windows re-read were all
   * published twice. Held per pair: its last window and close, and of the windows `SEED_WINDOWS` before the last one
   * only (what a revision or a re-read after the restart can reach) the latest revision and what was published.
   */
  private async readSeeds(signal?: AbortSignal): Promise<PairSeed[]> {
    this.publishedReadTo.clear();
    const interval = this.opts.interval ?? '1m';
    const keptFrom = (s: PairSeed) => s.lastWindowStart - SEED_WINDOWS * INTERVALS[interval];
    const byPair = new Map<
      string,
      PairSeed & { published: Map<string, [number, number]>; retained: Candle[] }
    >();
    /** Per pair and windowStart, the latest revision read back: what a window taken back for revisions starts from. */
    const latest = new Map<string, Map<number, Candle>>();
    /** The revision `lastClose` was taken from: the last window's latest revision is its close (`revise`). */
    const closeRevision = new Map<string, number>();
    const take = (c: Candle) => {
      if (c.interval !== interval) return;
      const k = c.exchange + '|' + c.pair;
      let s = byPair.get(k);
      if (s === undefined) {
        s = {
          exchange: c.exchange,
          pair: c.pair,
          lastWindowStart: c.windowStart,
          lastClose: c.close,
          published: new Map(),
          retained: [],
        };
        byPair.set(k, s);
        closeRevision.set(k, c.revision);
      }
      const windows = latest.get(k) ?? new Map<number, Candle>();
      latest.set(k, windows);
      if (c.windowStart >= keptFrom(s)) {
        s.published.set(c.windowStart + ':' + c.revision, [c.windowStart, c.revision]);
        if (c.revision >= (windows.get(c.windowStart)?.revision ?? -1)) windows.set(c.windowStart, c);
      }
      if (
        c.windowStart > s.lastWindowStart ||
        (c.windowStart === s.lastWindowStart && c.revision >= (closeRevision.get(k) ?? 0))
      ) {
        s.lastWindowStart = c.windowStart;
        s.lastClose = c.close;
        closeRevision.set(k, c.revision);
      }
      // What the last window has left behind, dropped now and then (not at each candle: a map walk each).
      if (windows.size > 2 * SEED_WINDOWS) {
        const from = keptFrom(s);
        for (const start of windows.keys()) if (start < from) windows.delete(start);
        for (const [key, [start]] of s.published) if (start < from) s.published.delete(key);
      }
    };
    // Stored ones first (`cryptocast run`: an earlier bus, before this one), then the bus's own.
    for (const c of this.opts.stored ?? []) take(c);
    await this.opts.bus.readPages<Candle>(
      topics.candles,
      (page) => {
        for (const { value: c } of page) {
          // Only the bus's own candles: stored ones (`cryptocast run`) come from an earlier bus whose offsets are gone.
          if (c.inputOffset !== undefined) {
            const p = partitionFor(c.pair, topics.trades.partitions);
            if (c.inputOffset > (this.publishedReadTo.get(p) ?? -1))
              this.publishedReadTo.set(p, c.inputOffset);
          }
          take(c);
        }
      },
      { signal },
    );
    // Under `revise` the aggregator takes the windows before the last one back for revisions (PairSeed.retained).
    for (const [k, s] of byPair)
      s.retained = [...(latest.get(k)?.values() ?? [])]
        .filter((c) => c.windowStart >= keptFrom(s))
        .sort((a, b) => a.windowStart - b.windowStart);
    // The earlier process stopped after its newest stored minute: a restart refill may deliver that minute's last
    // second again. A stored candle with `closingTradeIds` names the trades of that second it took: the trades stage
    // drops those as seen, and any other is new (late, as in a run that never stopped). One without them (a store
    // written before them) does not: every trade of that second is taken for a re-read (PairSeed.retaken).
    const newest = new Map<string, Candle>();
    for (const c of this.opts.stored ?? []) {
      const k = c.exchange + '|' + c.pair;
      if (c.interval === interval && c.windowEnd > (newest.get(k)?.windowEnd ?? 0)) newest.set(k, c);
    }
    for (const [k, c] of newest) {
      const s = byPair.get(k);
      if (s !== undefined && c.closingTradeIds === undefined)
        s.retaken = { from: c.windowEnd - REFILL_OVERLAP_MS, to: c.windowEnd };
    }
    // Where each pair's trades stood: the latest said among the stored (a revision after the newest minute knows more).
    for (const c of this.opts.stored ?? []) {
      const s = byPair.get(c.exchange + '|' + c.pair);
      if (s !== undefined && c.interval === interval)
        s.refillFrom = laterRefillFrom(s.refillFrom, c.refillFrom);
    }
    if (byPair.size > 0) log.info({ service: 'candles', pairs: byPair.size }, 'resuming after earlier run');
    return [...byPair.values()].map((s) => ({ ...s, published: [...s.published.values()] }));
  }
}
