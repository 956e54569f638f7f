import { ByPair } from '../core/by-pair.ts';
import { log } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import type { PriceGuardOptions } from '../core/price-guard.ts';
import type { Bus } from '../runtime/bus.ts';
import { publishDurably, publishOrDeadLetter } from '../runtime/publish-durably.ts';
import type { Candle } from '../schemas/candle.ts';
import { type DeadLetter, deadLetter } from '../schemas/dlq.ts';
import type { ResumePointRecord } from '../schemas/resume-point.ts';
import { topics } from '../schemas/topics.ts';
import type { Trade, TradeEvent, Watermark } from '../schemas/trade.ts';
import { TradeDeduplicator } from './dedup.ts';
import { laterRefillFrom, REFILL_OVERLAP_MS, type RefillFrom, ResumePoints } from './resume-points.ts';
import type { SourceSink, TradeSource } from './source.ts';
import { TradePlausibility } from './trade-plausibility.ts';

/**
 * The trades stage as a service: sources (live connectors, REST backfill, file replay) → deduplicated
 * trades and watermarks on `trades`, rejects on `dlq`. Everything a source emits is published in the
 * order it was emitted, so a replay gives the same log on every transport.
 */
export interface TradeServiceStats {
  trades: number;
  duplicates: number;
  watermarks: number;
  rejects: number;
  /** Trades refused as implausible (absurd price against the recent median, or a price or size out of TRADE_BOUNDS). */
  implausible: number;
  publishRetries: number;
}

/**
 * Records of each `trades` partition read on start for the resume points: pairs share the 4 partitions, and every
 * followed pair puts a watermark there each second, so this reaches back minutes at the busiest times.
 */
const RESUME_TAIL_RECORDS = 20_000;

/**
 * How far before the log's end (its newest record) the resume read reaches besides the tail: a pair quiet behind
 * RESUME_TAIL_RECORDS of others on its partition (its exchange's connection down while another exchange's pairs go
 * on) is found there. About what the exchanges' REST refills reach (`RESUME_MAX_AGE_MS` of `cryptocast run`).
 */
export const RESUME_REACH_MS = 60 * 60_000;

/**
 * How often a pair's point on `trades.resume` is written for its watermarks alone (a pair with new trades is written at
 * its next watermark, about once a second): where a pair with no trade stood matters only for where its refill starts.
 */
const RESUME_POINT_WATERMARK_MS = 60_000;

/**
 * How long a live source's watermarks may be held before its points are written at its trades instead: a source whose
 * every pair is held (its only pair in a long refill: its watermarks wait until the refill reaches the present) wrote
 * none until the refill ended, and a crash late in it restarted a pair quiet for longer than the log read back from the
 * refill's start, every page read and published again (`resume-crash.test.ts`: 29 pages of 29, 509 trades twice).
 * Twice the live sources' watermark interval (1 s), so a source whose watermarks flow writes at them only.
 */
const RESUME_POINT_HELD_MS = 2_000;

/**
 * How long after a point was written the pair's trades it does not name can have been published (the point is written
 * after them: at the next watermark, a second later; for watermarks alone every RESUME_POINT_WATERMARK_MS; held, within
 * RESUME_POINT_HELD_MS). A restart that finds a pair on `trades.resume` only (quiet for longer than the log it reads
 * back) reads the log for this long after the point's write: what a crash left behind the point is on the log there,
 * and is marked seen instead of being published again (`resume-crash.test.ts`).
 */
const RESUME_POINT_LAG_MS = 2 * RESUME_POINT_WATERMARK_MS;

/** What the trades stage keeps of each (exchange, pair) it publishes for a live source: its `trades.resume` record. */
interface KeptPoint {
  record: ResumePointRecord;
  /** The event times of `record.recentIds`, in the same order. */
  recentTs: number[];
  /** The watermark of the point last written (`RESUME_POINT_WATERMARK_MS`). */
  writtenWatermarkTs: number;
  /**
   * When the pair's point was last written (wall clock; carried: its record's time on the topic), or −∞: none yet.
   * A batch of its trades is published only within half of RESUME_POINT_LAG_MS of it (`sink`).
   */
  writtenAt: number;
}

