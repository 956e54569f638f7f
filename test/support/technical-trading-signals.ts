import { ATR, BollingerBands, EMA, MACD, RSI, SMA, StochasticOscillator } from 'trading-signals';
import { PriceGuard } from '../../src/core/price-guard.ts';
// The rolling sums are ours in both; the reference differs in its indicators (trading-signals' own classes).
import { Rolling } from '../../src/features/rolling.ts';
import {
  type CandleInput,
  check,
  FEATURE_COLUMNS,
  type FeatureVector,
} from '../../src/features/technical.ts';

/*
 * src/features/technical.ts as it was before issue 18 (main at 72f81ce): the indicators are trading-signals' own
 * classes. The reference that the ring-buffer indicators must match bit for bit.
 */

/** Indicator state of one pair. */
class PairFeatures {
  lastStart: number | undefined;
  lastClose: number | undefined;
  readonly closes = new Rolling(61); // for ret_k: close 1, 5, 15, 60 minutes ago
  readonly r15 = new Rolling(15); // squared 1m log returns (sum = realised variance)
  readonly r60 = new Rolling(60);
  readonly pv15 = new Rolling(15); // price × volume and volume, for the 15m VWAP
  readonly v15 = new Rolling(15);
  readonly vol60 = new Rolling(60);
  readonly trades60 = new Rolling(60);
  readonly sma20 = new SMA(20);
  readonly ema12 = new EMA(12);
  readonly ema26 = new EMA(26);
  readonly macd = new MACD(new EMA(12), new EMA(26), new EMA(9));
  readonly rsi14 = new RSI(14); // Wilder's smoothing (the library's default)
  readonly bb20 = new BollingerBands(20, 2);
  readonly atr14 = new ATR(14); // Wilder's smoothing
  readonly stoch = new StochasticOscillator({ kPeriod: 14, kSlowingPeriod: 1, dPeriod: 3 });
  // On-balance volume over the last 60 minutes (Σ sign(Δclose)·volume). Granville's OBV is cumulative from an
  // arbitrary start, so its level depends on where a series began: a rolling window makes it comparable across
  // backfills and restarts.
  readonly obv60 = new Rolling(60);
}

const TWO_PI = 2 * Math.PI;
const n = FEATURE_COLUMNS.length;

/** The largest notional (volume × close) a 1-minute candle may have: far above any market's, far below overflow. */
const MAX_CANDLE_NOTIONAL = 1e15;

