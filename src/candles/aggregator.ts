import { ByPair } from '../core/by-pair.ts';
import { ERR, fail } from '../core/errors.ts';
import { type RefillFrom, TakenTrades } from '../ingestion/resume-points.ts';
import { type Candle, INTERVALS, type Interval } from '../schemas/candle.ts';
import type { Trade, Watermark } from '../schemas/trade.ts';

/**
 * Event-time tumbling windows: trades → OHLCV candles, per (exchange, pair). Pure stream logic, no I/O.
 *
 * Time semantics (named, never implicit):
 * - A window is the half-open event-time interval [windowStart, windowStart + interval), by `tradeTs`.
 * - **Stream time** per (exchange, pair) is the largest event time seen so far, from trades *and* from
 *   source watermarks (live sources send one per second from the wall clock, replays from the replay
 *   clock). It never goes backwards.
 * - **Close on watermark**: a window closes when stream time ≥ windowEnd + grace. Closed windows are
 *   emitted in windowStart order, once.
 * - **Close on the clock / fill idle**: every window that ends at or before stream time − grace and saw no
 *   trade is still emitted, as a `filled` candle (open = high = low = close = previous close, volume 0,
 *   trades 0, vwap = close). Nothing is filled before a pair's first trade (there is no previous close).
 * - **Final watermark** (end of a finite source): every open window closes at once, no grace, no filling
 *   beyond the last trade.
 * - **Late trade**: one whose window is already closed. Counted, and by `latePolicy`:
 *   `dlq` — handed to `output.late` (the service sends it to the dead-letter topic with the reason);
 *   `revise` — the closed window (kept for `revisionHorizon` windows, traded or filled) absorbs it and is emitted
 *   again with `revision` + 1; older than that, it falls back to `dlq`. A filled window that absorbs one becomes a
 *   traded candle, and the filled windows after a window whose close changed are emitted again at the new close
 *   (and later fills carry it): the latest revision of every window is what the trades in time order give.
 * - Within a window, `open` is the trade with the smallest tradeTs and `close` the one with the largest
 *   (arrival order breaks ties), so out-of-order trades within the grace period give the same candle.
 *
 * Restart support (see `lowestNeededPosition` and `seed`): the caller tags every input with a position
 * (e.g. a Kafka offset) and commits only up to the lowest position still needed to rebuild open state; on
 * restart it seeds each pair with the last candle it had published, re-reads from the committed position,
 * and gets exactly the candles of an uninterrupted run (a property test crashes it at every point).
 * Trades re-read for windows already published are skipped and counted (`stats.replayed`), not dead-lettered.
 * Which trades can be re-read (see `PairSeed.inputEnd`): only those at or before where the earlier run had read to
 * when it last published, and (under `dlq`) only while the rebuilt stream time has not closed their window — one that
 * the re-read records alone show late was late in the earlier run too, so it is in no candle. Anything else for a
 * published window is a late trade: dead-lettered, or under `revise` a revision of a window taken back from the
 * seed (`PairSeed.retained`: the latest revisions the earlier run published, which carry `revisable`). The candle
 * service therefore publishes a batch's dead letters before its candles: a later candle's higher bound would make a
 * retry take a late trade whose dead letter failed for a re-read (docs/time-semantics.md).
 */
export type LatePolicy = 'dlq' | 'revise';

/** Closed windows kept per pair for revisions under `revise`, by default (`CandleAggregatorOptions.revisionHorizon`). */
export const REVISION_HORIZON = 60;

export interface CandleAggregatorOptions {
  interval?: Interval;
  /** How long after windowEnd (in event time) a window waits for late trades. Default 5 s. */
  graceMs?: number;
  latePolicy?: LatePolicy;
  /** Closed windows kept per pair for revisions under `revise` (default `REVISION_HORIZON`). */
  revisionHorizon?: number;
  /**
   * Each candle carries the ids of its trades of its last `closingTradesMs` (`Candle.closingTradeIds`). Default: none.
   */
  closingTradesMs?: number;
  /**
   * Each candle carries where its pair's trades stood when it was emitted (`Candle.refillFrom`): the newest taken in
   * the closed minutes, and the ids the watermarks said were not yet got. Default: not.
   */
  refillFrom?: boolean;
}

