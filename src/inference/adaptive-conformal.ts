import { restorePoint } from '../core/restore-point.ts';
/**
 * Online adaptive conformal inference (Gibbs & Candès 2021, "Adaptive Conformal Inference Under Distribution
 * Shift") for the p10–p90 band, one side at a time, as the predictor applies it live.
 *
 * Each side (lower = p10, upper = p90) of each key (a pair) keeps
 *   - α_t, its working miss rate, started at the target α (0.1 per side for an 80 % band), and
 *   - the conformity scores of its last `window` matured predictions, scale-free: for the lower side
 *     s = (p10 − y) / w, for the upper side s = (y − p90) / w, where w = (p90 − p10) / 2 is the model's own half
 *     width (a positive score is a miss, a negative one a hit with room to spare).
 * A new prediction's band is moved out (or in) by the (1 − α_t) quantile of the side's scores, times its w:
 *   published p10 = p10 − Q_{1−α_lo}(s_lo) · w,   published p90 = p90 + Q_{1−α_hi}(s_hi) · w.
 * When its outcome matures (the close at windowEnd + horizon: 5 minutes later, never sooner), each side learns:
 *   α_{t+1} = α_t + γ (α − err_t),  err_t = 1 if the actual fell outside that side of the **published** band,
 * so a side that misses more often than α narrows its α_t and widens, and one that never misses narrows. G&C prove
 * that the long-run miss rate of each side is α ± (max(α_1, 1 − α_1) + γ)/(γ T) whatever the data do.
 *
 * With fewer than ⌈1/α⌉ − 1 matured scores (9 for α 0.1) the model's band is published as it is: the (1 − α) quantile
 * of n scores, the ⌈(1 − α)(n + 1)⌉-th smallest, does not exist below that (split conformal would give an infinite
 * band), and the largest of one or two scores made the first bands collapse to a point (both sides' scores of one
 * outcome sum to −2: an outcome near the middle narrows each side by a half width), leaving the point forecast
 * outside. α_t ≤ 0 (a streak of misses) uses the largest score kept and α_t ≥ 1 the smallest: a live band must stay
 * finite.
 *
 * Pure and synchronous: the caller keeps the published band of each prediction until its outcome matures
 * (`OnlineConformal` does that for a stream in time order), and the state serialises to JSON for a restart.
 */
/**
 * The defaults were chosen by the calibration study on the 14 months of Binance (docs/training.md): γ 0.001 and a
 * week of 1-minute scores per pair. Every γ ≤ 0.002 and window from 6 hours to a week kept each fold × pair within
 * 79.9–80.1 % and each volatility decile (pooled over pairs, as the study measured them) within 80 ± 3 %; the week was
 * the narrowest at that coverage. With these defaults each pair's own deciles stay within 78.0–81.3 %
 * (`./bench/run quality`).
 */
export interface AciOptions {
  /** Target miss rate of each side: 0.1 for a p10–p90 band. */
  alpha: number;
  /** Learning rate γ of α_t. */
  gamma: number;
  /** Matured scores kept per side (a day of 1-minute predictions is 1,440, a week 10,080). */
  window: number;
}

export const DEFAULT_ACI: AciOptions = { alpha: 0.1, gamma: 0.001, window: 10_080 };

/** How far before the first vector the predictor's warm-up reads beyond the adjustments' window: covers the horizon. */
export const WARM_UP_MARGIN_MS = 60 * 60_000;

/**
 * How far back a restarted predictor reads with the default window (a week and an hour): the `predictor.aci` states
 * it restores α_t from must still be there, so the topics it restores from are kept longer (RESTORE_RETENTION_MS).
 */
export const ACI_WARM_UP_REACH_MS = DEFAULT_ACI.window * 60_000 + WARM_UP_MARGIN_MS;

/** What was predicted and published for one forecast, kept until its outcome matures. */
export interface PublishedBand {
  /** The model's raw quantiles (bps of return). */
  p10: number;
  p90: number;
  /** The band published after the adjustment. */
  lo: number;
  hi: number;
}

interface SideState {
  alphaT: number;
  /** Scores in arrival order (a ring), and the same values sorted (for the quantile). */
  ring: Float64Array;
  next: number;
  count: number;
  sorted: Float64Array;
}

