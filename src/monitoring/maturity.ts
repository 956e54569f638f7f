import TinyQueue from 'tinyqueue';
import { TimedMap } from '../core/timed-map.ts';
import type { Candle } from '../schemas/candle.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { errorKey, type PredictionError, revisable } from '../schemas/prediction-error.ts';
import { scorePrediction, unscorable } from './score.ts';

/**
 * The join of predictions with the candles that close at their target time — pure stream logic, no I/O.
 *
 * - A candle (first emission; revisions are ignored, as the features ignore them) records its close at windowEnd
 *   and scores every prediction waiting for that minute.
 * - A prediction whose target close is already known is scored at once (order does not matter); otherwise it
 *   waits.
 * - A waiting prediction becomes `unscorable` — never silently dropped — when its pair's candles pass its target
 *   minute without one (`no_candle_at_target`: a gap), or when the stream's clock is `timeoutMs` past its target
 *   time, its pair has produced nothing since and every candle in the stream has been read
 *   (`target_not_closed_in_time`: the pair stopped). The last condition is the caller's to tell (`expire`): a monitor
 *   restarted behind a backlog of candles reads predictions whose candles it has not reached yet, and the clock —
 *   the wall clock, or another pair's candles read ahead — says nothing about whether those will come.
 * - A prediction timed out whose candle comes after all (within the retention: an upstream stage was down longer
 *   than the timeout, a trades refill) is scored then: the scored verdict supersedes the unscorable one under the same
 *   key — the store and the topic's readers upsert, the rolling quality replaces it (`RollingQuality.add`). Only
 *   this one way: nothing replaces a scored verdict.
 * - Each prediction key gets one verdict (or that one revision): a prediction delivered twice (a re-publish, a
 *   re-read after a restart) is scored once.
 *
 * The clock is the stream's: the newest candle windowEnd seen (replays), or the wall clock live (`now`). Closes and
 * verdict keys are kept for `retentionMs` behind their own pair's newest candle — not the clock, which the wall or
 * another pair may carry a day ahead of a pair being caught up on — so a prediction arriving late (a predictor
 * catching up) still finds its candle; and, until every prediction has been read, behind the pair's newest prediction
 * read too (a restart after an outage of more than a day reads the candles backlog ahead of the predictions).
 */
export interface MaturityOptions {
  /** Waiting this long past targetTs (by the clock) makes a prediction unscorable. Default 15 minutes. */
  timeoutMs?: number;
  /** How long closes and verdicts are kept behind their pair's newest candle. Default 1 day. */
  retentionMs?: number;
  /** The wall clock for live streams; absent: event time only. */
  now?: () => number;
}

interface Series {
  closes: TimedMap<number, number>;
  exchange: string;
  pair: string;
  /**
   * The series' predictions already given a verdict, by model name, version and windowEnd (with the series'
   * exchange and pair, a prediction's key: `errorKey`), each with its targetTs. Not a map of key strings: one made,
   * hashed and kept a day per prediction.
   */
  done: Map<string, Map<number, TimedMap<number, number>>>;
  /** Newest candle windowEnd of the series. */
  clock: number;
  /** Newest targetTs of the series' predictions read (verdict keys are kept a day behind it too: see `expire`). */
  predictionClock: number;
  /** Predictions waiting for their target minute, by targetTs. */
  pending: Map<number, Prediction[]>;
  /**
   * The minutes of `pending`, the earliest first, so that a candle reaches the minutes it decides — its own and those
   * before the series' clock (a gap) — without walking every minute waiting (quadratic in a backlog: 15,000 waiting
   * for their candles took seconds). A minute no longer waiting is skipped when it comes up (and `expire` compacts).
   */
  minutes: TinyQueue<number>;
  /**
   * Verdicts `target_not_closed_in_time`, by targetTs: scored after all if their candle comes (within retention).
   * `counted`: given by this process (in `stats.unscorable`), not remembered from the store.
   */
  timedOut: TimedMap<number, { verdict: PredictionError; counted: boolean }[]>;
}

