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
 *
 * A model worse than persistence can never pass rule 1, and a model worse than the champion never passes rule 3,
 * whatever the settings (negative minSkill and championMargin count as 0).
 */
export interface GatePolicy {
  alpha: number;
  minSkill: number;
  championMargin: number;
}

export const DEFAULT_GATE: GatePolicy = { alpha: 0.05, minSkill: 0, championMargin: 0 };

export interface GateDecision {
  promoted: boolean;
  /** Every check, passed or failed, as a sentence (the registry keeps them with the model). */
  reasons: string[];
}

const pct = (x: number) => `${(x * 100).toFixed(3)}%`;
const p = (x: number | null) => (x === null ? 'undefined' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4));

export function decide(
  ev: Evaluation,
  policy: GatePolicy,
  champion: { version: number; sameConfig: boolean; incomparable?: string } | undefined,
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
        b.skill > 0 && b.dm_pvalue !== null && b.dm_pvalue < policy.alpha,
        `${pair} vs the best baseline (${s.best_baseline}): skill ${pct(b.skill)}, DM p ${p(b.dm_pvalue)}`,
      );
    }
    if (champion?.incomparable !== undefined) continue;
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
  if (champion?.incomparable !== undefined)
    check(
      false,
      `not comparable with champion v${champion.version}: ${champion.incomparable} (promote by hand if intended)`,
    );
  if (champion?.sameConfig)
    reasons.push(
      `pass: same configuration as champion v${champion.version} (a refit on newer data; ties on the same folds)`,
    );
  if (!champion) reasons.push('pass: there is no champion yet');
  return { promoted: ok, reasons };
}
