import type { NewsSignal } from '../schemas/news-signal.ts';

/**
 * News features of one coin as of a time t, from the signals **available** at t (availableAt ≤ t):
 * exponentially weighted mean score with half-lives 1 h, 6 h and 24 h (weight 2^(−age/half-life)), and the number of
 * signals of the last hour and day. Evaluated at increasing times (candle ends) with constant work per new
 * signal: sums are decayed forward in time, never recomputed.
 */
export const NEWS_COLUMNS = [
  'news_ewm_1h',
  'news_ewm_6h',
  'news_ewm_24h',
  'news_count_1h',
  'news_count_24h',
] as const;
const HALF_LIVES = [3_600_000, 21_600_000, 86_400_000];

export class NewsFeatures {
  private readonly signals: NewsSignal[];
  private next = 0;
  private t = Number.NEGATIVE_INFINITY;
  private readonly num = [0, 0, 0];
  private readonly den = [0, 0, 0];
  private readonly recent: number[] = []; // availableAt of the signals of the last 24 h, ascending

  /** `signals` of one coin, any order. */
  constructor(signals: readonly NewsSignal[]) {
    this.signals = [...signals].sort((a, b) => a.availableAt - b.availableAt);
  }

  /**
   * Adds a signal that arrived later (streaming). One already available at the current time enters the sums with
   * its decayed weight, exactly as if it had been there all along; a future one waits for its time. Values already
   * returned are never changed.
   */
  add(s: NewsSignal): void {
    if (s.availableAt > this.t) {
      let i = this.signals.length;
      while (i > this.next && this.signals[i - 1]!.availableAt > s.availableAt) i--;
      this.signals.splice(i, 0, s);
      return;
    }
    for (let k = 0; k < 3; k++) {
      const w = 2 ** (-(this.t - s.availableAt) / HALF_LIVES[k]!);
      this.num[k]! += w * s.score;
      this.den[k]! += w;
    }
    if (s.availableAt > this.t - 86_400_000) {
      let i = this.recent.length;
      while (i > 0 && this.recent[i - 1]! > s.availableAt) i--;
      this.recent.splice(i, 0, s.availableAt);
    }
  }

  /** The time of the last `at` call (−∞ before the first). */
  get time(): number {
    return this.t;
  }

  /** Values as of `t` (calls must not go back in time). Null means: no signal available yet. */
  at(t: number): (number | null)[] {
    if (t < this.t) throw new Error('NewsFeatures.at: time went backwards');
    if (Number.isFinite(this.t)) {
      for (let k = 0; k < 3; k++) {
        const f = 2 ** (-(t - this.t) / HALF_LIVES[k]!);
        this.num[k]! *= f;
        this.den[k]! *= f;
      }
    }
    this.t = t;
    while (this.next < this.signals.length && this.signals[this.next]!.availableAt <= t) {
      const s = this.signals[this.next++]!;
      for (let k = 0; k < 3; k++) {
        const w = 2 ** (-(t - s.availableAt) / HALF_LIVES[k]!);
        this.num[k]! += w * s.score;
        this.den[k]! += w;
      }
      this.recent.push(s.availableAt);
    }
    while (this.recent.length > 0 && this.recent[0]! <= t - 86_400_000) this.recent.shift();
    let lastHour = 0;
    for (let i = this.recent.length - 1; i >= 0 && this.recent[i]! > t - 3_600_000; i--) lastHour++;
    const ewm = (k: number) => (this.den[k]! > 0 ? this.num[k]! / this.den[k]! : null);
    return [ewm(0), ewm(1), ewm(2), lastHour, this.recent.length];
  }
}