export class MaturityJoin {
  private readonly series = new Map<string, Series>();
  private eventClock = Number.NEGATIVE_INFINITY;
  private readonly timeoutMs: number;
  private readonly retentionMs: number;
  private readonly wall: (() => number) | undefined;
  /**
   * `judgedBefore`: predictions re-read (a second run on the same store, a restart) whose verdict the store already
   * held from before: not scored again, and not duplicates of this process's own.
   */
  readonly stats = {
    candles: 0,
    predictions: 0,
    scored: 0,
    unscorable: 0,
    duplicates: 0,
    revisions: 0,
    judgedBefore: 0,
    /** Timed-out predictions scored after all when their candle came (counted in `scored`, no longer in `unscorable`). */
    lateScored: 0,
  };
  /** The keys `remember` marked that no prediction has come for yet (each counts once in `judgedBefore`). */
  private readonly remembered = new Set<string>();
  /** The records this join gave that supersede an earlier one of the same prediction (`scoredLate`). */
  private readonly revisions = new WeakSet<PredictionError>();
  /** Series whose candles taken have decided waiting predictions not given yet (`onCandle`'s `max`; `settle`). */
  private readonly unsettled = new Set<Series>();

  constructor(o: MaturityOptions = {}) {
    this.timeoutMs = o.timeoutMs ?? 15 * 60_000;
    this.retentionMs = o.retentionMs ?? 86_400_000;
    this.wall = o.now;
  }

  /** The stream's clock: the newest candle seen, or the wall clock when live (whichever is later). */
  clock(): number {
    return Math.max(this.eventClock, this.wall?.() ?? Number.NEGATIVE_INFINITY);
  }

  /**
   * When a prediction counts as scored. Live: now. On event time (replays): the moment both the prediction and its
   * target close existed — max(targetTs, createdAt) — not how far the candles happened to run ahead in this process,
   * so a replay scores alike however its stages interleave, and after a restart too.
   */
  /**
   * When a prediction of series `s` is found to have no close: live, now; on the event clock, its pair's own clock
   * (the candle that proved the gap) — not another pair's candles read ahead, so a replay dates it the same however
   * its partitions interleave.
   */
  private gapFoundAt(p: Prediction, s: Series): number {
    return this.wall !== undefined ? this.clock() : Math.max(this.scoredAt(p), s.clock);
  }

  private scoredAt(p: Prediction): number {
    return this.wall !== undefined ? this.clock() : Math.max(p.targetTs, p.createdAt);
  }

  private seriesOf(exchange: string, pair: string): Series {
    const k = `${exchange}|${pair}`;
    let s = this.series.get(k);
    if (s === undefined) {
      s = {
        closes: new TimedMap((windowEnd) => windowEnd),
        exchange,
        pair,
        done: new Map(),
        clock: Number.NEGATIVE_INFINITY,
        predictionClock: Number.NEGATIVE_INFINITY,
        pending: new Map(),
        minutes: new TinyQueue<number>(),
        timedOut: new TimedMap((targetTs) => targetTs),
      };
      this.series.set(k, s);
    }
    return s;
  }

  /**
   * A candle: its close recorded, and the verdicts of the predictions it decides — those of its minute (scored) and
   * those of minutes its pair's candles have passed without one (`no_candle_at_target`) — at most `max` of them (the
   * caller's bound on verdicts not stored yet; a candle closing a long gap decides every prediction waiting before
   * it). The rest are given by `settle`, which the caller calls until `settling` is false, before the next candle.
   * The time-outs of the candle's minute scored after all (revisions: the predictions of one minute) come with the
   * first call, whatever `max`.
   */
  onCandle(c: Candle, max = Number.POSITIVE_INFINITY): PredictionError[] {
    if (c.revision > 0) {
      this.stats.revisions++;
      return [];
    }
    this.stats.candles++;
    const s = this.seriesOf(c.exchange, c.pair);
    if (!s.closes.has(c.windowEnd)) s.closes.set(c.windowEnd, c.close);
    if (c.windowEnd > s.clock) s.clock = c.windowEnd;
    if (c.windowEnd > this.eventClock) this.eventClock = c.windowEnd;
    const out: PredictionError[] = [];
    const late = s.timedOut.get(c.windowEnd);
    if (late !== undefined) {
      s.timedOut.delete(c.windowEnd);
      // When: live, now; on event time, as any scoring there, when both the prediction and its close existed (the
      // target time), not how far other pairs' candles happened to run ahead.
      const scoredAt = this.wall !== undefined ? this.clock() : c.windowEnd;
      for (const { verdict, counted } of late)
        this.scoredLate(out, scorePrediction(verdict, c.close, scoredAt), counted);
    }
    if (!this.settleSeries(s, out, out.length + max)) this.unsettled.add(s);
    return out;
  }

