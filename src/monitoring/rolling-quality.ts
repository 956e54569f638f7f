import { TimedMap } from '../core/timed-map.ts';
import { type PredictionError, revisable, supersedes } from '../schemas/prediction-error.ts';
import { wilson } from '../training/metrics.ts';

/**
 * Rolling quality of the live predictions, per pair and model version, over windows ending at the stream's clock.
 *
 * Kept as mergeable per-minute sums (the whylogs pattern: a window is the sum of its minutes), so any window is exact,
 * cheap to compute, and the state is rebuilt after a restart by adding the stored error records again. Minutes are
 * those of the target time (when the outcome became known).
 */
export interface Sums {
  /** Scored predictions. */
  n: number;
  sumAbs: number;
  sumSq: number;
  sumErr: number;
  sumPersistAbs: number;
  /** Direction: hits among the non-tie moves, non-tie moves, ties. */
  hits: number;
  directional: number;
  ties: number;
  /** Actual closes inside [p10, p90]. */
  inBand: number;
  unscorable: number;
}

export const emptySums = (): Sums => ({
  n: 0,
  sumAbs: 0,
  sumSq: 0,
  sumErr: 0,
  sumPersistAbs: 0,
  hits: 0,
  directional: 0,
  ties: 0,
  inBand: 0,
  unscorable: 0,
});

export function addRecord(s: Sums, e: PredictionError): void {
  if (e.status === 'unscorable') {
    s.unscorable++;
    return;
  }
  s.n++;
  s.sumAbs += e.absError!;
  s.sumSq += e.error! * e.error!;
  s.sumErr += e.error!;
  s.sumPersistAbs += e.persistenceAbsError!;
  if (e.directionTie) s.ties++;
  else {
    s.directional++;
    if (e.directionHit) s.hits++;
  }
  if (e.inBand) s.inBand++;
}

export function merge(into: Sums, from: Sums): void {
  into.n += from.n;
  into.sumAbs += from.sumAbs;
  into.sumSq += from.sumSq;
  into.sumErr += from.sumErr;
  into.sumPersistAbs += from.sumPersistAbs;
  into.hits += from.hits;
  into.directional += from.directional;
  into.ties += from.ties;
  into.inBand += from.inBand;
  into.unscorable += from.unscorable;
}

/** The figures of a window. Prices in the pair's quote currency; null where there is nothing to compute. */
export interface QualityFigures {
  count: number;
  unscorable: number;
  mae: number | null;
  rmse: number | null;
  /** Mean of predicted − actual: positive = the model predicts too high. */
  bias: number | null;
  persistenceMae: number | null;
  /** 1 − MAE / persistence MAE: positive = better than persistence. */
  skill: number | null;
  directionalAccuracy: number | null;
  directionalCi95: [number, number] | null;
  ties: number;
  /** Share of actual closes inside [p10, p90] (target 0.8). */
  coverage: number | null;
}

export function figures(s: Sums): QualityFigures {
  const n = s.n;
  const mae = n > 0 ? s.sumAbs / n : null;
  const pmae = n > 0 ? s.sumPersistAbs / n : null;
  return {
    count: n,
    unscorable: s.unscorable,
    mae,
    rmse: n > 0 ? Math.sqrt(s.sumSq / n) : null,
    bias: n > 0 ? s.sumErr / n : null,
    persistenceMae: pmae,
    skill: mae !== null && pmae !== null && pmae > 0 ? 1 - mae / pmae : null,
    directionalAccuracy: s.directional > 0 ? s.hits / s.directional : null,
    directionalCi95: wilson(s.hits, s.directional),
    ties: s.ties,
    coverage: n > 0 ? s.inBand / n : null,
  };
}

export const MINUTE = 60_000;
/** The reason of a record that may be superseded (`revisable`). */
const REVISABLE = 'target_not_closed_in_time' satisfies PredictionError['reason'];
const HOUR = 60 * MINUTE;