export interface AggregatorOutput {
  candle(c: Candle): void;
  late(t: Trade, reason: string): void;
}

/** What a restarted service already published for a pair (read back from the candles topic). */
export interface PairSeed {
  exchange: string;
  pair: string;
  /** Latest windowStart already published. */
  lastWindowStart: number;
  /** Its close: the previous close for filled candles. */
  lastClose: number;
  /** Every (windowStart, revision) already published that is still in the read-back tail. */
  published: Iterable<readonly [windowStart: number, revision: number]>;
  /**
   * The last input position the earlier run had read when it last published (the candle service: the largest
   * `Candle.inputOffset` read back, bounded by the end of the partition when it resumed): no published candle holds a
   * trade after it, so a trade after it for a published window is a new late trade, not a re-read one.
   * Default: unknown, every position may be a re-read.
   */
  inputEnd?: number;
  /**
   * Published by an earlier process on another bus (`cryptocast run` restarted on its store, whose positions say
   * nothing of what that process read): a trade with its event time in [from, to) may be one that process already took
   * — a live connector's restart refill asks from a second before the resume point (`REFILL_OVERLAP_MS`), and a store
   * written before `Candle.closingTradeIds` keeps no trade ids to tell it by — so it is a re-read, whatever its
   * position. Not set when the stored candle names them (the trades stage drops those as seen). Default: none.
   */
  retaken?: { readonly from: number; readonly to: number };
  /**
   * Under `revise`: the latest revision of each window published up to `lastWindowStart`, oldest first (the candle
   * service: from the read-back tail). The windows after the last one that cannot be revised (a traded candle without
   * `revisable`) or the last gap, at most `revisionHorizon`, are kept for revisions as if this run had closed them: a
   * late trade after the restart revises them as it would have without the restart.
   */
  retained?: readonly Candle[];
  /** With `CandleAggregatorOptions.refillFrom`: where the pair's trades stood (the stored candles' latest `refillFrom`). */
  refillFrom?: RefillFrom;
}

class WindowAcc {
  readonly start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  openTs: number;
  closeTs: number;
  volume = 0;
  quoteVolume = 0;
  trades = 0;
  revision = 0;
  firstPos: number;
  /** An idle window (no trade): its prices are the previous window's close. */
  filled = false;
  /** From this event time on, a trade's id is kept in `closingIds` (`CandleAggregatorOptions.closingTradesMs`). */
  private readonly closingFrom: number;
  /** The ids of its trades from `closingFrom` on; undefined: not kept, or unknown (taken back from a candle without). */
  closingIds: string[] | undefined;
  /** Its trades' newest id and time (`CandleAggregatorOptions.refillFrom`), into its pair's when it closes. */
  taken: TakenTrades | undefined;
  /** Of its trades, the ids its pair's watermarks said were not yet got (`PairState.pending`), got once it closes. */
  pendingGot: string[] | undefined;

  /**
   * A window opened by its first trade `t`, or, without one, a filled window at the previous close `carried`; trades
   * from `closingFrom` on have their ids kept (`closingIds`).
   */
  constructor(
    start: number,
    t: Trade | undefined,
    pos: number,
    carried = Number.NaN,
    closingFrom = Number.POSITIVE_INFINITY,
  ) {
    this.start = start;
    const price = t?.price ?? carried;
    this.open = this.high = this.low = this.close = price;
    this.openTs = this.closeTs = t?.tradeTs ?? start;
    this.firstPos = pos;
    this.closingFrom = closingFrom;
    if (closingFrom !== Number.POSITIVE_INFINITY) this.closingIds = [];
    if (t !== undefined) this.add(t, true);
    else this.filled = true;
  }