export interface AciSideSnapshot {
  alphaT: number;
  /** Oldest first. */
  scores: number[];
}

export interface AciSnapshot {
  options: AciOptions;
  keys: Record<string, { lower: AciSideSnapshot; upper: AciSideSnapshot; updates: number }>;
}

const MIN_HALF_WIDTH = 1e-9;

export class AdaptiveConformal {
  readonly options: AciOptions;
  private readonly keys = new Map<string, { lower: SideState; upper: SideState; updates: number }>();

  constructor(options: Partial<AciOptions> = {}) {
    const o = { ...DEFAULT_ACI, ...options };
    if (!(o.alpha > 0 && o.alpha < 0.5)) throw new RangeError(`alpha must be in (0, 0.5), got ${o.alpha}`);
    if (!(o.gamma > 0 && o.gamma < 1)) throw new RangeError(`gamma must be in (0, 1), got ${o.gamma}`);
    if (!(Number.isInteger(o.window) && o.window >= 1))
      throw new RangeError(`window must be a positive integer, got ${o.window}`);
    this.options = o;
  }

  /** Matured scores a side needs before its band is adjusted: the (1 − α) quantile of fewer does not exist. */
  get minScores(): number {
    return Math.ceil(1 / this.options.alpha) - 1;
  }

  /** The band to publish for a new forecast of `key` whose raw quantiles are p10 ≤ p90 (bps). */
  adjust(key: string, p10: number, p90: number): PublishedBand {
    const s = this.keys.get(key);
    if (s === undefined || s.lower.count < this.minScores) return { p10, p90, lo: p10, hi: p90 };
    const w = Math.max((p90 - p10) / 2, MIN_HALF_WIDTH);
    const lo = p10 - quantile(s.lower, 1 - s.lower.alphaT) * w;
    const hi = p90 + quantile(s.upper, 1 - s.upper.alphaT) * w;
    // Both sides narrowed past each other: the band collapses to the point between them.
    if (lo > hi) return { p10, p90, lo: (lo + hi) / 2, hi: (lo + hi) / 2 };
    return { p10, p90, lo, hi };
  }

  /** The outcome `actual` (bps) of a forecast published as `band` has matured: each side learns from it. */
  update(key: string, band: PublishedBand, actual: number): void {
    let s = this.keys.get(key);
    if (s === undefined) {
      s = { lower: side(this.options), upper: side(this.options), updates: 0 };
      this.keys.set(key, s);
    }
    const { alpha, gamma } = this.options;
    const w = Math.max((band.p90 - band.p10) / 2, MIN_HALF_WIDTH);
    s.lower.alphaT += gamma * (alpha - (actual < band.lo ? 1 : 0));
    s.upper.alphaT += gamma * (alpha - (actual > band.hi ? 1 : 0));
    push(s.lower, (band.p10 - actual) / w);
    push(s.upper, (actual - band.p90) / w);
    s.updates++;
  }

  /** α_t of each side and how many outcomes a key has learnt from (undefined before its first). */
  state(key: string): { alphaLower: number; alphaUpper: number; updates: number } | undefined {
    const s = this.keys.get(key);
    return s && { alphaLower: s.lower.alphaT, alphaUpper: s.upper.alphaT, updates: s.updates };
  }

  /**
   * Puts back the α_t a key's band was made with (read from the `predictor.aci` topic after a restart): α_t sums every
   * outcome since the start, so a warm-up over a window cannot rebuild it. A key with no state yet is left as it is.
   */
  restoreAlpha(key: string, alphaLower: number, alphaUpper: number): void {
    const s = this.keys.get(key);
    if (s === undefined) return;
    s.lower.alphaT = alphaLower;
    s.upper.alphaT = alphaUpper;
  }

  /** A restore point for `keys`: the returned function puts their state back as it was (a batch that failed). */
  mark(keys: Iterable<string>): () => void {
    return restorePoint(this.keys, keys);
  }

  /** Drops the state of `key` (a pair another predictor carried on with): it starts again as a new key. */
  forget(key: string): void {
    this.keys.delete(key);
  }