/** The technical features as computed before issue 18, with the trading-signals indicators themselves: kept as the reference the ring-buffer implementation must match bit for bit. */
export class TradingSignalsTechnicalFeatures {
  readonly intervalMs: number;
  resets = 0;
  /** Vectors whose values were not all finite (never marked ready). */
  nonFinite = 0;
  private readonly pairs = new Map<string, PairFeatures>();
  private readonly guard: PriceGuard;

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
    if (!(c.volume * c.close <= MAX_CANDLE_NOTIONAL))
      return `volume ${c.volume} × close ${c.close} is not a plausible notional for one candle (limit ${MAX_CANDLE_NOTIONAL})`;
    return this.guard.judge(c.pair, c.close, [c.open, c.high, c.low]);
  }

  /**
   * Adds the next candle of a pair and returns its feature vector. The candle must pass `problem()` and follow
   * the previous one of its pair (a later minute); an earlier or equal minute throws (the caller rejects it).
   */
  update(c: CandleInput): FeatureVector {
    let s = this.pairs.get(c.pair);
    if (s !== undefined && s.lastStart !== undefined) {
      if (c.windowStart <= s.lastStart)
        throw new Error(
          `candle ${new Date(c.windowStart).toISOString()} of ${c.pair} is not after the previous one`,
        );
      if (c.windowStart !== s.lastStart + this.intervalMs) {
        this.resets++;
        s = undefined; // a gap: start over
      }
    }
    if (s === undefined) {
      s = new PairFeatures();
      this.pairs.set(c.pair, s);
    }
    const values: (number | null)[] = new Array(n).fill(null);
    const close = c.close;
    const prev = s.lastClose;
    s.closes.push(close);
    if (prev !== undefined) {
      const r = Math.log(close / prev);
      s.r15.push(r * r);
      s.r60.push(r * r);
      values[0] = r;
    }
    const ret = (k: number) => (s.closes.n > k ? Math.log(close / s.closes.ago(k)) : null);
    values[1] = ret(5);
    values[2] = ret(15);
    values[3] = ret(60);
    values[4] = s.r15.full ? Math.sqrt(s.r15.sum) : null;
    values[5] = s.r60.full ? Math.sqrt(s.r60.sum) : null;

    const sma = s.sma20.add(close);
    const ema12 = s.ema12.add(close);
    const ema26 = s.ema26.add(close);
    const macd = s.macd.add(close);
    const rsi = s.rsi14.add(close);
    const bb = s.bb20.add(close);
    const hlc = { high: c.high, low: c.low, close };
    const atr = s.atr14.add(hlc);
    const st = s.stoch.add(hlc);
    if (prev !== undefined) s.obv60.push(close > prev ? c.volume : close < prev ? -c.volume : 0);
    const obv = s.obv60.full ? s.obv60.sum : null;
    values[6] = sma;
    values[7] = s.ema12.isStable ? ema12 : null;
    values[8] = s.ema26.isStable ? ema26 : null;
    if (macd !== null && s.macd.isStable) {
      values[9] = macd.macd;
      values[10] = macd.signal;
      values[11] = macd.histogram;
    }
    values[12] = rsi;
    if (bb !== null) {
      const width = bb.upper - bb.lower;
      values[13] = width > 0 ? (close - bb.lower) / width : 0.5;
      values[14] = width / bb.middle;
    }
    values[15] = atr;
    if (st !== null) {
      values[16] = st.stochK;
      values[17] = st.stochD;
    }
    values[18] = obv;

    const vwap = c.vwap ?? close;
    s.pv15.push(vwap * c.volume);
    s.v15.push(c.volume);
    if (s.v15.full) values[19] = s.v15.sum > 0 ? close / (s.pv15.sum / s.v15.sum) - 1 : 0;
    s.vol60.push(c.volume);
    if (s.vol60.full) {
      const sd = s.vol60.std();
      values[20] = sd > 0 ? (c.volume - s.vol60.sum / 60) / sd : 0;
    }
    if (c.trades !== undefined) {
      s.trades60.push(c.trades);
      if (s.trades60.full) {
        const sd = s.trades60.std();
        values[21] = sd > 0 ? (c.trades - s.trades60.sum / 60) / sd : 0;
      }
    }
    const d = new Date(c.windowStart);
    const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
    values[22] = Math.sin((TWO_PI * minute) / 1440);
    values[23] = Math.cos((TWO_PI * minute) / 1440);
    values[24] = d.getUTCDay();
    const rel = (v: number | null) => (v === null ? null : v / close);
    values[25] = sma === null ? null : sma / close - 1;
    values[26] = values[7] === null ? null : (values[7] as number) / close - 1;
    values[27] = values[8] === null ? null : (values[8] as number) / close - 1;
    values[28] = rel(values[9]!);
    values[29] = rel(values[10]!);
    values[30] = rel(values[11]!);
    values[31] = rel(atr);

    s.lastStart = c.windowStart;
    s.lastClose = close;
    let ready = true;
    let nonFinite = false;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === null) {
        // A source without trade counts can still be ready: that column simply stays empty.
        if (i === 21 && c.trades === undefined) continue;
        ready = false;
      } else if (!Number.isFinite(v)) {
        // Never serve NaN or ±Infinity as a feature: the vector is kept (its minute exists) but not ready.
        values[i] = null;
        nonFinite = true;
        ready = false;
      }
    }
    if (nonFinite) this.nonFinite++;
    return { pair: c.pair, windowStart: c.windowStart, windowEnd: c.windowEnd, close, ready, values };
  }
}
