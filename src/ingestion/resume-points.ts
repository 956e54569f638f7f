import type { Candle } from '../schemas/candle.ts';
import type { ResumePointRecord } from '../schemas/resume-point.ts';
import type { PendingIds, TradeEvent } from '../schemas/trade.ts';

/**
 * A refill by time asks from a second before where the pair stood (a time-paged REST overlaps the last trade's second):
 * it may deliver again trades of that second, which the trades log's ids tell (`TradeService`), or, after a restart
 * from a store (no log), the stored minute's `Candle.closingTradeIds` (the candle stage's `PairSeed.retaken` for a store
 * written before them). Here, beside the resume points, because both the
 * live connectors and the candle stage read it.
 */
export const REFILL_OVERLAP_MS = 1_000;

/** Where one (exchange, pair) stood in the `trades` log when the previous process stopped. */
export interface ResumePoint {
  /** Highest numeric trade id published (exchanges that number trades). */
  lastId?: number;
  /** Latest trade time published. */
  lastTs?: number;
  /** Latest watermark published: every trade up to it was published too. */
  watermarkTs?: number;
  /** Ids not yet got when the previous process stopped (`Watermark.pendingIds`): asked for again. */
  pendingIds?: PendingIds;
}

/**
 * The resume points of every (exchange, pair) found in the tail of the `trades` log. A live source given them refills
 * over REST what traded since, before it reads the stream: what traded while the trades stage was down (a restart, a
 * deploy) and what it had accepted but not yet published when it stopped (a broker away at the stop) is published
 * after all, instead of becoming a hole of filled, zero-volume candles.
 */
export class ResumePoints {
  private readonly points = new Map<string, ResumePoint>();

  /** From the tail's records, any order (a pair's records are in one partition, but pairs share partitions). */
  static fromTail(events: Iterable<TradeEvent>): ResumePoints {
    const out = new ResumePoints();
    for (const e of events) out.add(e);
    return out;
  }

  /** Takes one record of the log into account (any order). */
  add(e: TradeEvent): void {
    const key = `${e.exchange}|${e.pair}`;
    let p = this.points.get(key);
    if (p === undefined) {
      p = {};
      this.points.set(key, p);
    }
    if (e.type === 'watermark') {
      // A final watermark ends a finite source (a replay): it says nothing about where a live stream stopped. The
      // newest says which ids were not yet got (`Watermark.pendingIds`): asked for again; those got since are on the
      // log after it, marked seen by the trades stage.
      // At or after the newest so far: a point on `trades.resume` (`addPoint`, read first) has the same watermark time
      // as the log's watermark it was written at, but not its pending ids.
      if (e.final !== true && e.ts >= (p.watermarkTs ?? Number.NEGATIVE_INFINITY)) {
        p.watermarkTs = e.ts;
        if (e.pendingIds === undefined) delete p.pendingIds;
        else p.pendingIds = e.pendingIds;
      }
      return;
    }
    const id = Number(e.tradeId);
    if (Number.isSafeInteger(id) && id > (p.lastId ?? -1)) p.lastId = id;
    if (e.tradeTs > (p.lastTs ?? Number.NEGATIVE_INFINITY)) p.lastTs = e.tradeTs;
  }

  /**
   * Takes a point kept on `trades.resume` into account (any order with `add`): each field the later of the two. The
   * log's own records are as good or newer (it is written after them), but reach back only so far.
   */
  addPoint(r: ResumePointRecord): void {
    const key = `${r.exchange}|${r.pair}`;
    const p = this.points.get(key) ?? {};
    this.points.set(key, p);
    if (r.lastId !== undefined && r.lastId > (p.lastId ?? -1)) p.lastId = r.lastId;
    if (r.lastTs !== undefined && r.lastTs > (p.lastTs ?? Number.NEGATIVE_INFINITY)) p.lastTs = r.lastTs;
    if (r.watermarkTs !== undefined && r.watermarkTs > (p.watermarkTs ?? Number.NEGATIVE_INFINITY))
      p.watermarkTs = r.watermarkTs;
  }

  /** The ids of a pair not yet got when the previous process stopped (a stored candle's `refillFrom`). */
  addPending(exchange: string, pair: string, pending: PendingIds): void {
    const key = `${exchange}|${pair}`;
    const p = this.points.get(key) ?? {};
    this.points.set(key, p);
    p.pendingIds = pending;
  }

  /** Every (exchange, pair) with ids not yet got at the stop, with its point. */
  *withPending(): Generator<{
    exchange: string;
    pair: string;
    point: ResumePoint & { pendingIds: PendingIds };
  }> {
    for (const [key, point] of this.points) {
      if (point.pendingIds === undefined) continue;
      const [exchange, pair] = key.split('|') as [string, string];
      yield { exchange, pair, point: point as ResumePoint & { pendingIds: PendingIds } };
    }
  }

