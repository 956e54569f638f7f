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
  /**
   * The ring, twice: value j is kept at j and at j + size, so that the window is always one contiguous run,
   * `buf[first, first + n)` (`sumTogether` walks several windows side by side without a wrap in its loop).
   */
  readonly buf: Float64Array;
  readonly size: number;
  private i = 0;
  n = 0;
  /** The sums of the window as it is now, once read (a column may read them more than once per candle). */
  private summed = false;
  private sumOfWindow = 0;
  private sumSqOfWindow = 0;
  constructor(size: number) {
    this.size = size;
    this.buf = new Float64Array(2 * size);
  }
  push(x: number): void {
    const size = this.size;
    if (this.n < size) this.n++;
    this.buf[this.i] = x;
    this.buf[this.i + size] = x;
    this.i = this.i + 1 === size ? 0 : this.i + 1;
    this.summed = false;
  }
  /** Where the window begins in `buf` (its oldest value): it runs for `n` values from there. */
  get first(): number {
    return this.n === this.size ? this.i : 0;
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
    const from = this.first;
    const to = from + this.n;
    let sum = 0;
    let sumSq = 0;
    for (let j = from; j < to; j++) {
      const x = b[j]!;
      sum += x;
      sumSq += x * x;
    }
    this.took(sum, sumSq);
  }
  /** The window's sums, summed by the caller in `summate`'s order (`sumTogether`). */
  private took(sum: number, sumSq: number): void {
    this.sumOfWindow = sum;
    this.sumSqOfWindow = sumSq;
    this.summed = true;
  }
  get full(): boolean {
    return this.n === this.size;
  }
  /** The value pushed `k` pushes ago (0 = last). */
  ago(k: number): number {
    const size = this.size;
    return this.buf[(this.i - 1 - k + 2 * size) % size]!;
  }
  /** Population standard deviation. */
  std(): number {
    const mean = this.sum / this.n;
    return Math.sqrt(Math.max(0, this.sumSq / this.n - mean * mean));
  }

  /**
   * The sums of four full windows of one size, in one pass over them: each window's sums are added exactly as
   * `summate` adds them (oldest first, from 0: the same doubles), but the four chains of additions interleave. One
   * window at a time, every addition waits for the one before it (a floating-point add's latency); side by side the
   * processor runs the four chains at once. Unless all are full and of one size, nothing is summed here (each window
   * is then summed alone when read, as before). Three windows: `d` defaults to `c` (summed twice, side by side).
   */
  static sumTogether(a: Rolling, b: Rolling, c: Rolling, d: Rolling = c): void {
    const size = a.size;
    if (!(a.full && b.full && c.full && d.full && b.size === size && c.size === size && d.size === size))
      return;
    const A = a.buf;
    const B = b.buf;
    const C = c.buf;
    const D = d.buf;
    const fa = a.i;
    const fb = b.i;
    const fc = c.i;
    const fd = d.i;
    let sa = 0;
    let qa = 0;
    let sb = 0;
    let qb = 0;
    let sc = 0;
    let qc = 0;
    let sd = 0;
    let qd = 0;
    for (let k = 0; k < size; k++) {
      const x = A[fa + k]!;
      const y = B[fb + k]!;
      const z = C[fc + k]!;
      const w = D[fd + k]!;
      sa += x;
      qa += x * x;
      sb += y;
      qb += y * y;
      sc += z;
      qc += z * z;
      sd += w;
      qd += w * w;
    }
    a.took(sa, qa);
    b.took(sb, qb);
    c.took(sc, qc);
    d.took(sd, qd);
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
