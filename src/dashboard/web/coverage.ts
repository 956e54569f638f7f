/**
 * The colour of a p10–p90 coverage cell of the quality panel. Coverage over a window of n predictions is a binomial
 * proportion: with calibrated bands it lands within about ±1.96·√(t(1−t)/n) of the target t 95 % of the time —
 * ±10 points over the 1-hour window's 60 predictions, ±2 over a day's 1,440. The cell was red outside t ± 5 points on
 * every window: red on the 1-hour window from sampling noise alone, where the `interval-miscalibrated` alert (24 h,
 * outside 70–90 %) did not fire. Now:
 * - `good` (green): within the sampling band of that window's count: nothing to tell from chance;
 * - `bad` (red): outside the sampling band and outside the alert rule's band (the shipped rule: 70–90 %): as far off
 *   as the alert asks, and not chance — on the alert's own window (24 h, ≥ 720 predictions) red is the alert's condition;
 * - no colour: off target beyond chance, but inside the alert rule's band (watch it; no alert fires).
 * The band is the one the monitor evaluates, served by `/v1/quality` (`coverageAlertBand`, from the rules the API is
 * given). It was a copy of the shipped rule's, so a rules file of one's own left the colours on 70–90 %. Without a
 * rule watching the pair (null) nothing is red: there is no alert to match.
 */

/** A coverage alert rule's band, as `/v1/quality` serves it. */
export interface CoverageBand {
  low: number;
  high: number;
}

export interface CoverageVerdict {
  cls: 'good' | 'bad' | '';
  /** The 95 % sampling band around the target for this count, [low, high]; null without predictions. */
  noise: [number, number] | null;
}

export function coverageVerdict(
  coverage: number | null,
  count: number,
  target: number,
  alertBand: CoverageBand | null,
): CoverageVerdict {
  if (coverage === null || !(count > 0)) return { cls: '', noise: null };
  const half = 1.96 * Math.sqrt((target * (1 - target)) / count);
  const noise: [number, number] = [Math.max(0, target - half), Math.min(1, target + half)];
  if (coverage >= noise[0] && coverage <= noise[1]) return { cls: 'good', noise };
  const outsideAlertBand = alertBand !== null && (coverage < alertBand.low || coverage > alertBand.high);
  return { cls: outsideAlertBand ? 'bad' : '', noise };
}
