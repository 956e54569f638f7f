import { FEATURE_COLUMNS, FEATURE_SET } from '../features/technical.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import type { Prediction } from '../schemas/prediction.ts';
import type { ServingModel } from './model-holder.ts';

/**
 * The prediction step, pure: one technical feature vector + the served model + the time now → a Prediction, or the
 * reason there is none. No I/O; the service around it reads, writes and counts.
 *
 * Reasons for no prediction, in the order they are checked:
 * - `other_set`: not a technical vector (the features topic may carry other sets);
 * - `invalid`: a technical vector with the wrong number of values (a contract break, dead-lettered);
 * - `not_ready`: an indicator is still warming up;
 * - `no_champion`: no model is loaded;
 * - `stale`: now − windowEnd > maxStalenessMs (a prediction made this late would be useless and misleading);
 * - `model_error`: the model produced a non-finite number.
 */
export type SkipReason = 'other_set' | 'invalid' | 'not_ready' | 'no_champion' | 'stale' | 'model_error';
export const SKIP_REASONS: readonly SkipReason[] = [
  'other_set',
  'invalid',
  'not_ready',
  'no_champion',
  'stale',
  'model_error',
];

export type PredictOutcome =
  | { ok: true; prediction: Prediction }
  | { ok: false; reason: SkipReason; detail: string; ageMs?: number };

export const DEFAULT_MAX_STALENESS_MS = 120_000;

export function predict(
  vector: FeatureVectorRecord,
  model: ServingModel | undefined,
  opts: { now: number; maxStalenessMs: number },
): PredictOutcome {
  if (vector.featureSet !== FEATURE_SET.name || vector.featureSetVersion !== FEATURE_SET.version)
    return {
      ok: false,
      reason: 'other_set',
      detail: `${vector.featureSet} v${vector.featureSetVersion}`,
    };
  if (vector.values.length !== FEATURE_COLUMNS.length)
    return {
      ok: false,
      reason: 'invalid',
      detail: `a ${FEATURE_SET.name} v${FEATURE_SET.version} vector has ${FEATURE_COLUMNS.length} values, got ${vector.values.length}`,
    };
  if (!vector.ready) return { ok: false, reason: 'not_ready', detail: 'indicators warming up' };
  if (model === undefined) return { ok: false, reason: 'no_champion', detail: 'no champion model loaded' };
  const ageMs = opts.now - vector.windowEnd;
  if (ageMs > opts.maxStalenessMs)
    return {
      ok: false,
      reason: 'stale',
      detail: `vector is ${ageMs} ms old (max ${opts.maxStalenessMs} ms)`,
      ageMs,
    };
  const out = model.predict(vector);
  if (![out.returnBps, out.p10Bps, out.p90Bps].every(Number.isFinite))
    return { ok: false, reason: 'model_error', detail: `non-finite output ${JSON.stringify(out)}` };
  const { card } = model;
  const price = (bps: number) => vector.close * Math.exp(bps / 1e4);
  // A finite but absurd return (|r| of tens of thousands of %) makes a price of 0 or Infinity, which the topic's
  // schema refuses: it would block the partition, so it is a model error like a non-finite output.
  for (const bps of [out.returnBps, out.p10Bps, out.p90Bps]) {
    const x = price(bps);
    if (!(Number.isFinite(x) && x > 0))
      return { ok: false, reason: 'model_error', detail: `output ${bps} bps gives the price ${x}` };
  }
  return {
    ok: true,
    prediction: {
      v: 1,
      exchange: vector.exchange,
      pair: vector.pair,
      windowEnd: vector.windowEnd,
      horizonMs: card.horizonMs,
      targetTs: vector.windowEnd + card.horizonMs,
      close: vector.close,
      predictedReturnBps: out.returnBps,
      predictedClose: price(out.returnBps),
      // Two independently fitted quantiles can cross: the interval is reported ordered.
      p10: price(Math.min(out.p10Bps, out.p90Bps)),
      p90: price(Math.max(out.p10Bps, out.p90Bps)),
      modelName: card.name,
      modelVersion: card.version,
      featureSet: vector.featureSet,
      featureSetVersion: vector.featureSetVersion,
      createdAt: opts.now,
      latencyMs: Math.max(0, ageMs),
    },
  };
}

/** What "now" is for a vector. */
export interface Clock {
  readonly kind: 'wall' | 'event';
  now(vector: FeatureVectorRecord): number;
  /**
   * A restore point (the event clock): the returned function puts the clock back as it was. A batch that fails is
   * delivered again, and read by a clock its first attempt moved forward its vectors were stale (not predicted).
   */
  mark?(): () => void;
}

/** The wall clock (live operation). */
export function wallClock(now: () => number = Date.now): Clock {
  return { kind: 'wall', now: () => now() };
}

/**
 * The event clock for replays, where the wall clock would call every vector stale: time is the largest windowEnd
 * seen so far **for the vector's pair**. Per pair, because partitions (and so pairs) are consumed independently:
 * with one global maximum, a pair whose partition happened to be read later would look stale, and a replay's
 * output would depend on the interleaving. In order, a vector's time is its own windowEnd (latency 0), so a
 * replay — or a restart that re-reads a batch — produces identical predictions; a batch delivered again after a
 * failure is read from the clock's `mark` before it.
 */
export function eventClock(): Clock {
  const seen = new Map<string, number>();
  return {
    kind: 'event',
    now(v) {
      const key = `${v.exchange}|${v.pair}`;
      const t = Math.max(seen.get(key) ?? Number.NEGATIVE_INFINITY, v.windowEnd);
      seen.set(key, t);
      return t;
    },
    mark() {
      const before = new Map(seen);
      return () => {
        seen.clear();
        for (const [k, t] of before) seen.set(k, t);
      };
    },
  };
}
