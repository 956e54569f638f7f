import { restorePoint } from '../core/restore-point.ts';
/**
 * Shrinking the point forecast toward persistence when it has recently not earned its keep: a gate inside the
 * predictor, fed by the matured outcomes (as the monitoring sees them), one state per key (pair).
 *
 * The published return is λ · r̂, with λ from a fixed grid (1 = the model as it is, 0 = persistence). For every grid
 * value the gate keeps the absolute return error it would have made on each of the last `window` matured forecasts,
 * and publishes the λ with the smallest recent sum (follow the leader; ties go to the larger λ). `rule: 'switch'` is
 * the bluntest form: the grid {0, 1}, i.e. persistence while the model's recent skill is negative.
 *
 * Defaults (docs/training.md): the grid {0, ¼, ½, ¾, 1} and a week of matured forecasts per pair — chosen on the
 * Binance walk-forward folds, where shorter windows (6 hours, a day) chase noise and lower the skill; the effect of
 * the week is small both there and on Bitstamp (not significant), so it is offered, not imposed.
 *
 * Pure and synchronous like AdaptiveConformal: an outcome is learnt only when it has matured (`applyShrinkage`
 * simulates a stream in time order with the horizon's delay).
 */
export interface ShrinkageOptions {
  /** The λ values to choose from (each in [0, 1]). */
  grid: readonly number[];
  /** Matured forecasts remembered per key. */
  window: number;
}

export const SWITCH_GRID: readonly number[] = [0, 1];
export const DEFAULT_SHRINKAGE: ShrinkageOptions = { grid: [0, 0.25, 0.5, 0.75, 1], window: 10_080 };

interface KeyState {
  /** window × grid absolute errors, a ring by row; and their per-λ sums. */
  errors: Float64Array;
  sums: Float64Array;
  next: number;
  count: number;
}

export class Shrinkage {
  readonly options: ShrinkageOptions;
  private readonly keys = new Map<string, KeyState>();

  constructor(options: Partial<ShrinkageOptions> = {}) {
    const o = { ...DEFAULT_SHRINKAGE, ...options };
    if (o.grid.length === 0 || o.grid.some((g) => !(g >= 0 && g <= 1)))
      throw new RangeError(`every grid value must be in [0, 1], got ${o.grid.join(', ')}`);
    if (!(Number.isInteger(o.window) && o.window >= 1))
      throw new RangeError(`window must be a positive integer, got ${o.window}`);
    this.options = { grid: [...o.grid].sort((a, b) => a - b), window: o.window };
  }

  /** A restore point for `keys`: the returned function puts their state back as it was (a batch that failed). */
  mark(keys: Iterable<string>): () => void {
    return restorePoint(this.keys, keys);
  }

  /** Drops the state of `key` (a pair another predictor carried on with): it starts again as a new key. */
  forget(key: string): void {
    this.keys.delete(key);
  }

  /** The λ to apply to a new forecast of `key` (1 until an outcome has matured). */
  lambda(key: string): number {
    const s = this.keys.get(key);
    const { grid } = this.options;
    if (s === undefined || s.count === 0) return grid.includes(1) ? 1 : grid.at(-1)!;
    let best = grid.length - 1;
    for (let g = grid.length - 2; g >= 0; g--) if (s.sums[g]! < s.sums[best]! - 1e-9) best = g;
    return grid[best]!;
  }

  /** A forecast of `key` that predicted `predicted` (bps, before shrinking) has matured at `actual`. */
  update(key: string, predicted: number, actual: number): void {
    const { grid, window } = this.options;
    let s = this.keys.get(key);
    if (s === undefined) {
      s = {
        errors: new Float64Array(window * grid.length),
        sums: new Float64Array(grid.length),
        next: 0,
        count: 0,
      };
      this.keys.set(key, s);
    }
    const at = s.next * grid.length;
    for (let g = 0; g < grid.length; g++) {
      if (s.count === window) s.sums[g]! -= s.errors[at + g]!;
      const e = Math.abs(grid[g]! * predicted - actual);
      s.errors[at + g] = e;
      s.sums[g]! += e;
    }
    s.next = (s.next + 1) % window;
    if (s.count < window) s.count++;
  }
}

/**
 * The shrinkage over a stream of forecasts in time order, as the live predictor would apply it: a forecast made at
 * windowEnd t uses what matured by t (targetTs ≤ t). Returns the published returns and the λ of each.
 */
export function applyShrinkage(
  forecasts: {
    key: ArrayLike<number>;
    windowEnd: ArrayLike<number>;
    horizonMs: number;
    predicted: ArrayLike<number>;
    actual: ArrayLike<number>;
  },
  options: Partial<ShrinkageOptions> = {},
): { published: Float64Array; lambda: Float64Array } {
  const gate = new Shrinkage(options);
  const m = forecasts.predicted.length;
  const published = new Float64Array(m);
  const lambda = new Float64Array(m);
  let matured = 0;
  for (let k = 0; k < m; k++) {
    const t = forecasts.windowEnd[k]!;
    if (k > 0 && t < forecasts.windowEnd[k - 1]!) throw new RangeError('forecasts must be in time order');
    while (matured < k && forecasts.windowEnd[matured]! + forecasts.horizonMs <= t) {
      gate.update(String(forecasts.key[matured]!), forecasts.predicted[matured]!, forecasts.actual[matured]!);
      matured++;
    }
    lambda[k] = gate.lambda(String(forecasts.key[k]!));
    published[k] = lambda[k]! * forecasts.predicted[k]!;
  }
  return { published, lambda };
}
