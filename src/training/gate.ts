import type { Evaluation } from './evaluation.ts';

/**
 * The promotion gate: a new model becomes champion only if, on the same walk-forward folds, for **every pair**
 *
 *   1. it beats persistence: skill > `minSkill` and the Diebold–Mariano test (HAC variance) rejects equal accuracy
 *      at level `alpha` (two-sided p < alpha, with the model's MAE the lower);
 *   2. it beats the best baseline (the lowest MAE of persistence, drift, linear) by the same test;
 *   3. it is no worse than the current champion's configuration refitted on the same folds (a champion with another
 *      horizon, target or feature sets, or serving a pair this run did not evaluate, is not comparable: refused):
 *      MAE ≤ champion MAE × (1 − `championMargin`). A refit of the champion's own configuration on newer data ties
 *      and passes, which is how scheduled retraining refreshes the champion; a configuration that does worse fails.
 *      A champion whose card cannot be read (`unreadable`: damaged) is not compared: it cannot be served after a
 *      restart, and the rules 1, 2, 4 and 5 decide alone, as with no champion.
 *   4. its p10–p90 band is a better probabilistic forecast than the interval baseline (persistence with a normal band
 *      from the last hour's realised volatility): mean interval score ≤ the baseline's × (1 − `intervalMargin`);
 *   5. its band is calibrated: the pair's own p10–p90 coverage (over all its test rows, folds together) within
 *      80 % ± `coverageTolerance` — each pair on its own, not both pooled (a pair at 70 % and one at 90 % fail).
 *
 * A model worse than persistence can never pass rule 1, and a model worse than the champion never passes rule 3,
 * whatever the settings (negative minSkill and championMargin count as 0).
 */
export interface GatePolicy {
  alpha: number;
  minSkill: number;
  championMargin: number;
  /** Rule 4: required relative improvement of the interval score over the baseline's (default 0: no worse). */
  intervalMargin?: number;
  /** Rule 5: largest distance of each pair's p10–p90 coverage from 80 % (default 0.05; 1 turns the rule off). */
  coverageTolerance?: number;
}

export const DEFAULT_GATE: GatePolicy = {
  alpha: 0.05,
  minSkill: 0,
  championMargin: 0,
  intervalMargin: 0,
  coverageTolerance: 0.05,
};

export interface GateDecision {
  promoted: boolean;
  /** Every check, passed or failed, as a sentence (the registry keeps them with the model). */
  reasons: string[];
}

const pct = (x: number) => `${(x * 100).toFixed(3)}%`;
const p = (x: number | null) => (x === null ? 'undefined' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4));

/**
 * `pairs`: the pairs the model is trained for (and will serve). One with no out-of-sample rows (a feed that died long
 * ago: all its rows fall in training blocks) was never tested: refused, not skipped.
 */
export function decide(
  ev: Evaluation,
  policy: GatePolicy,
  champion: { version: number; sameConfig: boolean; incomparable?: string; unreadable?: string } | undefined,
  pairs: readonly string[] = [],
): GateDecision {
  const reasons: string[] = [];
  let ok = true;
  const check = (pass: boolean, text: string) => {
    reasons.push(`${pass ? 'pass' : 'FAIL'}: ${text}`);
    if (!pass) ok = false;
  };
  const minSkill = Math.max(0, policy.minSkill);
  for (const [pair, s] of Object.entries(ev.per_pair)) {
    check(
      s.skill > minSkill && s.dm_pvalue !== null && s.dm_pvalue < policy.alpha,
      `${pair} vs persistence: skill ${pct(s.skill)} (need > ${pct(minSkill)}), DM p ${p(s.dm_pvalue)} (need < ${policy.alpha}, HAC lag ${s.dm_lag})`,
    );
    if (s.best_baseline !== 'persistence') {
      const b = s.vs_best_baseline;
      check(
        // As rule 1 (docs/training.md): `--gate-min-skill` holds against the best baseline too.
        b.skill > minSkill && b.dm_pvalue !== null && b.dm_pvalue < policy.alpha,
        `${pair} vs the best baseline (${s.best_baseline}): skill ${pct(b.skill)} (need > ${pct(minSkill)}), DM p ${p(b.dm_pvalue)} (need < ${policy.alpha})`,
      );
    }
    const iv = s.intervals;
    const base = s.intervals_baseline;
    const margin = policy.intervalMargin ?? DEFAULT_GATE.intervalMargin!;
    check(
      iv !== undefined && base !== undefined && iv.interval_score <= base.interval_score * (1 - margin),
      `${pair} band vs persistence ± realised volatility: interval score ${iv?.interval_score.toFixed(3)} vs ${base?.interval_score.toFixed(3)} bps (need ≤ ×${(1 - margin).toFixed(3)}), CRPS ${iv?.crps.toFixed(3)} vs ${base?.crps.toFixed(3)}`,
    );
    const tol = policy.coverageTolerance ?? DEFAULT_GATE.coverageTolerance!;
    // Off only when asked (1 or more): a NaN tolerance (a caller's unparsed setting) fails the rule, as NaN fails
    // every other rule here — `tol < 1` was false for it, and turned the rule off.
    if (!(tol >= 1))
      check(
        iv !== undefined && Math.abs(iv.coverage - 0.8) <= tol,
        `${pair} p10–p90 coverage ${iv === undefined ? '—' : `${(iv.coverage * 100).toFixed(1)}%`} (need 80% ± ${(tol * 100).toFixed(1)})`,
      );
    if (champion?.incomparable !== undefined || champion?.unreadable !== undefined) continue;
    if (champion && !champion.sameConfig) {
      if (s.mae_champion === null)
        check(false, `${pair}: the champion (v${champion.version}) could not be refitted on these folds`);
      else
        check(
          s.mae_model <= s.mae_champion * (1 - Math.max(0, policy.championMargin)),
          `${pair} vs champion v${champion.version} refitted on the same folds: MAE ${s.mae_model.toFixed(4)} vs ${s.mae_champion.toFixed(4)}, DM p ${p(s.vs_champion?.dm_pvalue ?? null)}`,
        );
    }
  }
  if (Object.keys(ev.per_pair).length === 0) check(false, 'no pair was evaluated');
  for (const pair of pairs)
    if (ev.per_pair[pair] === undefined)
      check(false, `${pair}: no out-of-sample rows, so never tested — yet the model would serve it`);
  if (champion?.incomparable !== undefined)
    check(
      false,
      `not comparable with champion v${champion.version}: ${champion.incomparable} (promote by hand if intended)`,
    );
  if (champion?.unreadable !== undefined)
    reasons.push(
      `pass: champion v${champion.version} cannot be read (${champion.unreadable}), so it was not compared: a ` +
        'version the predictor cannot load after a restart is replaced by one the other rules pass',
    );
  if (champion?.sameConfig)
    reasons.push(
      `pass: same configuration as champion v${champion.version} (a refit on newer data; ties on the same folds)`,
    );
  if (!champion) reasons.push('pass: there is no champion yet');
  return { promoted: ok, reasons };
}