  /** The point of one (exchange, pair), or undefined when the tail holds nothing of it. */
  get(exchange: string, pair: string): ResumePoint | undefined {
    const p = this.points.get(`${exchange}|${pair}`);
    return p?.lastTs === undefined && p?.watermarkTs === undefined ? undefined : p;
  }
}

/** `Candle.refillFrom`: where a pair's trades stood when a candle was emitted (see there). */
export type RefillFrom = NonNullable<Candle['refillFrom']>;

/**
 * The trades taken of one pair (`Candle.refillFrom`): the newest numeric id and time, and the ids of the second up to
 * that time (what a refill by time asks for again), kept as they are taken, in any order.
 */
export class TakenTrades {
  lastId: number | undefined;
  lastTs: number | undefined;
  /** Id → event time, of the second up to `lastTs` (and some older between trims). */
  private recent = new Map<string, number>();
  /** The size at which `recent` is trimmed next: twice what the last trim kept (at least 4,096). */
  private trimAt = 4_096;
  /** Trims of `recent` so far (amortised: logarithmic in a second's trades, not one per trade). */
  trims = 0;

  take(id: string, ts: number): void {
    const n = Number(id);
    if (Number.isSafeInteger(n) && n >= 0 && n > (this.lastId ?? -1)) this.lastId = n;
    if (ts > (this.lastTs ?? Number.NEGATIVE_INFINITY)) this.lastTs = ts;
    if (ts >= (this.lastTs ?? ts) - REFILL_OVERLAP_MS) this.recent.set(id, ts);
    // Trimmed now and then, not at every trade: a busy second is a few hundred ids. Next when the size has doubled
    // since: with more than 4,096 ids in one second (a liquidation cascade) a trim keeps them all, and trimming at every
    // trade past 4,096 was quadratic (32,000 trades of one second: 5.7 s of the event loop; h128's review).
    if (this.recent.size > this.trimAt) this.trim();
  }

  /** Takes in what another window took (a window closed into its pair's). */
  merge(o: TakenTrades): void {
    for (const [id, ts] of o.recent) this.take(id, ts);
    if (o.lastId !== undefined && o.lastId > (this.lastId ?? -1)) this.lastId = o.lastId;
    if (o.lastTs !== undefined && o.lastTs > (this.lastTs ?? Number.NEGATIVE_INFINITY))
      this.lastTs = o.lastTs;
  }

  /** The ids of the second up to `lastTs`. */
  recentIds(): string[] {
    this.trim();
    return [...this.recent.keys()];
  }

  private trim(): void {
    const from = (this.lastTs ?? Number.NEGATIVE_INFINITY) - REFILL_OVERLAP_MS;
    this.trims++;
    for (const [id, ts] of this.recent) if (ts < from) this.recent.delete(id);
    this.trimAt = Math.max(4_096, 2 * this.recent.size);
  }

  /** From a stored candle's `refillFrom` (its recent ids at its `lastTs`: their own times are not kept). */
  static from(r: RefillFrom | undefined): TakenTrades {
    const t = new TakenTrades();
    if (r === undefined) return t;
    t.lastId = r.lastId;
    t.lastTs = r.lastTs;
    for (const id of r.recentIds) t.recent.set(id, r.lastTs ?? 0);
    return t;
  }
}

/**
 * Of two `refillFrom`s of a pair (stored candles: the newest minute and the revisions of earlier ones), the one emitted
 * later (`asOf`, the candle stage's stream time then): a revision made after the newest minute closed knows more (a
 * pending id since got). Emitted at the same stream time, both taken together.
 */
export function laterRefillFrom(
  a: RefillFrom | undefined,
  b: RefillFrom | undefined,
): RefillFrom | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  if (a.asOf !== b.asOf) return a.asOf > b.asOf ? a : b;
  const taken = TakenTrades.from(a);
  taken.merge(TakenTrades.from(b));
  const pending = a.pendingIds ?? b.pendingIds;
  const got = [...new Set([...(a.pendingIds?.got ?? []), ...(b.pendingIds?.got ?? [])])];
  return {
    asOf: a.asOf,
    ...(taken.lastId === undefined ? {} : { lastId: taken.lastId }),
    ...(taken.lastTs === undefined ? {} : { lastTs: taken.lastTs }),
    recentIds: taken.recentIds(),
    ...(pending === undefined ? {} : { pendingIds: { ...pending, got } }),
  };
}
