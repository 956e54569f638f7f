/**
 * Plausibility of prices: a price that is finite and positive can still be absurd (a trade at 1e308, a candle whose
 * high is a billion times its close). One such number poisons every running sum and moving average downstream for
 * hours. The guard compares each price with the median of the recent prices of its series and refuses one that is
 * more than `maxFactor` times above or below it. The caller dead-letters what is refused, with the reason.
 *
 * - Every judged price enters the window, refused ones too: the median is robust to a few outliers, and if the
 *   market really moved by such a factor the median follows after half a window and the guard lets it through.
 * - Until a series has `minHistory` prices there is nothing to compare with and prices are accepted (an absurd
 *   very first trade of a series is not caught; the next ones are judged against a median it cannot move).
 * - The median is refreshed every few prices, not on each (a coarse factor does not need a fresh one), so judging
 *   costs a few nanoseconds per price.
 */
export interface PriceGuardOptions {
  /** Refuse a price above median × maxFactor or below median / maxFactor. Default 10. */
  maxFactor?: number;
  /** Recent prices per series the median is taken over. Default 25. */
  window?: number;
  /** Prices a series needs before it is judged. Default 3. */
  minHistory?: number;
}

export const DEFAULT_MAX_PRICE_FACTOR = 10;

class Series {
  readonly buf: Float64Array;
  n = 0;
  i = 0;
  median = Number.NaN;
  sinceRefresh = Number.POSITIVE_INFINITY;
  /** The median is re-sorted every this many prices: an eighth of the window, so it never lags far behind. */
  private readonly refreshEvery: number;
  constructor(size: number) {
    this.buf = new Float64Array(size);
    this.sorted = new Float64Array(size);
    this.refreshEvery = Math.max(1, Math.floor(size / 8));
  }
  push(x: number): void {
    this.buf[this.i] = x;
    this.i = (this.i + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
    this.sinceRefresh++;
  }
  /** Where the median is sorted: reused, and sorted by insertion (a few dozen prices: no call into the runtime). */
  private readonly sorted: Float64Array;
  currentMedian(): number {
    if (this.sinceRefresh >= this.refreshEvery) {
      const sorted = this.sorted;
      const buf = this.buf;
      for (let i = 0; i < this.n; i++) {
        const x = buf[i]!;
        let j = i - 1;
        while (j >= 0 && sorted[j]! > x) {
          sorted[j + 1] = sorted[j]!;
          j--;
        }
        sorted[j + 1] = x;
      }
      const m = this.n >> 1;
      this.median = this.n % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
      this.sinceRefresh = 0;
    }
    return this.median;
  }
}

export class PriceGuard {
  readonly maxFactor: number;
  private readonly window: number;
  private readonly minHistory: number;
  private readonly series = new Map<string, Series>();
  /** Prices refused so far. */
  refused = 0;

  constructor(o: PriceGuardOptions = {}) {
    this.maxFactor = o.maxFactor ?? DEFAULT_MAX_PRICE_FACTOR;
    if (!(this.maxFactor > 1)) throw new RangeError(`maxFactor must be > 1, got ${this.maxFactor}`);
    this.window = o.window ?? 25;
    this.minHistory = Math.max(1, o.minHistory ?? 3);
  }

  /**
   * Why `price` is implausible for `series` (undefined: it is plausible). `alsoCheck` are prices of the same record
   * judged against the same median without entering the window (a candle's open, high and low beside its close).
   */
  judge(series: string, price: number, alsoCheck?: readonly number[]): string | undefined {
    if (!(Number.isFinite(price) && price > 0)) return `price must be a positive finite number, got ${price}`;
    let s = this.series.get(series);
    if (s === undefined) {
      s = new Series(this.window);
      this.series.set(series, s);
    }
    let why: string | undefined;
    if (s.n >= this.minHistory) {
      const median = s.currentMedian();
      // The price, then the others: no array per call.
      const n = alsoCheck === undefined ? 1 : alsoCheck.length + 1;
      for (let i = 0; i < n; i++) {
        const p = i === 0 ? price : alsoCheck![i - 1]!;
        const factor = p >= median ? p / median : median / p;
        if (!(factor <= this.maxFactor)) {
          why =
            `price ${p} is ${factor.toPrecision(3)}× ${p >= median ? 'above' : 'below'} the recent median ` +
            `${median} of ${series} (limit ${this.maxFactor}×)`;
          break;
        }
      }
    }
    s.push(price);
    if (why !== undefined) this.refused++;
    return why;
  }
}