  /** Whether candles taken have decided predictions whose verdicts `settle` has yet to give. */
  get settling(): boolean {
    return this.unsettled.size > 0;
  }

  /** More of the verdicts the candles taken decided (`onCandle`'s `max`), at most `max`. */
  settle(max = Number.POSITIVE_INFINITY): PredictionError[] {
    const out: PredictionError[] = [];
    for (const s of this.unsettled) {
      if (out.length >= max) break;
      if (this.settleSeries(s, out, max)) this.unsettled.delete(s);
    }
    return out;
  }

  /**
   * Gives, up to `out.length` = `max`, the verdicts of series `s`'s waiting predictions its candles decided, the
   * earliest minute first: scored where the minute's close is known, `no_candle_at_target` before the series' clock
   * without one. Says whether none is left.
   */
  private settleSeries(s: Series, out: PredictionError[], max: number): boolean {
    for (;;) {
      const targetTs = s.minutes.peek();
      if (targetTs === undefined || targetTs > s.clock) return true;
      const ps = s.pending.get(targetTs);
      if (ps === undefined) {
        s.minutes.pop(); // decided already (a time-out), or a minute queued twice
        continue;
      }
      const close = s.closes.get(targetTs);
      if (close === undefined && targetTs === s.clock) return true; // not decided yet
      if (out.length >= max) return false;
      for (const p of ps.splice(0, max - out.length))
        this.verdict(
          s,
          out,
          close !== undefined
            ? scorePrediction(p, close, this.scoredAt(p))
            : unscorable(p, 'no_candle_at_target', this.gapFoundAt(p, s)),
        );
      if (ps.length > 0) return false;
      s.pending.delete(targetTs);
      s.minutes.pop();
    }
  }

  onPrediction(p: Prediction): PredictionError[] {
    this.stats.predictions++;
    const s = this.seriesOf(p.exchange, p.pair);
    if (p.targetTs > s.predictionClock) s.predictionClock = p.targetTs;
    if (judged(s, p)) {
      if (this.remembered.size > 0 && this.remembered.delete(errorKey(p))) this.stats.judgedBefore++;
      else this.stats.duplicates++;
      return [];
    }
    const close = s.closes.get(p.targetTs);
    const out: PredictionError[] = [];
    if (close !== undefined) this.verdict(s, out, scorePrediction(p, close, this.scoredAt(p)));
    else if (p.targetTs < s.clock - this.retentionMs)
      this.verdict(s, out, unscorable(p, 'target_before_retention', this.gapFoundAt(p, s)));
    else if (p.targetTs < s.clock)
      this.verdict(s, out, unscorable(p, 'no_candle_at_target', this.gapFoundAt(p, s)));
    else {
      const waiting = s.pending.get(p.targetTs);
      if (waiting === undefined) {
        s.pending.set(p.targetTs, [p]);
        s.minutes.push(p.targetTs);
      } else if (!waiting.some((w) => samePrediction(w, p))) waiting.push(p);
      else this.stats.duplicates++;
    }
    return out;
  }