/** How many ids a pair's point may gather between writes before those older than its last second are let go. */
const RECENT_IDS_TRIM_AT = 4_096;

/** Only the last second's ids: what a refill by time asks for again (bounded by one second of trades). */
function keepLastSecond(k: KeptPoint): void {
  const from = (k.record.lastTs ?? Number.NEGATIVE_INFINITY) - REFILL_OVERLAP_MS;
  const ids: string[] = [];
  const ts: number[] = [];
  k.recentTs.forEach((t, i) => {
    if (t >= from) {
      ts.push(t);
      ids.push(k.record.recentIds[i]!);
    }
  });
  k.record.recentIds = ids;
  k.recentTs = ts;
}

/** Takes a published trade into a pair's point (its newest id and time, and its id among the last second's). */
function carry(k: KeptPoint, t: Trade): void {
  const r = k.record;
  const id = Number(t.tradeId);
  if (Number.isSafeInteger(id) && id >= 0 && id > (r.lastId ?? -1)) r.lastId = id;
  if (t.tradeTs > (r.lastTs ?? Number.NEGATIVE_INFINITY)) r.lastTs = t.tradeTs;
  k.recentTs.push(t.tradeTs);
  r.recentIds.push(t.tradeId);
  // Between writes too: a pair's watermarks are held through a long refill, and its ids would pile up to the end.
  if (k.recentTs.length > RECENT_IDS_TRIM_AT) keepLastSecond(k);
}

/**
 * A live source's points not yet written (`keepPoints`): its pairs with trades published since their last write, and
 * the write in flight (one at a time, so a point never overtakes a later one of the same pair on the topic).
 */
interface PointWriter {
  source: string;
  signal: AbortSignal | undefined;
  dirty: Set<KeptPoint>;
  writing: Promise<void> | undefined;
  /** When the source's last watermark came, or its points were last written at its trades (`RESUME_POINT_HELD_MS`). */
  heldSince: number;
}

/** Stretches of the log (epoch ms, both ends included), overlapping or touching ones merged, oldest first. */
export function mergedStretches(
  stretches: readonly { since: number; until: number }[],
): { since: number; until: number }[] {
  const merged: { since: number; until: number }[] = [];
  for (const s of [...stretches].sort((a, b) => a.since - b.since)) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.since <= last.until + 1) last.until = Math.max(last.until, s.until);
    else merged.push({ ...s });
  }
  return merged;
}

export class TradeService {
  readonly stats: TradeServiceStats = {
    trades: 0,
    duplicates: 0,
    watermarks: 0,
    rejects: 0,
    implausible: 0,
    publishRetries: 0,
  };
  private readonly bus: Bus;
  private readonly dedup = new TradeDeduplicator();
  private readonly plausibility: TradePlausibility;
  private readonly storedCandles: readonly Candle[];
  /** Per (exchange, pair) of `storedCandles`: where its trades stood (`Candle.refillFrom`, the latest said). */
  private readonly storedRefillFrom = new Map<string, RefillFrom>();
  private readonly resumeTailRecords: number;
  private readonly resumeReachMs: number;
  private readonly resumePointHeldMs: number;
  private readonly resumePointLagMs: number;
  /** Per (exchange, pair) of a live source: its point on `trades.resume` (see `keepPoint`); none resuming from a store. */
  private readonly kept: ByPair<KeptPoint> | undefined;
  /** One per live source whose points are kept: what is written at its watermarks, and at the stop (`run`). */
  private readonly pointWriters: PointWriter[] = [];

