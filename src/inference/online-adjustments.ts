import { FEATURE_SET } from '../features/technical.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { type AciOptions, AdaptiveConformal, type PublishedBand } from './adaptive-conformal.ts';
import { Shrinkage, type ShrinkageOptions } from './shrinkage.ts';

/**
 * What the predictor changes in a forecast from the matured outcomes of the earlier ones, chosen by the studies in
 * docs/training.md:
 *  - the p10–p90 band, through online adaptive conformal inference (src/inference/adaptive-conformal.ts): on by
 *    default;
 *  - the point forecast, shrunk toward persistence by the gate of src/inference/shrinkage.ts (λ · predicted return,
 *    λ the grid value with the smallest recent error): offered, off by default.
 *
 * Outcomes come from the stream the predictor already reads: the feature vector of the candle that closes at a
 * prediction's targetTs carries the close the monitor scores that prediction with (the close at windowEnd +
 * horizon). So a prediction made at t is learnt from when the vector of t + horizon arrives — never sooner — and
 * the adjustments need no other service. A missing target minute (a gap) drops the prediction unlearnt, as the
 * monitor calls it unscorable. One state per exchange|pair, in the stream's order (a partition is a pair), so a
 * replay gives the same forecasts on the in-process bus and on Kafka.
 *
 * A restart loses nothing that matters: the state is a function of the stream, so the predictor rebuilds it from the
 * feature store before the first vector of a pair (`warmUp`: the stored vectors of the last window, predicted again
 * and matured in order, published nowhere) — see PredictorService. Without a store it starts empty: the model's own
 * forecast is published until outcomes have matured again. One thing a window cannot give back, the band's α_t (it
 * sums every outcome since the start), is read back from what the predictor published (`predictor.aci`) and put back
 * as the warm-up reaches each forecast it was published with.
 */
export class OnlineAdjustments {
  /** The band's state, when the band is adjusted. */
  readonly aci: AdaptiveConformal | undefined;
  /** The shrinkage gate, when the point forecast is shrunk. */
  readonly gate: Shrinkage | undefined;
  readonly stats = { adjusted: 0, learnt: 0, dropped: 0, warmUpVectors: 0 };
  /** Per exchange|pair, the predictions waiting for their target minute (in windowEnd order). */
  private readonly pending = new Map<
    string,
    { targetTs: number; close: number; band: PublishedBand | undefined; predictedBps: number }[]
  >();

  constructor(o: { band?: false | Partial<AciOptions>; shrinkage?: false | Partial<ShrinkageOptions> }) {
    this.aci = o.band === undefined || o.band === false ? undefined : new AdaptiveConformal(o.band);
    this.gate = o.shrinkage === undefined || o.shrinkage === false ? undefined : new Shrinkage(o.shrinkage);
  }

  /** How many minutes of matured outcomes the state remembers (what a warm-up must read). */
  get windowMinutes(): number {
    return Math.max(this.aci?.options.window ?? 0, this.gate?.options.window ?? 0);
  }

  /** Every vector of the stream, ready or not, before it is predicted: matures the predictions it closes. */
  observe(v: FeatureVectorRecord): void {
    if (v.featureSet !== FEATURE_SET.name) return;
    const key = `${v.exchange}|${v.pair}`;
    const queue = this.pending.get(key);
    if (queue === undefined || !(v.close > 0)) return;
    while (queue.length > 0 && queue[0]!.targetTs <= v.windowEnd) {
      const p = queue.shift()!;
      if (p.targetTs === v.windowEnd) {
        const actual = Math.log(v.close / p.close) * 1e4;
        if (p.band !== undefined) this.aci?.update(key, p.band, actual);
        this.gate?.update(key, p.predictedBps, actual);
        this.stats.learnt++;
      } else this.stats.dropped++; // the target minute never came (a gap)
    }
  }

  /**
   * Rebuilds the state from earlier vectors of the stream (oldest first, all before the next live one): each is
   * observed, and what `predictOf` makes of it is adjusted and remembered exactly as a live prediction would be, so
   * the forecasts that follow are the ones an uninterrupted predictor would publish (given the same model).
   */
  warmUp(
    vectors: readonly FeatureVectorRecord[],
    predictOf: (v: FeatureVectorRecord) => Prediction | undefined,
    publishedAlpha?: (
      p: Prediction,
    ) => { alphaLower: number; alphaUpper: number; p10Bps?: number; p90Bps?: number } | undefined,
  ): void {
    for (const v of vectors) {
      this.observe(v);
      const p = predictOf(v);
      if (p !== undefined) {
        // The α_t this forecast's band was published with, when known: the replayed bands, and so what their outcomes
        // teach α_t, are then the published ones (the scores are rebuilt exactly by the window).
        const alpha = publishedAlpha?.(p);
        if (alpha !== undefined)
          this.aci?.restoreAlpha(`${p.exchange}|${p.pair}`, alpha.alphaLower, alpha.alphaUpper);
        // And the quantiles of the champion that made it: after a promotion `predictOf` is the new champion's, whose
        // band (and so the score its outcome leaves) is not the one published.
        const made =
          alpha?.p10Bps !== undefined && alpha.p90Bps !== undefined
            ? { p10: alpha.p10Bps, p90: alpha.p90Bps }
            : undefined;
        this.remember(p, made);
      }
      this.stats.warmUpVectors++;
    }
  }