  /**
   * Verdicts for predictions that waited too long, and pruning of what is older than the retention. `readToEnd`: whether
   * every candle in the stream has been read (the candles subscription's `readToEnd`); while one may still be in the
   * backlog, nothing times out. `predictionsReadToEnd`: whether every prediction has been read (the predictions
   * subscription's); while not, each pair's closes are also kept a day behind its predictions read (below).
   */
  expire(readToEnd: boolean, predictionsReadToEnd = true): PredictionError[] {
    const now = this.clock();
    const out: PredictionError[] = [];
    for (const s of this.series.values()) {
      // A series whose candles decided predictions not given yet (`settle`): those are its candles' verdicts to give.
      if (readToEnd && !this.unsettled.has(s))
        for (const [targetTs, ps] of s.pending) {
          if (targetTs + this.timeoutMs > now) continue;
          for (const p of ps) {
            // Live, when it was decided; on the event clock, when the wait ran out in the stream — not when a monitor
            // that lagged behind the candles (nothing times out until they are read to the end) got to decide it, so
            // a replay dates its time-outs the same however fast it is read.
            const at = this.wall !== undefined ? now : Math.max(this.scoredAt(p), targetTs + this.timeoutMs);
            const e = unscorable(p, 'target_not_closed_in_time', at);
            if (this.verdict(s, out, e)) keepTimedOut(s, e, true);
          }
          s.pending.delete(targetTs);
        }
      // The minutes no longer waiting (timed out) leave the queue when they come up; bounded here, should they not.
      if (s.minutes.length > 2 * s.pending.size + 64) s.minutes = new TinyQueue([...s.pending.keys()]);
      // A series with predictions and no candle at all has no clock of its own: once every candle is read (none will
      // come for it here), the stream's bounds what it keeps; before that (its candles may be in the backlog) nothing
      // of it is dropped — a restart remembers its stored verdicts, which a re-read prediction must still find.
      const clock = Number.isFinite(s.clock) ? s.clock : readToEnd ? now : Number.NEGATIVE_INFINITY;
      const horizon = clock - this.retentionMs;
      if (Number.isFinite(horizon)) s.timedOut.dropBefore(horizon);
      // Closes also a day behind the pair's predictions read, until every prediction is: a restart after an outage of
      // more than a day reads the candles backlog ahead of the predictions it re-reads from their commit, and a close
      // dropped by the candles' clock alone wrote off a prediction whose candle was re-read (`target_before_retention`).
      // Once the predictions are read to the end, the candles' clock alone: a pair no longer predicted keeps a day.
      const closesHorizon =
        (predictionsReadToEnd ? clock : Math.min(clock, s.predictionClock)) - this.retentionMs;
      if (Number.isFinite(closesHorizon)) s.closes.dropBefore(closesHorizon);
      // Verdict keys also a day behind the series' predictions: a restart after an outage of more than a day reads
      // the candles backlog ahead of the predictions it re-reads from their commit, and a stored verdict forgotten by
      // the candles' clock alone was judged again, `target_before_retention`, replacing the stored record (an upsert).
      const keysHorizon = Math.min(clock, s.predictionClock) - this.retentionMs;
      if (Number.isFinite(keysHorizon))
        for (const [modelName, byVersion] of s.done)
          for (const [modelVersion, judgedAt] of byVersion)
            judgedAt.dropBefore(
              keysHorizon,
              this.remembered.size > 0
                ? (windowEnd) =>
                    this.remembered.delete(
                      errorKey({ exchange: s.exchange, pair: s.pair, windowEnd, modelName, modelVersion }),
                    )
                : undefined,
            );
    }
    return out;
  }

  /** Gives `e`, a verdict on a prediction of series `s`, unless it has one already; says whether it did. */
  private verdict(s: Series, out: PredictionError[], e: PredictionError): boolean {
    if (judged(s, e)) {
      this.stats.duplicates++;
      return false;
    }
    markJudged(s, e);
    if (e.status === 'scored') this.stats.scored++;
    else this.stats.unscorable++;
    out.push(e);
    return true;
  }

  /** A timed-out prediction scored after all: its verdict supersedes the unscorable one (the same key). */
  private scoredLate(out: PredictionError[], e: PredictionError, counted: boolean): void {
    if (counted) this.stats.unscorable--;
    this.stats.scored++;
    this.stats.lateScored++;
    this.revisions.add(e);
    out.push(e);
  }

  /** Whether `e`, a record this join gave, supersedes an earlier record of its prediction (a time-out scored late). */
  isRevision(e: PredictionError): boolean {
    return this.revisions.has(e);
  }

  /**
   * Marks verdicts already in the store (a restart): their predictions are not scored again — except the timed-out
   * ones, still scored if their candle comes (the restart re-reads a day of candles).
   */
  remember(verdicts: Iterable<PredictionError>): void {
    for (const e of verdicts) {
      const s = this.seriesOf(e.exchange, e.pair);
      markJudged(s, e);
      this.remembered.add(errorKey(e));
      if (revisable(e)) keepTimedOut(s, e, false);
    }
  }

