import type { ResumePointRecord } from '../schemas/resume-point.ts';
import type { TradeEvent } from '../schemas/trade.ts';

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
      // A final watermark ends a finite source (a replay): it says nothing about where a live stream stopped.
      if (e.final !== true && e.ts > (p.watermarkTs ?? Number.NEGATIVE_INFINITY)) p.watermarkTs = e.ts;
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

  /** The point of one (exchange, pair), or undefined when the tail holds nothing of it. */
  get(exchange: string, pair: string): ResumePoint | undefined {
    const p = this.points.get(`${exchange}|${pair}`);
    return p?.lastTs === undefined && p?.watermarkTs === undefined ? undefined : p;
  }
}
