import { PriceGuard } from '../core/price-guard.ts';
import { Ema, Rolling, Window, Wsma } from './rolling.ts';

/**
 * Technical features of 1-minute candles, computed incrementally per pair: constant work per candle, the same
 * code for backfill, replay and the live service (so a streamed vector equals the batch one exactly).
 *
 * The indicators compute exactly what `trading-signals` 8 computes (same arithmetic in the same order, so the same
 * doubles: test/unit/features/indicators-bit-identical.test.ts feeds both a year of real minutes), on fixed-size
 * ring buffers instead of growing/shifting arrays: the library's per-candle allocations were most of the cost of a
 * backfill. The rest are rolling sums over fixed windows. One code path for every caller: `update` (the live
 * service, one candle at a time) and `updateInto` (a backfill, straight into column buffers) both run `step`.
 * Rules:
 * - **ready**: a vector is ready only once every column has a value (the longest warm-up is 61 candles: `ret_60m`
 *   and `rv_60m` need 60 one-minute returns).
 * - **filled candles** (idle minutes: no trade, price carried) are real observations of a quiet market and are fed
 *   like any other: returns 0, volume 0. They keep the minute grid continuous, which the windows rely on.
 * - **gaps** (a missing minute in the input): the pair's state is reset and warms up again, because a window
 *   spanning a gap would mix unrelated minutes. Counted in `resets`.
 * - **bad candles** (high < low, a non-finite or non-positive price, negative volume, out-of-order time) are refused
 *   by `check()` and never touch the state; the caller dead-letters them.
 */
export const FEATURE_SET = { name: 'technical', version: 1 } as const;

/** Consecutive candles a pair needs before its first ready vector (`ret_60m` needs the close 60 minutes back). */
export const WARMUP_CANDLES = 61;

/** The feature columns, in output order (a stable contract: the feature set's version changes if it does). */
export const FEATURE_COLUMNS = [
  'ret_1m',
  'ret_5m',
  'ret_15m',
  'ret_60m',
  'rv_15m',
  'rv_60m',
  'sma_20',
  'ema_12',
  'ema_26',
  'macd',
  'macd_signal',
  'macd_hist',
  'rsi_14',
  'bb_pctb_20',
  'bb_width_20',
  'atr_14',
  'stoch_k_14',
  'stoch_d_3',
  'obv',
  'vwap_dev_15m',
  'volume_z_60m',
  'trades_z_60m',
  'minute_of_day_sin',
  'minute_of_day_cos',
  'day_of_week',
  // Price levels relative to the close, so that a model generalises across price regimes.
  'sma_20_rel',
  'ema_12_rel',
  'ema_26_rel',
  'macd_rel',
  'macd_signal_rel',
  'macd_hist_rel',
  'atr_14_rel',
] as const;
export type FeatureColumn = (typeof FEATURE_COLUMNS)[number];

export interface CandleInput {
  pair: string;
  windowStart: number;
  windowEnd: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Trade count; undefined when the source does not say (then `trades_z_60m` stays empty). */
  trades?: number;
  /** Volume-weighted price of the candle; the close when unknown. */
  vwap?: number;
  filled?: boolean;
}

export interface FeatureVector {
  pair: string;
  windowStart: number;
  windowEnd: number;
  close: number;
  ready: boolean;
  /** One value per `FEATURE_COLUMNS` entry, in order; null while warming up. */
  values: (number | null)[];
}

const positive = (k: string, x: number) => `${k} must be a positive finite number, got ${x}`;

/** Why a candle cannot be used, or undefined when it can. */
export function check(c: CandleInput): string | undefined {
  // Field by field (not a loop over their names: a keyed load per field was a tenth of the check's cost).
  if (!(Number.isFinite(c.open) && c.open > 0)) return positive('open', c.open);
  if (!(Number.isFinite(c.high) && c.high > 0)) return positive('high', c.high);
  if (!(Number.isFinite(c.low) && c.low > 0)) return positive('low', c.low);
  if (!(Number.isFinite(c.close) && c.close > 0)) return positive('close', c.close);
  if (!Number.isFinite(c.volume) || c.volume < 0) return `volume must be >= 0, got ${c.volume}`;
  if (c.high < c.low) return `high ${c.high} < low ${c.low}`;
  if (c.high < Math.max(c.open, c.close) || c.low > Math.min(c.open, c.close))
    return 'open/close outside [low, high]';
  if (!(c.windowEnd > c.windowStart)) return 'windowEnd must be after windowStart';
  if (c.trades !== undefined && !(Number.isInteger(c.trades) && c.trades >= 0))
    return `trades must be a count, got ${c.trades}`;
  return undefined;
}