  /** Whether `p` is a prediction whose verdict `remember` took from the store and that has not come again yet. */
  remembers(p: Prediction): boolean {
    return this.remembered.size > 0 && this.remembered.has(errorKey(p));
  }

  /**
   * Whether `p`, not judged yet, targets a minute whose close has left this join's memory — its pair's candles are
   * more than the retention past it — so that `onPrediction` would write it off `target_before_retention`. The caller
   * may bring the close back from where it keeps the candles (`restoreClose`) first.
   */
  forgotten(p: Prediction): boolean {
    const s = this.series.get(`${p.exchange}|${p.pair}`);
    return (
      s !== undefined && p.targetTs < s.clock - this.retentionMs && !s.closes.has(p.targetTs) && !judged(s, p)
    );
  }

  /**
   * A close read back for a prediction whose close had left memory (`forgotten`); kept until the next `expire`. Only
   * for a series this join knows (a candle of another exchange under the same pair is not this series' close).
   */
  restoreClose(c: Pick<Candle, 'exchange' | 'pair' | 'windowEnd' | 'close'>): void {
    const s = this.series.get(`${c.exchange}|${c.pair}`);
    if (s !== undefined && !s.closes.has(c.windowEnd)) s.closes.set(c.windowEnd, c.close);
  }

  /** Whether `p` is waiting for its target minute. */
  isWaiting(p: Prediction): boolean {
    const ps = this.series.get(`${p.exchange}|${p.pair}`)?.pending.get(p.targetTs);
    return ps?.some((w) => samePrediction(w, p)) ?? false;
  }

  /** Predictions still waiting, per series (readiness, metrics). */
  pendingCount(): number {
    let n = 0;
    for (const s of this.series.values()) for (const ps of s.pending.values()) n += ps.length;
    return n;
  }

  /** The oldest waiting prediction's targetTs per `exchange|pair` (what a restart must re-read from). */
  oldestPending(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, s] of this.series)
      for (const t of s.pending.keys()) if (t < (out.get(k) ?? Number.POSITIVE_INFINITY)) out.set(k, t);
    return out;
  }

  /** Newest candle windowEnd per `exchange|pair` (alerts: no candles for N minutes). */
  seriesClocks(): Map<string, number> {
    return new Map([...this.series].map(([k, s]) => [k, s.clock]));
  }
}

/** What, with its exchange and pair (its series'), makes a prediction's key (`errorKey`). */
type KeyFields = Pick<Prediction, 'windowEnd' | 'modelName' | 'modelVersion' | 'targetTs'>;

/** Whether two predictions of the same series have the same key (`errorKey`). */
const samePrediction = (a: KeyFields, b: KeyFields): boolean =>
  a.windowEnd === b.windowEnd && a.modelName === b.modelName && a.modelVersion === b.modelVersion;

/** Whether the prediction `k` of series `s` has been given a verdict (or one was remembered). */
const judged = (s: Series, k: KeyFields): boolean =>
  s.done.get(k.modelName)?.get(k.modelVersion)?.has(k.windowEnd) ?? false;

/** Marks the prediction `k` of series `s` as given a verdict, kept by its targetTs. */
function markJudged(s: Series, k: KeyFields): void {
  let byVersion = s.done.get(k.modelName);
  if (byVersion === undefined) {
    byVersion = new Map();
    s.done.set(k.modelName, byVersion);
  }
  let judgedAt = byVersion.get(k.modelVersion);
  if (judgedAt === undefined) {
    judgedAt = new TimedMap((_, targetTs) => targetTs);
    byVersion.set(k.modelVersion, judgedAt);
  }
  judgedAt.set(k.windowEnd, k.targetTs);
}

/** Keeps time-out `e` of series `s` for a candle that may come late; `counted`: given by this process. */
function keepTimedOut(s: Series, e: PredictionError, counted: boolean): void {
  const kept = s.timedOut.get(e.targetTs);
  if (kept === undefined) s.timedOut.set(e.targetTs, [{ verdict: e, counted }]);
  else kept.push({ verdict: e, counted });
}