  snapshot(): AciSnapshot {
    const keys: AciSnapshot['keys'] = {};
    for (const [k, s] of this.keys)
      keys[k] = { lower: sideSnapshot(s.lower), upper: sideSnapshot(s.upper), updates: s.updates };
    return { options: { ...this.options }, keys };
  }

  static restore(snap: AciSnapshot): AdaptiveConformal {
    const a = new AdaptiveConformal(snap.options);
    for (const [k, v] of Object.entries(snap.keys)) {
      const lower = side(a.options);
      const upper = side(a.options);
      lower.alphaT = v.lower.alphaT;
      upper.alphaT = v.upper.alphaT;
      for (const x of v.lower.scores) push(lower, x);
      for (const x of v.upper.scores) push(upper, x);
      a.keys.set(k, { lower, upper, updates: v.updates });
    }
    return a;
  }
}

function side(o: AciOptions): SideState {
  return {
    alphaT: o.alpha,
    ring: new Float64Array(o.window),
    next: 0,
    count: 0,
    sorted: new Float64Array(o.window),
  };
}

function sideSnapshot(s: SideState): AciSideSnapshot {
  const scores: number[] = [];
  const n = s.ring.length;
  for (let k = 0; k < s.count; k++) scores.push(s.ring[(s.next - s.count + k + n) % n]!);
  return { alphaT: s.alphaT, scores };
}

/** First index in sorted[0, n) whose value is ≥ x. */
function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Adds a score; when the window is full, the oldest one leaves (both from the ring and the sorted copy). */
function push(s: SideState, x: number): void {
  const cap = s.ring.length;
  if (s.count === cap) {
    const old = s.ring[s.next]!;
    const at = lowerBound(s.sorted, s.count, old);
    s.sorted.copyWithin(at, at + 1, s.count);
    s.count--;
  }
  s.ring[s.next] = x;
  s.next = (s.next + 1) % cap;
  const at = lowerBound(s.sorted, s.count, x);
  s.sorted.copyWithin(at + 1, at, s.count);
  s.sorted[at] = x;
  s.count++;
}

/**
 * The level-q empirical quantile of the scores, as split conformal takes it: the ⌈q·(n + 1)⌉-th smallest (clamped
 * to the largest), the smallest for q ≤ 0.
 */
function quantile(s: SideState, q: number): number {
  if (s.count === 0) return 0;
  if (q <= 0) return s.sorted[0]!;
  const k = Math.min(s.count, Math.ceil(q * (s.count + 1)));
  return s.sorted[Math.max(1, k) - 1]!;
}

/**
 * ACI over a stream of forecasts in time order, exactly as the live predictor would apply it: a forecast made at
 * windowEnd t is adjusted with what the outcomes matured by t taught (those with targetTs ≤ t), and its own outcome
 * is learnt only once its targetTs has come. Returns the published bands, indexed like the input.
 */
export function applyOnline(
  forecasts: {
    key: ArrayLike<number>;
    windowEnd: ArrayLike<number>;
    horizonMs: number;
    p10: ArrayLike<number>;
    p90: ArrayLike<number>;
    actual: ArrayLike<number>;
  },
  options: Partial<AciOptions> = {},
): { lo: Float64Array; hi: Float64Array; aci: AdaptiveConformal } {
  const aci = new AdaptiveConformal(options);
  const m = forecasts.p10.length;
  const lo = new Float64Array(m);
  const hi = new Float64Array(m);
  const bands: PublishedBand[] = new Array(m);
  // Forecasts are in windowEnd order, so their targets (windowEnd + horizon) mature in that order too.
  let matured = 0;
  for (let k = 0; k < m; k++) {
    const t = forecasts.windowEnd[k]!;
    if (k > 0 && t < forecasts.windowEnd[k - 1]!) throw new RangeError('forecasts must be in time order');
    while (matured < k && forecasts.windowEnd[matured]! + forecasts.horizonMs <= t) {
      aci.update(String(forecasts.key[matured]!), bands[matured]!, forecasts.actual[matured]!);
      matured++;
    }
    const b = aci.adjust(String(forecasts.key[k]!), forecasts.p10[k]!, forecasts.p90[k]!);
    bands[k] = b;
    lo[k] = b.lo;
    hi[k] = b.hi;
  }
  return { lo, hi, aci };
}