  /**
   * A published window taken back for revisions after a restart (`PairSeed.retained`), or `undefined` when the candle
   * does not carry what a revision needs. Its input position is unknown (-1): its state is in the published candle,
   * so it holds back no commit.
   */
  static fromCandle(c: Candle, closingFrom = Number.POSITIVE_INFINITY): WindowAcc | undefined {
    if (c.filled) {
      const w = new WindowAcc(c.windowStart, undefined, -1, c.close, closingFrom);
      w.revision = c.revision;
      w.closingIds = w.closingIds === undefined ? undefined : [...(c.closingTradeIds ?? [])];
      return w;
    }
    const r = c.revisable;
    if (r === undefined || c.trades === undefined) return undefined;
    const w = new WindowAcc(c.windowStart, undefined, -1, c.close, closingFrom);
    // Unknown when the candle does not carry them (a store written before them): its revisions do not either.
    w.closingIds =
      w.closingIds === undefined || c.closingTradeIds === undefined ? undefined : [...c.closingTradeIds];
    w.filled = false;
    w.open = c.open;
    w.high = c.high;
    w.low = c.low;
    w.openTs = r.openTs;
    w.closeTs = r.closeTs;
    w.volume = r.volume;
    w.quoteVolume = r.quoteVolume;
    w.trades = c.trades;
    w.revision = c.revision;
    return w;
  }

  /** A late trade: a filled window becomes a traded one with it as its only trade. */
  absorb(t: Trade, pos: number): void {
    if (!this.filled) {
      this.add(t);
      return;
    }
    this.filled = false;
    this.open = this.high = this.low = this.close = t.price;
    this.openTs = this.closeTs = t.tradeTs;
    this.firstPos = pos;
    this.add(t, true);
  }

  add(t: Trade, first = false): void {
    const p = t.price;
    if (!first) {
      if (p > this.high) this.high = p;
      if (p < this.low) this.low = p;
      if (t.tradeTs < this.openTs) {
        this.openTs = t.tradeTs;
        this.open = p;
      }
      if (t.tradeTs >= this.closeTs) {
        this.closeTs = t.tradeTs;
        this.close = p;
      }
    }
    this.volume += t.qty;
    this.quoteVolume += p * t.qty;
    this.trades++;
    if (t.tradeTs >= this.closingFrom) this.closingIds?.push(t.tradeId);
    this.taken?.take(t.tradeId, t.tradeTs);
  }
}

class PairState {
  readonly exchange: string;
  readonly pair: string;
  /** Open windows, ascending by start; usually one, two during a grace period. */
  readonly open: WindowAcc[] = [];
  /** Closed windows kept for revisions (ascending), only under `revise`. */
  readonly retained: WindowAcc[] = [];
  streamTime = Number.NEGATIVE_INFINITY;
  streamTimePos = -1;
  lastClosedStart: number | undefined;
  lastClose: number | undefined;
  /** From a seed: windows at or before this start were published by an earlier run. */
  seededUpTo = Number.NEGATIVE_INFINITY;
  seededPublished: Set<string> | undefined;
  /** From a seed: inputs after this position are new (`PairSeed.inputEnd`). */
  seededInputEnd = Number.POSITIVE_INFINITY;
  /** From a seed: trades of these event times may have been taken by an earlier process (`PairSeed.retaken`). */
  seededRetaken: { readonly from: number; readonly to: number } | undefined;
  /** The trades of its closed windows and its late ones (`CandleAggregatorOptions.refillFrom`). */
  readonly taken = new TakenTrades();
  /** The ids its latest watermark said were not yet got, and those of them come since in a closed window or late. */
  pending: { afterId: number; untilId: number; sinceTs: number; got: Set<string> } | undefined;
  /** The seed's `refillFrom.asOf`: a candle emitted after the restart says more, at an `asOf` not below it. */
  refillAsOfFloor = Number.NEGATIVE_INFINITY;

  constructor(exchange: string, pair: string) {
    this.exchange = exchange;
    this.pair = pair;
  }
}

export interface AggregatorStats {
  trades: number;
  late: number;
  revised: number;
  candles: number;
  filled: number;
  suppressed: number;
  /** Trades re-read after a restart for windows already published (skipped, not late). */
  replayed: number;
}