/** Indicator state of one pair. */
class PairFeatures {
  started = false;
  lastStart = 0;
  lastClose = 0;
  readonly closes = new Rolling(61); // for ret_k: close 1, 5, 15, 60 minutes ago
  readonly r15 = new Rolling(15); // squared 1m log returns (sum = realised variance)
  readonly r60 = new Rolling(60);
  readonly pv15 = new Rolling(15); // price × volume and volume, for the 15m VWAP
  readonly v15 = new Rolling(15);
  readonly vol60 = new Rolling(60);
  readonly trades60 = new Rolling(60);
  readonly price20 = new Window(20); // SMA 20 and Bollinger 20
  readonly ema12 = new Ema(12);
  readonly ema26 = new Ema(26);
  readonly signal9 = new Ema(9); // MACD's signal line: from the 26th close (the long EMA's interval) on
  readonly gain14 = new Wsma(14); // RSI 14, Wilder's smoothing
  readonly loss14 = new Wsma(14);
  readonly atr14 = new Wsma(14); // of the true range, Wilder's smoothing
  readonly high14 = new Window(14); // stochastic %K 14
  readonly low14 = new Window(14);
  readonly k3 = new Window(3); // %D: SMA 3 of %K
  // On-balance volume over the last 60 minutes (Σ sign(Δclose)·volume). Granville's OBV is cumulative from an
  // arbitrary start, so its level depends on where a series began: a rolling window makes it comparable across
  // backfills and restarts.
  readonly obv60 = new Rolling(60);
}

const TWO_PI = 2 * Math.PI;
const n = FEATURE_COLUMNS.length;
const DAY_MS = 86_400_000;

/** The largest notional (volume × close) a 1-minute candle may have: far above any market's, far below overflow. */
export const MAX_CANDLE_NOTIONAL = 1e15;

export class TechnicalFeatures {
  readonly intervalMs: number;
  resets = 0;
  /** Vectors whose values were not all finite (never marked ready). */
  nonFinite = 0;
  private readonly pairs = new Map<string, PairFeatures>();
  private readonly guard: PriceGuard;
  /** A candle's open, high and low for the guard: one array reused, not one per candle (a year's backfill has millions). */
  private readonly otherPrices = [0, 0, 0];
  private lastPair = '';
  private lastState: PairFeatures | undefined;
  private readonly scratch = new Float64Array(n);

  constructor(intervalMs = 60_000, opts: { maxPriceFactor?: number } = {}) {
    this.intervalMs = intervalMs;
    this.guard = new PriceGuard({ maxFactor: opts.maxPriceFactor });
  }

  /**
   * Why a candle cannot be used, or undefined when it can: impossible (`check`), an implausible notional, or prices
   * absurdly far from its pair's recent closes (a `PriceGuard`). Callers ask before `update` and dead-letter what is
   * refused; a refused candle never touches the indicators. Deterministic in the candle sequence, so a replay, a
   * restart and the batch path decide alike.
   */
  problem(c: CandleInput): string | undefined {
    const bad = check(c);
    if (bad !== undefined) return bad;
    // The indicators count candles as minutes (ret_5 is 5 candles back): a 5-minute candle would be read as a gap.
    if (c.windowEnd - c.windowStart !== this.intervalMs)
      return `a ${(c.windowEnd - c.windowStart) / 60_000}-minute candle: the features are computed on ${this.intervalMs / 60_000}-minute candles`;
    if (!(c.volume * c.close <= MAX_CANDLE_NOTIONAL))
      return `volume ${c.volume} × close ${c.close} is not a plausible notional for one candle (limit ${MAX_CANDLE_NOTIONAL})`;
    const others = this.otherPrices;
    others[0] = c.open;
    others[1] = c.high;
    others[2] = c.low;
    return this.guard.judge(c.pair, c.close, others);
  }

  /**
   * Adds the next candle of a pair and returns its feature vector. The candle must pass `problem()` and follow
   * the previous one of its pair (a later minute); an earlier or equal minute throws (the caller rejects it).
   */
  update(c: CandleInput): FeatureVector {
    const out = this.scratch;
    const ready = this.step(c, out, 0, 1);
    const values: (number | null)[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const x = out[k]!;
      values[k] = Number.isNaN(x) ? null : x; // NaN marks an empty column
    }
    return {
      pair: c.pair,
      windowStart: c.windowStart,
      windowEnd: c.windowEnd,
      close: c.close,
      ready,
      values,
    };
  }