function mergeMinute(into: Sums, b: Map<number, Sums>, minute: number): void {
  const x = b.get(minute);
  if (x !== undefined) merge(into, x);
}
/** The index of the first element of `sorted` (ascending) greater than `x`; its length when there is none. */
function firstAfter(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
export const DEFAULT_WINDOWS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;

export interface QualitySeries {
  pair: string;
  modelName: string;
  modelVersion: number;
}

/** One series of `RollingQuality`: its key in `buckets`, its minute buckets, and the records added to it. */
interface SeriesState {
  k: string;
  b: TimedMap<number, Sums>;
  /**
   * By exchange, the records added (their windowEnd: with the exchange and the series, a record's key, `errorKey`),
   * each with its minute: adding a record again (a re-read, a re-publication) is a no-op, unless it supersedes the
   * one added (see `add`). `revisable`: those whose record may still be superseded (a time-out); few.
   */
  seen: Map<string, { minutes: TimedMap<number, number>; revisable: Set<number> }>;
}

export class RollingQuality {
  /** `pair|modelName|modelVersion` → minute → sums. */
  private readonly buckets = new Map<string, TimedMap<number, Sums>>();
  private readonly keys = new Map<string, QualitySeries>();
  /**
   * The same series by pair, model name and version, each with its key in `buckets` and the records added to it:
   * `add` finds a record's series, and whether it was added, without making a string of its key per record (made,
   * hashed, and kept a week: a tenth of the scoring's time, most of it the garbage collector's).
   */
  private readonly seriesIndex = new Map<string, Map<string, Map<number, SeriesState>>>();
  readonly windows: Readonly<Record<string, number>>;
  private readonly keepMs: number;
  /** The newest target time added: the clock windows end at, unless one is given. */
  clock = Number.NEGATIVE_INFINITY;
  /**
   * Window sums already computed since the last change (add, prune), by pair, window, last minute and model. A replay
   * evaluates the alert rules every 15 s of event time — four times a minute, and two rules on the same 24 h window —
   * and each evaluation summed up to a day of minute buckets per pair: 1 % of a replay's CPU.
   */
  private readonly computed = new Map<string, Sums>();
  /**
   * Per series, the sums of whole hours, made from their minutes when first asked and forgotten when one of their
   * minutes changes: a day's window is then up to 118 minutes at its edges and 23 hours, not 1,440 minutes. A replay
   * asks for a new minute's windows at every minute of event time (the minute memo above does not help there), and
   * summing a day of minutes each time was most of the alert rules' cost.
   */
  private readonly hours = new Map<string, Map<number, Sums>>();
  /**
   * Every minute with a bucket in any series, ascending, once each: where a window's sums can change as its end moves
   * (`nextChange`). Mostly appended (verdicts come about in time order); a late minute is put in its place.
   */
  private readonly minutes: number[] = [];

  constructor(windows: Readonly<Record<string, number>> = DEFAULT_WINDOWS) {
    this.windows = windows;
    this.keepMs = Math.max(...Object.values(windows));
  }

  /**
   * Adds a record once (by its key, `errorKey`); returns false for one already added. The one replacement: a record that
   * `supersedes` the one added (a time-out scored after all: see `MaturityJoin`).
   */
  add(e: PredictionError): boolean {
    const series = this.seriesOf(e);
    let seen = series.seen.get(e.exchange);
    if (seen === undefined) {
      seen = { minutes: new TimedMap((_, minute) => minute), revisable: new Set() };
      series.seen.set(e.exchange, seen);
    }
    const before = seen.minutes.get(e.windowEnd);
    if (
      before !== undefined &&
      !supersedes(e, { reason: seen.revisable.has(e.windowEnd) ? REVISABLE : null })
    )
      return false;
    const { k, b } = series;
    const minute = Math.floor(e.targetTs / MINUTE) * MINUTE;
    let s = b.get(minute);
    if (s === undefined) {
      s = emptySums();
      b.set(minute, s);
      this.noteMinute(minute);
    }
    if (before !== undefined) s.unscorable--; // it superseded a time-out, of the same minute (the target time's)
    addRecord(s, e);
    // Only when there is something to forget: a Map's clear() allocates a new table, even for an empty map.
    if (this.computed.size > 0) this.computed.clear();
    this.hours.get(k)?.delete(minute - (minute % HOUR));
    seen.minutes.set(e.windowEnd, minute);
    if (revisable(e)) seen.revisable.add(e.windowEnd);
    else if (seen.revisable.size > 0) seen.revisable.delete(e.windowEnd);
    if (e.targetTs > this.clock) this.clock = e.targetTs;
    return true;
  }

  /** Puts `minute` in `minutes`, unless it is there. */
  private noteMinute(minute: number): void {
    const last = this.minutes.at(-1);
    if (last === undefined || minute > last) {
      this.minutes.push(minute);
      return;
    }
    const i = firstAfter(this.minutes, minute - 1);
    if (this.minutes[i] !== minute) this.minutes.splice(i, 0, minute);
  }

  /**
   * The first instant after `after` at which the sums of a window of one of the lengths `windowsMs` (whole minutes),
   * for any pair and model, may differ from what they were at `after`: a minute with a bucket comes into the window, or
   * leaves it. Infinity when none can. Between the two, the alert rules that read the windows see the same figures.
   */
  nextChange(after: number, windowsMs: readonly number[]): number {
    let next = Number.POSITIVE_INFINITY;
    // A bucket of minute m is in the windows whose last minute is in [m, m + length) (`sums`: (end − length, end]).
    for (const length of [0, ...windowsMs]) {
      const m = this.minutes[firstAfter(this.minutes, after - length)];
      if (m !== undefined && m + length < next) next = m + length;
    }
    return next;
  }

  /** `e`'s series (pair, model name and version). */
  private seriesOf(e: PredictionError): SeriesState {
    let byName = this.seriesIndex.get(e.pair);
    if (byName === undefined) {
      byName = new Map();
      this.seriesIndex.set(e.pair, byName);
    }
    let byVersion = byName.get(e.modelName);
    if (byVersion === undefined) {
      byVersion = new Map();
      byName.set(e.modelName, byVersion);
    }
    let found = byVersion.get(e.modelVersion);
    if (found === undefined) {
      const k = `${e.pair}|${e.modelName}|${e.modelVersion}`;
      let b = this.buckets.get(k);
      if (b === undefined) {
        b = new TimedMap((minute) => minute);
        this.buckets.set(k, b);
        this.keys.set(k, { pair: e.pair, modelName: e.modelName, modelVersion: e.modelVersion });
      }
      found = { k, b, seen: new Map() };
      byVersion.set(e.modelVersion, found);
    }
    return found;
  }

  /** Drops minutes older than the longest window before `end`. */
  prune(end = this.clock): void {
    const from = end - this.keepMs;
    this.computed.clear();
    for (const b of this.buckets.values()) b.dropBefore(from);
    const kept = firstAfter(this.minutes, from - 1);
    if (kept > 0) this.minutes.splice(0, kept);
    // An hour that began before `from` may have lost minutes.
    for (const h of this.hours.values()) for (const start of h.keys()) if (start < from) h.delete(start);
    for (const byName of this.seriesIndex.values())
      for (const byVersion of byName.values())
        for (const { seen } of byVersion.values())
          for (const { minutes, revisable } of seen.values())
            minutes.dropBefore(
              from,
              revisable.size > 0 ? (windowEnd) => revisable.delete(windowEnd) : undefined,
            );
  }

  /** The series (pair, model) with data. */
  series(pair?: string): QualitySeries[] {
    return [...this.keys.values()].filter((s) => pair === undefined || s.pair === pair);
  }

  /**
   * Sums over the minutes in (end − windowMs, end] for a pair, one model version or all of them. The window is exact
   * on whole minutes: a record counts in the minute its target time falls in.
   */
  sums(pair: string, windowMs: number, end = this.clock, model?: { name: string; version: number }): Sums {
    const lastMinute = Math.floor(end / MINUTE) * MINUTE;
    const key = `${pair}|${windowMs}|${lastMinute}|${model === undefined ? '' : `${model.name}|${model.version}`}`;
    const known = this.computed.get(key);
    // A copy: the caller owns what it gets (it may merge into it).
    if (known !== undefined) return { ...known };
    const out = emptySums();
    // The first minute after `end − windowMs` (buckets are whole minutes).
    const first = Math.floor((lastMinute - windowMs) / MINUTE) * MINUTE + MINUTE;
    for (const [k, b] of this.buckets) {
      const s = this.keys.get(k)!;
      if (s.pair !== pair) continue;
      if (model !== undefined && (s.modelName !== model.name || s.modelVersion !== model.version)) continue;
      if (b.size <= 120) {
        // Few minutes kept (a monitor's first hours): cheaper to look at each than to walk the window.
        for (const [m, x] of b) if (m >= first && m <= lastMinute) merge(out, x);
        continue;
      }
      let m = first;
      for (; m <= lastMinute && m % HOUR !== 0; m += MINUTE) mergeMinute(out, b, m);
      for (; m + HOUR - MINUTE <= lastMinute; m += HOUR) merge(out, this.hourSums(k, b, m));
      for (; m <= lastMinute; m += MINUTE) mergeMinute(out, b, m);
    }
    // Bounded: a monitor that gets no verdicts for days is still asked for every minute's windows.
    if (this.computed.size >= 1_024) this.computed.clear();
    this.computed.set(key, { ...out });
    return out;
  }

  /** The sums of the hour that starts at `start` in series `k` (its minute buckets `b`), remembered until it changes. */
  private hourSums(k: string, b: Map<number, Sums>, start: number): Sums {
    let h = this.hours.get(k);
    if (h === undefined) {
      h = new Map();
      this.hours.set(k, h);
    }
    let sums = h.get(start);
    if (sums === undefined) {
      sums = emptySums();
      for (let m = start; m < start + HOUR; m += MINUTE) mergeMinute(sums, b, m);
      h.set(start, sums);
    }
    return sums;
  }

  /** Every configured window's figures for a pair (and optionally one model version). */
  report(
    pair: string,
    end = this.clock,
    model?: { name: string; version: number },
  ): Record<string, QualityFigures> {
    return Object.fromEntries(
      Object.entries(this.windows).map(([name, ms]) => [name, figures(this.sums(pair, ms, end, model))]),
    );
  }
}