export class CandleAggregator {
  readonly interval: Interval;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly latePolicy: LatePolicy;
  readonly revisionHorizon: number;
  /** `CandleAggregatorOptions.closingTradesMs`: +∞ when candles carry no `closingTradeIds`. */
  private readonly closingTradesMs: number;
  private readonly refillFrom: boolean;
  readonly stats: AggregatorStats = {
    trades: 0,
    late: 0,
    revised: 0,
    candles: 0,
    filled: 0,
    suppressed: 0,
    replayed: 0,
  };
  private readonly out: AggregatorOutput;
  private readonly states = new ByPair((exchange, pair) => new PairState(exchange, pair));

  constructor(output: AggregatorOutput, options: CandleAggregatorOptions = {}) {
    this.out = output;
    this.interval = options.interval ?? '1m';
    this.intervalMs = INTERVALS[this.interval];
    this.graceMs = options.graceMs ?? 5_000;
    this.latePolicy = options.latePolicy ?? 'dlq';
    this.revisionHorizon = options.revisionHorizon ?? REVISION_HORIZON;
    this.closingTradesMs = options.closingTradesMs ?? Number.POSITIVE_INFINITY;
    this.refillFrom = options.refillFrom ?? false;
    if (!(this.graceMs >= 0)) throw fail(ERR.CONFIG, `grace must be >= 0 ms, got ${this.graceMs}`);
  }

  /** Adds one trade (already validated and deduplicated). `pos` tags its input position for commits. */
  onTrade(t: Trade, pos = -1): void {
    const s = this.state(t.exchange, t.pair);
    this.stats.trades++;
    const I = this.intervalMs;
    const start = t.tradeTs - (t.tradeTs % I);
    const limit = Math.max(s.streamTime, t.tradeTs) - this.graceMs;

    if (
      (s.lastClosedStart !== undefined && start <= s.lastClosedStart) ||
      start + I <= s.streamTime - this.graceMs
    ) {
      // Taken, whatever the late policy does with it (revised, dead-lettered): a restart need not ask for it again.
      if (this.refillFrom) {
        s.taken.take(t.tradeId, t.tradeTs);
        if (isPending(s, t)) s.pending!.got.add(t.tradeId);
      }
      this.onLate(s, t, start, pos);
    } else {
      const open = s.open;
      const n = open.length;
      const last = n > 0 ? open[n - 1]! : undefined;
      let w: WindowAcc;
      if (last !== undefined && last.start === start) {
        w = last;
        w.add(t);
      } else if (last === undefined || last.start < start) {
        w = this.window(start, t, pos);
        open.push(w);
      } else {
        // Out of order within the grace period: an older window that is still open (or a new one between).
        let i = n - 1;
        while (i > 0 && open[i - 1]!.start >= start) i--;
        w = open[i]!;
        if (w.start === start) w.add(t);
        else {
          w = this.window(start, t, pos);
          open.splice(i, 0, w);
        }
      }
      // Got only once its window is closed (stored): until then a restart refills it with its window.
      if (isPending(s, t)) w.pendingGot?.push(t.tradeId);
    }
    if (t.tradeTs > s.streamTime) {
      s.streamTime = t.tradeTs;
      s.streamTimePos = pos;
      if (s.open.length > 0 && s.open[0]!.start + I <= limit) this.closeUpTo(s, limit);
      else if (s.lastClosedStart !== undefined && s.lastClosedStart + 2 * I <= limit)
        this.closeUpTo(s, limit);
    }
  }

  /** Advances event time for a pair (see `WatermarkSchema`). */
  onWatermark(w: Watermark, pos = -1): void {
    const s = this.state(w.exchange, w.pair);
    if (this.refillFrom && w.final !== true) {
      const p = w.pendingIds;
      // What came of the ids said before stays got where the range still holds it (a retry narrows it).
      const got = new Set([...(s.pending?.got ?? [])].filter((id) => p !== undefined && inRange(p, id)));
      s.pending = p === undefined ? undefined : { ...p, got };
    }
    if (w.ts > s.streamTime) {
      s.streamTime = w.ts;
      s.streamTimePos = pos;
    }
    if (w.final) this.closeAllOpen(s);
    else this.closeUpTo(s, s.streamTime - this.graceMs);
  }