  /**
   * `update` for bulk callers: the 32 values go to `out[offset + k · stride]` (k = column; NaN = empty), e.g. a
   * column-major buffer of `stride` rows at row `offset`. Returns whether the vector is ready.
   */
  updateInto(c: CandleInput, out: Float64Array, offset: number, stride: number): boolean {
    return this.step(c, out, offset, stride);
  }

  private state(c: CandleInput): PairFeatures {
    if (c.pair === this.lastPair && this.lastState !== undefined) return this.lastState;
    let s = this.pairs.get(c.pair);
    if (s === undefined) {
      s = new PairFeatures();
      this.pairs.set(c.pair, s);
    }
    this.lastPair = c.pair;
    this.lastState = s;
    return s;
  }

  private step(c: CandleInput, out: Float64Array, o: number, stride: number): boolean {
    let s = this.state(c);
    if (s.started) {
      if (c.windowStart <= s.lastStart)
        throw new Error(
          `candle ${new Date(c.windowStart).toISOString()} of ${c.pair} is not after the previous one`,
        );
      if (c.windowStart !== s.lastStart + this.intervalMs) {
        this.resets++; // a gap: start over
        s = new PairFeatures();
        this.pairs.set(c.pair, s);
        this.lastState = s;
      }
    }
    const NaN_ = Number.NaN;
    const close = c.close;
    const high = c.high;
    const low = c.low;
    const volume = c.volume;
    const first = !s.started;
    const prev = s.lastClose;
    s.closes.push(close);
    let ret1 = NaN_;
    if (!first) {
      const r = Math.log(close / prev);
      s.r15.push(r * r);
      s.r60.push(r * r);
      s.obv60.push(close > prev ? volume : close < prev ? -volume : 0);
      ret1 = r;
    }
    const vwap = c.vwap ?? close;
    s.pv15.push(vwap * volume);
    s.v15.push(volume);
    s.vol60.push(volume);
    const trades = c.trades;
    if (trades !== undefined) s.trades60.push(trades);
    // Every rolling window has its value of this candle: their sums, the windows of one size side by side (the same
    // doubles as each summed alone, in a fraction of the time: Rolling.sumTogether).
    Rolling.sumTogether(s.r60, s.obv60, s.vol60, s.trades60.full ? s.trades60 : s.vol60);
    Rolling.sumTogether(s.r15, s.pv15, s.v15);
    const closes = s.closes;
    out[o] = ret1;
    out[o + stride] = closes.n > 5 ? Math.log(close / closes.ago(5)) : NaN_;
    out[o + 2 * stride] = closes.n > 15 ? Math.log(close / closes.ago(15)) : NaN_;
    out[o + 3 * stride] = closes.n > 60 ? Math.log(close / closes.ago(60)) : NaN_;
    out[o + 4 * stride] = s.r15.full ? Math.sqrt(s.r15.sum) : NaN_;
    out[o + 5 * stride] = s.r60.full ? Math.sqrt(s.r60.sum) : NaN_;

    // SMA 20 and Bollinger 20 over the same window of closes.
    s.price20.push(close);
    let sma = NaN_;
    let pctb = NaN_;
    let bbWidth = NaN_;
    if (s.price20.full) {
      sma = s.price20.mean();
      const sd = s.price20.std(sma);
      const lower = sma - sd * 2;
      const upper = sma + sd * 2;
      const width = upper - lower;
      pctb = width > 0 ? (close - lower) / width : 0.5;
      bbWidth = width / sma;
    }
    // EMAs; MACD from the 26th close (the long EMA's interval), its signal line an EMA 9 of it from there.
    const ema12 = s.ema12.add(close);
    const ema26 = s.ema26.add(close);
    const ema12v = s.ema12.stable ? ema12 : NaN_;
    const ema26v = s.ema26.stable ? ema26 : NaN_;
    let macd = NaN_;
    let signal = NaN_;
    let hist = NaN_;
    if (s.ema26.stable) {
      macd = ema12 - ema26;
      signal = s.signal9.add(macd);
      hist = macd - signal;
    }
    // RSI 14: gains and losses of the close, each smoothed by Wilder's average.
    let rsi = NaN_;
    if (!first) {
      if (close > prev) {
        s.loss14.add(0);
        s.gain14.add(close - prev);
      } else {
        s.loss14.add(prev - close);
        s.gain14.add(0);
      }
      if (s.gain14.stable) {
        const avgLoss = s.loss14.result;
        rsi = avgLoss === 0 ? 100 : 100 - 100 / (s.gain14.result / avgLoss + 1);
      }
    }
    // ATR 14 of the true range (high − low for the first candle, which has no previous close).
    const highLow = high - low;
    s.atr14.add(first ? highLow : Math.max(highLow, Math.abs(high - prev), Math.abs(low - prev)));
    const atr = s.atr14.stable ? s.atr14.result : NaN_;
    // Stochastic 14 / 1 / 3: %K and %D together, once %D has its three %K values.
    s.high14.push(high);
    s.low14.push(low);
    let stochK = NaN_;
    let stochD = NaN_;
    if (s.high14.full) {
      const highest = s.high14.max();
      const lowest = s.low14.min();
      const divisor = highest - lowest;
      const fastK = ((close - lowest) * 100) / (divisor === 0 ? 1 : divisor);
      s.k3.push(fastK);
      if (s.k3.full) {
        stochK = fastK;
        stochD = s.k3.mean();
      }
    }
    out[o + 6 * stride] = sma;
    out[o + 7 * stride] = ema12v;
    out[o + 8 * stride] = ema26v;
    out[o + 9 * stride] = macd;
    out[o + 10 * stride] = signal;
    out[o + 11 * stride] = hist;
    out[o + 12 * stride] = rsi;
    out[o + 13 * stride] = pctb;
    out[o + 14 * stride] = bbWidth;
    out[o + 15 * stride] = atr;
    out[o + 16 * stride] = stochK;
    out[o + 17 * stride] = stochD;
    out[o + 18 * stride] = s.obv60.full ? s.obv60.sum : NaN_;

    out[o + 19 * stride] = s.v15.full ? (s.v15.sum > 0 ? close / (s.pv15.sum / s.v15.sum) - 1 : 0) : NaN_;
    let volZ = NaN_;
    if (s.vol60.full) {
      const sd = s.vol60.std();
      volZ = sd > 0 ? (volume - s.vol60.sum / 60) / sd : 0;
    }
    out[o + 20 * stride] = volZ;
    let tradesZ = NaN_;
    if (trades !== undefined) {
      if (s.trades60.full) {
        const sd = s.trades60.std();
        tradesZ = sd > 0 ? (trades - s.trades60.sum / 60) / sd : 0;
      }
    }
    out[o + 21 * stride] = tradesZ;
    // UTC calendar, by arithmetic on the epoch (what Date's getUTC* give, without a Date per candle).
    const ms = c.windowStart;
    const minute = Math.floor((((ms % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
    out[o + 22 * stride] = Math.sin((TWO_PI * minute) / 1440);
    out[o + 23 * stride] = Math.cos((TWO_PI * minute) / 1440);
    out[o + 24 * stride] = (((Math.floor(ms / DAY_MS) + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday (4)
    out[o + 25 * stride] = sma / close - 1;
    out[o + 26 * stride] = ema12v / close - 1;
    out[o + 27 * stride] = ema26v / close - 1;
    out[o + 28 * stride] = macd / close;
    out[o + 29 * stride] = signal / close;
    out[o + 30 * stride] = hist / close;
    out[o + 31 * stride] = atr / close;

    s.started = true;
    s.lastStart = c.windowStart;
    s.lastClose = close;
    // Ready once every column has a value; a source without trade counts can still be ready (that column stays
    // empty). Never serve NaN or ±Infinity as a feature: such a value is emptied, and the vector (its minute
    // exists) kept but not ready. Once the longest warm-up is over (61 closes) every column is computed, so a NaN
    // then is a computed one, not an empty one (trades_z_60m: once it has its 60 counts).
    const warm = closes.n === 61;
    let ready = true;
    let nonFinite = false;
    for (let k = 0; k < n; k++) {
      const at = o + k * stride;
      const x = out[at]!;
      if (Number.isNaN(x)) {
        if (k === 21 && (trades === undefined || !s.trades60.full)) {
          if (trades !== undefined) ready = false;
          continue;
        }
        ready = false;
        if (warm) nonFinite = true;
      } else if (x === Number.POSITIVE_INFINITY || x === Number.NEGATIVE_INFINITY) {
        out[at] = Number.NaN;
        nonFinite = true;
        ready = false;
      }
    }
    if (nonFinite) this.nonFinite++;
    return ready;
  }
}