  /**
   * `storedCandles`: the newest candle of each pair an earlier process stored (`cryptocast run`, whose in-process bus
   * starts empty: see `resume`); given, no point is kept on `trades.resume` (the bus goes with the process).
   * `revisableCandles`: under `revise`, the stored minutes before them that the candle stage takes back: a revision
   * emitted after the newest minute says where the pair's trades stood later than it (`Candle.refillFrom`).
   * `resumeTailRecords`, `resumeReachMs`: how much of `trades` a restart reads back (tests; default
   * RESUME_TAIL_RECORDS a partition and RESUME_REACH_MS before the log's end). `resumePointHeldMs`, `resumePointLagMs`: tests
   * (default RESUME_POINT_HELD_MS, RESUME_POINT_LAG_MS; a lag of 0 reads nothing after a quiet pair's point).
   */
  constructor(
    bus: Bus,
    opts: {
      priceGuard?: PriceGuardOptions;
      storedCandles?: readonly Candle[];
      revisableCandles?: readonly Candle[];
      resumeTailRecords?: number;
      resumeReachMs?: number;
      resumePointHeldMs?: number;
      resumePointLagMs?: number;
    } = {},
  ) {
    this.bus = bus;
    this.plausibility = new TradePlausibility(opts.priceGuard);
    this.storedCandles = opts.storedCandles ?? [];
    this.resumeTailRecords = opts.resumeTailRecords ?? RESUME_TAIL_RECORDS;
    this.resumeReachMs = opts.resumeReachMs ?? RESUME_REACH_MS;
    this.resumePointHeldMs = opts.resumePointHeldMs ?? RESUME_POINT_HELD_MS;
    this.resumePointLagMs = opts.resumePointLagMs ?? RESUME_POINT_LAG_MS;
    this.kept =
      opts.storedCandles === undefined
        ? new ByPair((exchange, pair) => ({
            record: { v: 1, exchange, pair, recentIds: [] },
            recentTs: [],
            writtenWatermarkTs: Number.NEGATIVE_INFINITY,
            writtenAt: Number.NEGATIVE_INFINITY,
          }))
        : undefined;
    // The trades of a stored minute's last second it names were taken (`Candle.closingTradeIds`): a restart refill, which
    // asks from a second before the resume point, delivers them again. Seen, they are dropped here; the others of that
    // second the earlier process never took, and they go on (late for that minute, as in a run that never stopped).
    for (const c of this.storedCandles)
      for (const tradeId of c.closingTradeIds ?? [])
        this.dedup.accept({ exchange: c.exchange, pair: c.pair, tradeId } as Trade);
    // Where each pair's trades stood (`Candle.refillFrom`): the restart's refill asks for what came after the newest
    // taken and for the ids not yet got, not only for what came after the newest minute's end. Those of its last
    // second, and those of the ids not yet got that came since, were taken: seen, as the closing ones.
    if (opts.storedCandles !== undefined)
      for (const c of [...(opts.revisableCandles ?? []), ...this.storedCandles]) {
        const key = `${c.exchange}|${c.pair}`;
        const later = laterRefillFrom(this.storedRefillFrom.get(key), c.refillFrom);
        if (later !== undefined) this.storedRefillFrom.set(key, later);
      }
    for (const [key, r] of this.storedRefillFrom) {
      const [exchange, pair] = key.split('|') as [string, string];
      for (const tradeId of [...r.recentIds, ...(r.pendingIds?.got ?? [])])
        this.dedup.accept({ exchange, pair, tradeId } as Trade);
    }
  }

  /** The plausible trades; the others go to `dlq` with the reason. Every source's trades pass here. */
  private async plausible(source: string, trades: readonly Trade[], signal?: AbortSignal): Promise<Trade[]> {
    const ok: Trade[] = [];
    const dead: DeadLetter[] = [];
    for (const t of trades) {
      const why = this.plausibility.why(t);
      if (why === undefined) ok.push(t);
      else
        dead.push(
          deadLetter({ service: 'trades', origin: source, kind: 'implausible', reason: why, payload: t }),
        );
    }
    if (dead.length > 0) {
      this.stats.implausible += dead.length;
      this.stats.rejects += dead.length;
      log.warn({ source, count: dead.length, reason: dead[0]!.reason }, 'implausible trades dead-lettered');
      await this.durably(source, signal, () => this.bus.publish(topics.dlq, dead));
    }
    return ok;
  }