  /** Closes every open window of every pair now (end of input), without filling. */
  flush(): void {
    for (const s of this.states.values()) this.closeAllOpen(s);
  }

  /** Restores what an earlier run already published, so that rebuilt windows are not published twice. */
  seed(seed: PairSeed): void {
    const s = this.state(seed.exchange, seed.pair);
    s.lastClosedStart = seed.lastWindowStart;
    s.lastClose = seed.lastClose;
    s.seededUpTo = seed.lastWindowStart;
    s.seededInputEnd = seed.inputEnd ?? Number.POSITIVE_INFINITY;
    s.seededRetaken = seed.retaken;
    if (this.refillFrom && seed.refillFrom !== undefined) {
      s.taken.merge(TakenTrades.from(seed.refillFrom));
      s.refillAsOfFloor = seed.refillFrom.asOf;
      const p = seed.refillFrom.pendingIds;
      s.pending = p === undefined ? undefined : { ...p, got: new Set(p.got ?? []) };
    }
    s.seededPublished = new Set();
    for (const [start, rev] of seed.published) s.seededPublished.add(start + ':' + rev);
    s.retained.length = 0;
    if (this.latePolicy === 'revise') {
      // The contiguous run of revisable windows that ends at the last published one (carryClose walks neighbours).
      const kept: WindowAcc[] = [];
      for (const c of seed.retained ?? []) {
        if (c.windowStart > seed.lastWindowStart) break;
        const w = WindowAcc.fromCandle(c, this.closingFrom(c.windowEnd));
        const prev = kept[kept.length - 1];
        if (w === undefined || (prev !== undefined && prev.start + this.intervalMs !== w.start))
          kept.length = 0;
        if (w !== undefined) kept.push(w);
      }
      if (kept[kept.length - 1]?.start === seed.lastWindowStart)
        for (const w of kept.slice(-this.revisionHorizon)) s.retained.push(w);
    }
  }

  /**
   * The lowest input position a restart must re-read to rebuild the open state exactly: the first input of
   * every open (or retained) window, and the input that set the stream time of any pair with open windows.
   * `undefined` when nothing is open: everything consumed so far may be committed.
   */
  lowestNeededPosition(): number | undefined {
    let min: number | undefined;
    for (const s of this.states.values()) {
      if (s.open.length === 0 && s.retained.length === 0) continue;
      for (const w of s.open) if (min === undefined || w.firstPos < min) min = w.firstPos;
      for (const w of s.retained)
        if (!w.filled && w.firstPos >= 0 && (min === undefined || w.firstPos < min)) min = w.firstPos;
      if (s.streamTimePos >= 0 && (min === undefined || s.streamTimePos < min)) min = s.streamTimePos;
    }
    return min;
  }

  /** Number of windows currently open across pairs (a gauge for metrics). */
  openWindows(): number {
    let n = 0;
    for (const s of this.states.values()) n += s.open.length;
    return n;
  }

  private state(exchange: string, pair: string): PairState {
    return this.states.get(exchange, pair);
  }

  private onLate(s: PairState, t: Trade, start: number, pos: number): void {
    this.stats.late++;
    const closedAt = start + this.intervalMs + this.graceMs;
    if (
      start <= s.seededUpTo &&
      (pos <= s.seededInputEnd ||
        (s.seededRetaken !== undefined &&
          t.tradeTs >= s.seededRetaken.from &&
          t.tradeTs < s.seededRetaken.to)) &&
      (this.latePolicy === 'revise' || closedAt > s.streamTime)
    ) {
      // After a restart the service re-reads from its last safe offset: trades of windows it had already
      // published are expected here and must not count twice. Counted, not dead-lettered. Not a re-read: one
      // appended after the service resumed; nor, under `dlq`, one whose window the re-read records already closed
      // (then it was late in the earlier run as well, in no candle: dead-lettered again, at least once). Under
      // `revise` such a trade may be in a published revision, so it stays a re-read (checked before the revision
      // below: a window taken back from the seed already holds it).
      this.stats.late--;
      this.stats.replayed++;
      return;
    }
    if (this.latePolicy === 'revise') {
      const i = s.retained.findIndex((r) => r.start === start);
      if (i >= 0) {
        const w = s.retained[i]!;
        w.absorb(t, pos);
        w.revision++;
        this.stats.revised++;
        this.emit(s, w);
        this.carryClose(s, i);
        return;
      }
    }
    this.out.late(
      t,
      `late trade: window ${new Date(start).toISOString()} of ${s.exchange} ${s.pair} closed (grace ${this.graceMs} ms, stream time ${new Date(Math.max(s.streamTime, closedAt)).toISOString()})`,
    );
  }

