/**
 * The rolling primitives of the technical indicators, each on a fixed-size ring buffer (no allocation per candle):
 * sums over a window, a window of the last values, the exponential and Wilder's smoothed moving averages. Their
 * arithmetic is `trading-signals`' in the same order (features/technical.ts says why that matters).
 */

/**
 * A fixed-size window of numbers with its sum and sum of squares. Both are summed from the window itself, oldest
 * first, on each read, never kept as a running sum: a running sum (add the new value, subtract the one leaving)
 * carries the rounding of every value it ever held. After a quiet hour it read −2e-15 for a window of sixty zero
 * returns, so √(Σr²) was NaN and the vector not ready; and a restart that re-warms from fewer candles gave other
 * doubles than an uninterrupted run. A function of the window alone is the same for a replay, a restart and a backfill.
 */
export class Rolling {
  private readonly buf: Float64Array;
  private i = 0;
  n = 0;
  /** The sums of the window as it is now, once read (a column may read them more than once per candle). */
  private summed = false;
  private sumOfWindow = 0;
  private sumSqOfWindow = 0;
  constructor(size: number) {
    this.buf = new Float64Array(size);
  }
  push(x: number): void {
    const size = this.buf.length;
    if (this.n < size) this.n++;
    this.buf[this.i] = x;
    this.i = (this.i + 1) % size;
    this.summed = false;
  }
  /** Σ of the window, oldest first. */
  get sum(): number {
    if (!this.summed) this.summate();
    return this.sumOfWindow;
  }
  /** Σ of the squares of the window, oldest first. */
  get sumSq(): number {
    if (!this.summed) this.summate();
    return this.sumSqOfWindow;
  }
  private summate(): void {
    const b = this.buf;
    const size = b.length;
    let sum = 0;
    let sumSq = 0;
    for (let k = 0, j = this.n === size ? this.i : 0; k < this.n; k++, j = j + 1 === size ? 0 : j + 1) {
      const x = b[j]!;
      sum += x;
      sumSq += x * x;
    }
    this.sumOfWindow = sum;
    this.sumSqOfWindow = sumSq;
    this.summed = true;
  }
  get full(): boolean {
    return this.n === this.buf.length;
  }
  /** The value pushed `k` pushes ago (0 = last). */
  ago(k: number): number {
    const size = this.buf.length;
    return this.buf[(this.i - 1 - k + 2 * size) % size]!;
  }
  /** Population standard deviation. */
  std(): number {
    const mean = this.sum / this.n;
    return Math.sqrt(Math.max(0, this.sumSq / this.n - mean * mean));
  }
}

/** The last `size` values, oldest first (trading-signals keeps the same window in an array it shifts). */
export class Window {
  readonly buf: Float64Array;
  /** Index of the oldest value once full; the next write position. */
  i = 0;
  n = 0;
  constructor(size: number) {
    this.buf = new Float64Array(size);
  }
  push(x: number): void {
    this.buf[this.i] = x;
    this.i = this.i + 1 === this.buf.length ? 0 : this.i + 1;
    if (this.n < this.buf.length) this.n++;
  }
  get full(): boolean {
    return this.n === this.buf.length;
  }
  /** Σ from the oldest to the newest, starting at 0, ÷ size: trading-signals' getAverage, the same doubles. */
  mean(): number {
    const b = this.buf;
    const size = b.length;
    let sum = 0;
    for (let k = 0, j = this.i; k < size; k++, j = j + 1 === size ? 0 : j + 1) sum += b[j]!;
    return sum / size;
  }
  /** Population σ about `mean`, as getStandardDeviation: mean of the squared deviations, oldest first. */
  std(mean: number): number {
    const b = this.buf;
    const size = b.length;
    let sum = 0;
    for (let k = 0, j = this.i; k < size; k++, j = j + 1 === size ? 0 : j + 1) {
      const d = b[j]! - mean;
      sum += d * d;
    }
    return Math.sqrt(sum / size);
  }
  max(): number {
    const b = this.buf;
    let m = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < b.length; k++) if (b[k]! > m) m = b[k]!;
    return m;
  }
  min(): number {
    const b = this.buf;
    let m = Number.POSITIVE_INFINITY;
    for (let k = 0; k < b.length; k++) if (b[k]! < m) m = b[k]!;
    return m;
  }
}

/** trading-signals' EMA: seeded with the first price; stable (`isStable`) once it has `interval` prices. */
export class Ema {
  private readonly w: number;
  private readonly interval: number;
  result = Number.NaN;
  count = 0;
  constructor(interval: number) {
    this.interval = interval;
    this.w = 2 / (interval + 1);
  }
  add(price: number): number {
    this.count++;
    const prev = this.count === 1 ? price : this.result;
    this.result = price * this.w + prev * (1 - this.w);
    return this.result;
  }
  get stable(): boolean {
    return this.count >= this.interval;
  }
}

/** trading-signals' WSMA (Wilder): the mean of the first `interval` inputs, then prev + (x − prev) · (1/interval). */
export class Wsma {
  private readonly factor: number;
  private readonly first: Window;
  result = Number.NaN;
  stable = false;
  constructor(interval: number) {
    this.factor = 1 / interval;
    this.first = new Window(interval);
  }
  add(x: number): void {
    if (this.stable) {
      this.result = (x - this.result) * this.factor + this.result;
      return;
    }
    this.first.push(x);
    if (this.first.full) {
      this.result = this.first.mean();
      this.stable = true;
    }
  }
}