  /** α_t of each side of exchange|pair's band, as its next forecast would be adjusted (undefined while it is not). */
  alpha(key: string): { alphaLower: number; alphaUpper: number } | undefined {
    const s = this.aci?.state(key);
    return s && { alphaLower: s.alphaLower, alphaUpper: s.alphaUpper };
  }

  /**
   * A restore point for the exchange|pair `keys` (a batch's): the returned function puts their state back as it was.
   * A batch that fails after its vectors were observed and adjusted is delivered again, and must meet the state its
   * first attempt met, or its forecasts are adjusted with outcomes from later in the batch.
   */
  mark(keys: Iterable<string>): () => void {
    const ks = [...new Set(keys)];
    const pending = ks.map((k) => [k, this.pending.get(k)?.slice()] as const);
    const stats = { ...this.stats };
    const aci = this.aci?.mark(ks);
    const gate = this.gate?.mark(ks);
    return () => {
      for (const [k, q] of pending)
        if (q === undefined) this.pending.delete(k);
        else this.pending.set(k, q);
      Object.assign(this.stats, stats);
      aci?.();
      gate?.();
    };
  }

  /**
   * Drops everything learnt of exchange|pair `key` (its pending predictions, band and gate): for a pair whose partition
   * was owned by another predictor meanwhile, whose outcomes this state never saw; a warm-up rebuilds it.
   */
  forget(key: string): void {
    this.pending.delete(key);
    this.aci?.forget(key);
    this.gate?.forget(key);
  }

  /** The λ the gate applies to the next forecast of exchange|pair (1 without the gate). */
  lambda(key: string): number {
    return this.gate?.lambda(key) ?? 1;
  }

  /**
   * The prediction as published: p10/p90 moved by the band, the return shrunk, then kept inside the band; remembered
   * (as the model made it) until it matures.
   */
  adjust(p: Prediction): Prediction {
    this.stats.adjusted++;
    const lambda = this.lambda(`${p.exchange}|${p.pair}`);
    const band = this.remember(p);
    let out = p;
    if (lambda !== 1) {
      const bps = lambda * p.predictedReturnBps;
      out = { ...out, predictedReturnBps: bps, predictedClose: p.close * Math.exp(bps / 1e4) };
    }
    if (band !== undefined) {
      const lo = p.close * Math.exp(band.lo / 1e4);
      const hi = p.close * Math.exp(band.hi / 1e4);
      // An adjustment that would make an unpublishable price (never seen; a guard) leaves the model's band.
      if (lo > 0 && Number.isFinite(hi) && lo <= hi) out = { ...out, p10: lo, p90: hi };
    }
    return pointInBand(out);
  }

  /**
   * A forecast made but not published (stale: the predictor had fallen behind the wall clock): its outcome is learnt
   * like a published one's, as the warm-up learns every stored vector's, so that a restart rebuilds this state.
   */
  learnFrom(p: Prediction): void {
    this.remember(p);
  }

  /**
   * The band `p` is published with (when adjusted), kept with its raw return until its target minute comes; made from
   * the model's quantiles `made` when given (a warm-up's forecast published by an earlier champion), else `p`'s.
   */
  private remember(p: Prediction, made = modelBandBps(p)): PublishedBand | undefined {
    const key = `${p.exchange}|${p.pair}`;
    const band = this.aci?.adjust(key, made.p10, made.p90);
    let queue = this.pending.get(key);
    if (queue === undefined) {
      queue = [];
      this.pending.set(key, queue);
    }
    // A re-read vector (after a crash) or a second model version at the same minute is not learnt from twice.
    if (queue.length === 0 || queue[queue.length - 1]!.targetTs < p.targetTs)
      queue.push({ targetTs: p.targetTs, close: p.close, band, predictedBps: p.predictedReturnBps });
    return band;
  }
}

/** The model's own p10 and p90 of a prediction not adjusted yet, in bps of its close: what the band is made from. */
export function modelBandBps(p: Prediction): { p10: number; p90: number } {
  return { p10: Math.log(p.p10 / p.close) * 1e4, p90: Math.log(p.p90 / p.close) * 1e4 };
}

/**
 * The point forecast kept inside the published band (p10 ≤ predictedClose ≤ p90): shrinking toward persistence, or a
 * band the outcomes narrowed on one side, can leave the point outside a band that says it is unlikely. It is moved to
 * the nearer edge — the band is what the outcomes calibrated — as `pointInBandBps` does in the offline replay.
 */
export function pointInBand(p: Prediction): Prediction {
  if (p.predictedClose >= p.p10 && p.predictedClose <= p.p90) return p;
  const predictedClose = p.predictedClose < p.p10 ? p.p10 : p.p90;
  return { ...p, predictedClose, predictedReturnBps: Math.log(predictedClose / p.close) * 1e4 };
}