  /** Emits, in order, every window (traded or idle) that ends at or before `limit`. */
  private closeUpTo(s: PairState, limit: number): void {
    const I = this.intervalMs;
    const open = s.open;
    while (open.length > 0 && open[0]!.start + I <= limit) {
      const w = open.shift()!;
      this.fillIdle(s, w.start);
      this.closeWindow(s, w);
    }
    // Idle windows after the last closed one, up to the limit.
    const upTo = limit - (((limit % I) + I) % I); // first window start that is not yet closable
    this.fillIdle(s, open.length > 0 ? Math.min(open[0]!.start, upTo) : upTo);
  }

  private closeAllOpen(s: PairState): void {
    const open = s.open;
    while (open.length > 0) {
      const w = open.shift()!;
      this.fillIdle(s, w.start);
      this.closeWindow(s, w);
    }
  }

  /**
   * After the retained window at `i` was revised: the filled windows right after it carry its close, so those whose
   * price it changed are emitted again (revision + 1), and when they reach the last closed window, later fills carry
   * it too.
   */
  private carryClose(s: PairState, i: number): void {
    const retained = s.retained;
    const close = retained[i]!.close;
    let k = i + 1;
    for (; k < retained.length && retained[k]!.filled; k++) {
      const w = retained[k]!;
      if (w.close === close) continue;
      w.open = w.high = w.low = w.close = close;
      w.revision++;
      this.stats.revised++;
      this.emit(s, w);
    }
    if (k === retained.length && retained[k - 1]!.start === s.lastClosedStart) s.lastClose = close;
  }

  /** Emits filled candles for the windows strictly between the last closed one and `beforeStart`. */
  private fillIdle(s: PairState, beforeStart: number): void {
    if (s.lastClosedStart === undefined || s.lastClose === undefined) return;
    const I = this.intervalMs;
    for (let start = s.lastClosedStart + I; start < beforeStart; start += I) {
      const c = s.lastClose;
      this.stats.filled++;
      s.lastClosedStart = start;
      if (this.latePolicy === 'revise') this.retain(s, this.window(start, undefined, -1, c));
      this.publish(s, {
        v: 1,
        exchange: s.exchange,
        pair: s.pair,
        interval: this.interval,
        windowStart: start,
        windowEnd: start + I,
        open: c,
        high: c,
        low: c,
        close: c,
        volume: 0,
        trades: 0,
        vwap: c,
        filled: true,
        revision: 0,
        ...(this.closingTradesMs === Number.POSITIVE_INFINITY ? {} : { closingTradeIds: [] }),
        ...this.refillFromOf(s, start + I),
      });
    }
  }

  private closeWindow(s: PairState, w: WindowAcc): void {
    s.lastClosedStart = w.start;
    s.lastClose = w.close;
    if (w.taken !== undefined) {
      s.taken.merge(w.taken);
      w.taken = undefined;
    }
    for (const id of w.pendingGot?.splice(0) ?? []) if (isPending(s, { tradeId: id })) s.pending!.got.add(id);
    this.emit(s, w);
    if (this.latePolicy === 'revise') this.retain(s, w);
  }

  private retain(s: PairState, w: WindowAcc): void {
    s.retained.push(w);
    if (s.retained.length > this.revisionHorizon) s.retained.shift();
  }