  /** Runs the sources concurrently until all finish (finite) or `signal` aborts (live). */
  async run(sources: readonly TradeSource[], signal: AbortSignal): Promise<void> {
    const live = sources.some((s) => s.resumeFrom !== undefined);
    const keepsPoints = live && this.kept !== undefined;
    await this.bus.ensureTopics(
      keepsPoints ? [topics.trades, topics.dlq, topics.tradesResume] : [topics.trades, topics.dlq],
    );
    if (live) await this.resume(sources, keepsPoints);
    const results = await Promise.allSettled(
      sources.map((s) => s.run(this.sink(s.name, signal, keepsPoints && s.resumeFrom !== undefined), signal)),
    );
    // Stopped (or finished): each pair's newest point, written now rather than lost until the next start's reads of
    // the log (the points are written at watermarks, a second apart, so the last second's would be missing).
    for (const w of this.pointWriters.splice(0)) await this.flushPoints(w, true);
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        log.error({ err: r.reason, source: sources[i]!.name }, 'source stopped with an error');
    });
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined && failed.status === 'rejected') throw failed.reason;
  }

  /**
   * Live sources pick up where the previous process left the log (`ResumePoints`). The tail's trades are marked as
   * seen, so what a refill fetches again (a time-paged REST overlaps the last trade's second) is not published twice.
   */
  private async resume(sources: readonly TradeSource[], keepsPoints: boolean): Promise<void> {
    const tail = await this.bus.readTail(topics.trades, this.resumeTailRecords);
    // A stored candle's minute was closed: every trade up to its end was taken, as a watermark there says. The log's
    // tail, where there is one, knows better (the newest trade id and time) and is taken as well.
    const points = ResumePoints.fromTail(
      this.storedCandles.map(
        (c): TradeEvent => ({ v: 1, type: 'watermark', exchange: c.exchange, pair: c.pair, ts: c.windowEnd }),
      ),
    );
    for (const [key, r] of this.storedRefillFrom) {
      const [exchange, pair] = key.split('|') as [string, string];
      points.addPoint({ v: 1, exchange, pair, lastId: r.lastId, lastTs: r.lastTs, recentIds: [] });
      if (r.pendingIds !== undefined) points.addPending(exchange, pair, r.pendingIds);
    }
    /** The points carried on from `trades.resume`, and when each was written (its record's time on the topic). */
    const carried = new Map<string, { k: KeptPoint; writtenAt: number }>();
    const take = (e: TradeEvent) => {
      points.add(e);
      if (e.type !== 'trade' || !this.dedup.accept(e)) return;
      // The log knows better than a point carried on (written before a crash, or before trades it missed): the pair's
      // next point starts from what the log holds, should it trade no more.
      const c = carried.get(`${e.exchange}|${e.pair}`);
      if (c !== undefined) carry(c.k, e);
    };
    // The points kept on `trades.resume` (compacted: one per pair, read whole): a pair quiet for longer than the stretch
    // of the log read below (its exchange down, or not followed for a while) is found there, and refilled from where
    // it stopped instead of starting afresh; the ids of its last second are marked seen, as the tail's trades are.
    let kept = 0;
    if (keepsPoints)
      await this.bus.readPages(topics.tradesResume, (page) => {
        for (const { value: r, timestamp } of page) {
          kept++;
          points.addPoint(r);
          for (const tradeId of r.recentIds)
            this.dedup.accept({ exchange: r.exchange, pair: r.pair, tradeId } as Trade);
          // Carried on: the pair's next point keeps what this one knew (its newest id, should it trade no more).
          const k = this.kept!.get(r.exchange, r.pair);
          k.record = { ...r, recentIds: [...r.recentIds] };
          k.recentTs = r.recentIds.map(() => r.lastTs ?? Number.NEGATIVE_INFINITY);
          k.writtenWatermarkTs = r.watermarkTs ?? Number.NEGATIVE_INFINITY;
          k.writtenAt = timestamp;
          carried.set(`${r.exchange}|${r.pair}`, { k, writtenAt: timestamp });
        }
      });
    // The hour before the log's end too, a page at a time (folded, not held): the tail of each partition misses a
    // pair quiet behind that many records of the others on it, which then started afresh at the first connection and
    // what it traded meanwhile was never refilled. Its trades are marked seen as the tail's are.
    let logEnd = Number.NEGATIVE_INFINITY;
    for (const r of tail) if (r.timestamp > logEnd) logEnd = r.timestamp;
    let older = 0;
    if (tail.length > 0)
      await this.bus.readPages(
        topics.trades,
        (page) => {
          older += page.length;
          for (const r of page) take(r.value);
        },
        { since: logEnd - this.resumeReachMs },
      );
    for (const r of tail) take(r.value);
    // A point written before the stretch read above (its pair quiet since) may be behind the log: a crash before the
    // point's next write left the trades published meanwhile out of it, and the refill from it would publish them
    // again — to a candle stage restarted since, late trades of a minute it closed: counted twice under `revise`
    // (`resume-crash.test.ts`). They were published within RESUME_POINT_LAG_MS of the point's write: read there, one
    // read per merged stretch (a source writes all its pairs' points at once: it was the same stretch once per pair).
    let afterPoints = 0;
    const behind = new Map<string, { k: KeptPoint; writtenAt: number }>();
    for (const [key, c] of carried) if (c.writtenAt < logEnd - this.resumeReachMs) behind.set(key, c);
    if (tail.length > 0 && this.resumePointLagMs > 0)
      for (const stretch of mergedStretches(
        [...behind.values()].map((c) => ({
          since: c.writtenAt - REFILL_OVERLAP_MS,
          until: c.writtenAt + this.resumePointLagMs,
        })),
      ))
        await this.bus.readPages(
          topics.trades,
          (page) => {
            // A quiet pair's trade anywhere in the merged stretch is on the log: seen, and its point carried past it.
            for (const r of page)
              if (behind.has(`${r.value.exchange}|${r.value.pair}`)) {
                afterPoints++;
                take(r.value);
              }
          },
          stretch,
        );
    // Ids not yet got at the stop (a hole waiting for its retry) are asked for again, and the live source widens one
    // hole per pair to take in a later one: its retry then fetches every id between, which the earlier process took —
    // only its last second's and those of the hole it got were marked seen, and the others went out again, late for
    // closed minutes (counted twice under `revise`; h128's review). Ids are contiguous where holes are id ranges
    // (Kraken, Binance): every id after the hole up to the newest taken was taken.
    for (const { exchange, pair, point } of points.withPending())
      if (point.lastId !== undefined && point.lastId >= point.pendingIds.untilId)
        this.dedup.seenRange(exchange, pair, point.pendingIds.untilId, point.lastId);
    for (const { k } of carried.values()) keepLastSecond(k);
    for (const s of sources) s.resumeFrom?.(points);
    log.info(
      { records: tail.length, lastHourRecords: older, keptPoints: kept, afterQuietPoints: afterPoints },
      'resuming live sources from trades.resume, the tail of trades and its last hour',
    );
  }

  /** `keepsPoints`: a live source's, whose pairs' points are kept on `trades.resume` (`keepPoint`). */
  sink(name: string, signal?: AbortSignal, keepsPoints = false): SourceSink {
    let writer: PointWriter | undefined;
    if (keepsPoints) {
      writer = { source: name, signal, dirty: new Set(), writing: undefined, heldSince: Date.now() };
      this.pointWriters.push(writer);
    }
    return {
      trades: async (batch: readonly Trade[]) => {
        const trades = await this.plausible(name, batch, signal);
        const fresh = this.dedup.filter(trades);
        this.stats.duplicates += trades.length - fresh.length;
        if (fresh.length === 0) return;
        if (writer !== undefined) await this.pointsBeforePublishing(writer, fresh);
        const out = new Set<Trade>();
        const published = await publishOrDeadLetter(this.bus, topics.trades, fresh, {
          source: name,
          service: 'trades',
          signal,
          onRetry: () => this.stats.publishRetries++,
          onRefused: () => this.stats.rejects++,
          onPublished: (t) => out.add(t),
        }).catch((err: unknown) => {
          // Not published (a stop while the broker is away, a dead letter the bus refused too): taken back, as the
          // live source takes them back from its own deduplicator (`deliver`). Kept as seen, the same trades delivered
          // again (its refill's retry) were dropped here as duplicates: lost. What went out before the error stays seen.
          for (const t of fresh) if (!out.has(t)) this.dedup.forget(t);
          // ... and counted: they are on the topic (before, stats.trades and the metric missed them).
          this.counted([...out]);
          throw err;
        });
        this.counted(published);
        if (writer !== undefined && published.length > 0) {
          this.keepPoints(writer, published, undefined);
          // Its watermarks held (a refill, delivered oldest first, so the point never skips a trade not yet published):
          // written now, at most every RESUME_POINT_HELD_MS, rather than when the refill ends. The trades are out: a
          // point not written (a stop while the broker is away) stays to write, it does not refuse them.
          if (Date.now() - writer.heldSince >= this.resumePointHeldMs) {
            writer.heldSince = Date.now();
            await this.flushPoints(writer, false).catch((err: unknown) =>
              log.warn(
                { err, source: name },
                'resume points not written during a refill: written at the next watermark',
              ),
            );
          }
        }
      },
      watermark: async (wm: Watermark) => {
        await this.durably(name, signal, () => this.bus.publish<TradeEvent>(topics.trades, [wm]));
        this.stats.watermarks++;
        if (writer !== undefined) {
          writer.heldSince = Date.now();
          this.keepPoints(writer, [], wm);
          await this.flushPoints(writer, false);
        }
      },
      reject: async (dl: DeadLetter) => {
        this.stats.rejects++;
        log.warn({ source: name, kind: dl.kind, reason: dl.reason }, 'rejected input');
        await this.durably(name, signal, () => this.bus.publish(topics.dlq, [dl]));
      },
    };
  }

  /**
   * Before `trades` are published: the points of their pairs last written over half of RESUME_POINT_LAG_MS ago are
   * written again first (as they stand: never ahead of the log). A restart that finds a pair on `trades.resume` only
   * reads the log for RESUME_POINT_LAG_MS after its point's write; a batch published later than that, its own point's
   * write cut by a crash, was in no stretch read, and the next restart published it again — to a candle stage restarted
   * since, late trades of a minute the stretch's own trades closed, counted twice under `revise`
   * (`resume-crash.test.ts`: the first seconds of a restart's refill begun longer than that after the pair's last
   * point, 836 trades twice, 1,182 counted for 1,000; also the first batch after watermarks held for longer). A pair
   * never written has no point to be found by: none is written for it here.
   */
  private async pointsBeforePublishing(writer: PointWriter, trades: readonly Trade[]): Promise<void> {
    if (this.resumePointLagMs <= 0) return;
    const stale = Date.now() - this.resumePointLagMs / 2;
    let due = false;
    for (const t of trades) {
      const k = this.kept!.get(t.exchange, t.pair);
      if (k.writtenAt !== Number.NEGATIVE_INFINITY && k.writtenAt < stale) {
        writer.dirty.add(k);
        due = true;
      }
    }
    if (!due) return;
    // After the write in flight (one at a time: a point never overtakes a later one of its pair on the topic).
    while (writer.writing !== undefined) await writer.writing.catch(() => {});
    await this.flushPoints(writer, false).catch((err: unknown) =>
      log.warn(
        { err, source: writer.source },
        'resume points not written before a batch: a crash before the next write may publish it again',
      ),
    );
  }

  /**
   * Takes in where the pairs of `published` (or of `wm`) now stand, after those records are on `trades`: a point is never
   * ahead of the log, so a restart refills from it without a hole. Written to `trades.resume` by `flushPoints`, at the
   * source's next watermark (about once a second: after every batch, it was a second awaited publish per exchange
   * frame, 0.4–0.5× the trades a second on Kafka, docs/benchmarks.md) and at the stop; for watermarks alone at most every
   * RESUME_POINT_WATERMARK_MS. A point written late (a crash before that watermark) is behind the log by up to a second
   * of trades: the restart's read of the log's last hour knows better, and for a pair quiet for longer its read of the
   * log just after the point's write (RESUME_POINT_LAG_MS).
   */
  private keepPoints(writer: PointWriter, published: readonly Trade[], wm: Watermark | undefined): void {
    for (const t of published) {
      const k = this.kept!.get(t.exchange, t.pair);
      carry(k, t);
      writer.dirty.add(k);
    }
    if (wm !== undefined && wm.final !== true) {
      const k = this.kept!.get(wm.exchange, wm.pair);
      if (wm.ts > (k.record.watermarkTs ?? Number.NEGATIVE_INFINITY)) k.record.watermarkTs = wm.ts;
      if (wm.ts - k.writtenWatermarkTs >= RESUME_POINT_WATERMARK_MS) writer.dirty.add(k);
    }
  }

  /**
   * Writes the source's points taken in since its last write, one publish for all its pairs. One write at a time: at a
   * watermark, one in flight is left to finish (what came since waits for the next); at the stop (`final`) it is
   * waited for, then the rest written, once (the stop ends the retries): a point not written is behind the log, as
   * after a crash, not wrong.
   */
  private async flushPoints(writer: PointWriter, final: boolean): Promise<void> {
    if (writer.writing !== undefined) {
      if (!final) return;
      await writer.writing.catch(() => {});
    }
    if (writer.dirty.size === 0) return;
    const records: ResumePointRecord[] = [];
    const points = [...writer.dirty];
    for (const k of points) {
      keepLastSecond(k);
      k.writtenWatermarkTs = k.record.watermarkTs ?? Number.NEGATIVE_INFINITY;
      records.push({ ...k.record, recentIds: [...k.record.recentIds] });
    }
    writer.dirty.clear();
    writer.writing = this.durably(writer.source, writer.signal, () =>
      this.bus.publish(topics.tradesResume, records),
    );
    try {
      await writer.writing;
      const at = Date.now();
      for (const k of points) k.writtenAt = at;
    } catch (err) {
      // Not written: still to write (the stop's write takes them when a watermark's failed).
      for (const k of points) writer.dirty.add(k);
      if (!final) throw err;
      log.warn(
        { err, source: writer.source, points: records.length },
        'resume points not written at the stop',
      );
    } finally {
      writer.writing = undefined;
    }
  }

  /** Trades published: in `stats.trades` and the trades metrics. */
  private counted(published: readonly Trade[]): void {
    this.stats.trades += published.length;
    // One inc per series and batch: an inc hashes its labels, and one per trade was 2 % of a replay.
    const perSeries = new ByPair((exchange, pair) => ({ exchange, pair, n: 0 }));
    for (const t of published) perSeries.get(t.exchange, t.pair).n++;
    for (const c of perSeries.values()) metrics.trades.inc({ exchange: c.exchange, pair: c.pair }, c.n);
    const last = published[published.length - 1];
    if (last === undefined) return;
    metrics.lastTrade.set({ exchange: last.exchange, pair: last.pair }, last.tradeTs / 1000);
  }

  private durably(
    source: string,
    signal: AbortSignal | undefined,
    publish: () => Promise<void>,
  ): Promise<void> {
    return publishDurably(source, signal, publish, () => this.stats.publishRetries++);
  }
}
