import { FEATURE_SET } from '../features/technical.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { Prediction } from '../schemas/prediction.ts';
import { type AciOptions, AdaptiveConformal, type PublishedBand } from './adaptive-conformal.ts';

/**
 * Online adaptive conformal inference inside the predictor (src/inference/adaptive-conformal.ts, chosen by the
 * calibration study in docs/training.md): the band a prediction is published with, adjusted by what the matured
 * outcomes of the earlier ones taught.
 *
 * Outcomes come from the stream the predictor already reads: the feature vector of the candle that closes at a
 * prediction's targetTs carries the close the monitor scores that prediction with (the close at windowEnd +
 * horizon). So a prediction made at t is learnt from when the vector of t + horizon arrives — never sooner — and
 * the adjustment needs no other service. A missing target minute (a gap) drops the prediction unlearnt, as the
 * monitor calls it unscorable. One state per exchange|pair, in the stream's order (a partition is a pair), so a
 * replay gives the same bands on the in-process bus and on Kafka.
 *
 * A restart loses nothing that matters: the state is a function of the stream, so the predictor rebuilds it from the
 * feature store before the first vector of a pair (`warmUp`: the stored vectors of the last window, predicted again
 * and matured in order, published nowhere) — see PredictorService. Without a store it starts empty and publishes
 * the model's own band until outcomes have matured again.
 */
export class OnlineBand {
  readonly aci: AdaptiveConformal;
  readonly stats = { adjusted: 0, learnt: 0, dropped: 0, warmUpVectors: 0 };
  /** Per exchange|pair, the predictions waiting for their target minute (in windowEnd order). */
  private readonly pending = new Map<string, { targetTs: number; close: number; band: PublishedBand }[]>();

  constructor(options: Partial<AciOptions> = {}) {
    this.aci = new AdaptiveConformal(options);
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
        this.aci.update(key, p.band, Math.log(v.close / p.close) * 1e4);
        this.stats.learnt++;
      } else this.stats.dropped++; // the target minute never came (a gap)
    }
  }

  /**
   * Rebuilds the state from earlier vectors of the stream (oldest first, all before the next live one): each is
   * observed, and what `predictOf` makes of it is adjusted and remembered exactly as a live prediction would be, so
   * the bands that follow are the ones an uninterrupted predictor would publish (given the same model).
   */
  warmUp(
    vectors: readonly FeatureVectorRecord[],
    predictOf: (v: FeatureVectorRecord) => Prediction | undefined,
  ): void {
    for (const v of vectors) {
      this.observe(v);
      const p = predictOf(v);
      if (p !== undefined) this.remember(p);
      this.stats.warmUpVectors++;
    }
  }

  /** The prediction as published: p10/p90 moved by the adaptive adjustment; remembered until it matures. */
  adjust(p: Prediction): Prediction {
    this.stats.adjusted++;
    const band = this.remember(p);
    const lo = p.close * Math.exp(band.lo / 1e4);
    const hi = p.close * Math.exp(band.hi / 1e4);
    // An adjustment that would make an unpublishable price (never seen; a guard) leaves the model's band.
    if (!(lo > 0 && Number.isFinite(hi) && lo <= hi)) return p;
    return { ...p, p10: lo, p90: hi };
  }

  /** The band `p` is published with, kept until its target minute comes. */
  private remember(p: Prediction): PublishedBand {
    const key = `${p.exchange}|${p.pair}`;
    const bps = (price: number) => Math.log(price / p.close) * 1e4;
    const band = this.aci.adjust(key, bps(p.p10), bps(p.p90));
    let queue = this.pending.get(key);
    if (queue === undefined) {
      queue = [];
      this.pending.set(key, queue);
    }
    // A re-read vector (after a crash) or a second model version at the same minute is not learnt from twice.
    if (queue.length === 0 || queue[queue.length - 1]!.targetTs < p.targetTs)
      queue.push({ targetTs: p.targetTs, close: p.close, band });
    return band;
  }
}