  private emit(s: PairState, w: WindowAcc): void {
    const vwap = w.volume > 0 ? w.quoteVolume / w.volume : w.close;
    this.publish(s, {
      v: 1,
      exchange: s.exchange,
      pair: s.pair,
      interval: this.interval,
      windowStart: w.start,
      windowEnd: w.start + this.intervalMs,
      open: w.open,
      high: w.high,
      low: w.low,
      close: w.close,
      // Sums of decimal quantities pick up binary noise (0.1 + 0.2); no exchange quotes sizes finer than 1e-10.
      volume: Math.round(w.volume * 1e10) / 1e10,
      trades: w.trades,
      // Float rounding of Σpq/Σq can put the VWAP a hair outside [low, high]; clamp it back.
      vwap: Math.min(w.high, Math.max(w.low, vwap)),
      filled: w.filled,
      revision: w.revision,
      // What a restarted service needs to revise this window again (`PairSeed.retained`).
      ...(this.latePolicy === 'revise' && !w.filled
        ? {
            revisable: { openTs: w.openTs, closeTs: w.closeTs, volume: w.volume, quoteVolume: w.quoteVolume },
          }
        : {}),
      ...(w.closingIds === undefined ? {} : { closingTradeIds: [...w.closingIds] }),
      ...this.refillFromOf(s, w.start + this.intervalMs),
    });
  }

  /**
   * `Candle.refillFrom` of a candle of `s` ending at `windowEnd`, emitted now (`CandleAggregatorOptions.refillFrom`): as of
   * the pair's stream time, or, a revision before any after a restart, the seed's (it knows as much and more).
   */
  private refillFromOf(s: PairState, windowEnd: number): { refillFrom?: RefillFrom } {
    if (!this.refillFrom) return {};
    const { lastId, lastTs } = s.taken;
    const p = s.pending;
    return {
      refillFrom: {
        asOf: Math.max(s.streamTime, s.refillAsOfFloor, windowEnd),
        ...(lastId === undefined ? {} : { lastId }),
        ...(lastTs === undefined ? {} : { lastTs }),
        recentIds: s.taken.recentIds(),
        ...(p === undefined
          ? {}
          : { pendingIds: { afterId: p.afterId, untilId: p.untilId, sinceTs: p.sinceTs, got: [...p.got] } }),
      },
    };
  }

  /** A new window (see `WindowAcc`'s constructor), keeping the ids of its closing trades if asked to. */
  private window(start: number, t: Trade | undefined, pos: number, carried = Number.NaN): WindowAcc {
    const w = new WindowAcc(start, undefined, pos, carried, this.closingFrom(start + this.intervalMs));
    if (this.refillFrom) {
      w.taken = new TakenTrades();
      w.pendingGot = [];
    }
    if (t !== undefined) w.absorb(t, pos);
    return w;
  }

  /** From which event time a window ending at `end` keeps its trades' ids: +∞ when candles carry none. */
  private closingFrom(end: number): number {
    return this.closingTradesMs === Number.POSITIVE_INFINITY
      ? Number.POSITIVE_INFINITY
      : end - this.closingTradesMs;
  }

  private publish(s: PairState, c: Candle): void {
    if (s.seededPublished !== undefined) {
      const already =
        (c.revision === 0 && c.windowStart <= s.seededUpTo) ||
        s.seededPublished.has(c.windowStart + ':' + c.revision);
      if (already) {
        this.stats.suppressed++;
        return;
      }
    }
    this.stats.candles++;
    this.out.candle(c);
  }
}

/** Whether `id` is among the ids of a `Watermark.pendingIds`. */
function inRange(p: { afterId: number; untilId: number }, id: string): boolean {
  const n = Number(id);
  return Number.isSafeInteger(n) && n > p.afterId && n < p.untilId;
}

/** Whether `t` is one of the ids its pair's watermarks said were not yet got. */
function isPending(s: PairState, t: { tradeId: string }): boolean {
  return s.pending !== undefined && inRange(s.pending, t.tradeId);
}
