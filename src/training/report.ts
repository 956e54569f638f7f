import type { Evaluation, Scorecard } from './evaluation.ts';
import type { GateDecision } from './gate.ts';
import type { TrainerResult } from './python-trainer.ts';
import type { ModelCard } from './registry/registry.ts';

/** The per-model report (Markdown with the trainer's figures beside it), stored as an artifact of the version. */
const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
const f = (x: number | null | undefined, d = 4) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d);
const pc = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined ? '—' : `${(x * 100).toFixed(d)}%`;
const pv = (x: number | null) => (x === null ? '—' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4));

function scoreRow(label: string, s: Scorecard): string {
  const ci = s.direction_ci95 ? ` [${pc(s.direction_ci95[0])}, ${pc(s.direction_ci95[1])}]` : '';
  return `| ${label} | ${s.n} | ${f(s.mae_model)} | ${f(s.mae_persistence)} | ${f(s.mae_drift)} | ${f(s.mae_linear)} | ${pc(s.skill, 3)} | ${pv(s.dm_pvalue)} | ${pc(s.direction_accuracy)}${ci} | ${pc(s.coverage_p10_p90, 1)} |`;
}

export function renderReport(
  card: Omit<ModelCard, 'version' | 'createdAt'> & { version?: number },
  ev: Evaluation,
  gate: GateDecision,
  result: TrainerResult,
): string {
  const lines: string[] = [];
  lines.push(
    `# ${card.name}${card.version ? ` v${card.version}` : ''}: ${ev.horizon_minutes}-minute price model`,
  );
  lines.push('');
  lines.push(`**${gate.promoted ? 'Promoted to champion' : 'Not promoted'}.**`);
  lines.push('');
  for (const r of gate.reasons) lines.push(`- ${r}`);
  lines.push('');
  lines.push('## Lineage');
  lines.push('');
  lines.push('| | |');
  lines.push('|---|---|');
  lines.push(`| training window | ${iso(card.trainingWindow.from)} → ${iso(card.trainingWindow.to)} UTC |`);
  lines.push(`| pairs | ${card.pairs.join(', ')} |`);
  lines.push(`| feature sets | ${card.featureSets.map((s) => `${s.name} v${s.version}`).join(', ')} |`);
  lines.push(`| columns (${card.columns.length}) | ${card.columns.join(', ')} |`);
  lines.push(`| dataset | ${card.datasetFingerprint} |`);
  lines.push(`| code | ${card.codeVersion} |`);
  lines.push(`| xgboost | ${result.xgboost} |`);
  lines.push(`| params | \`${JSON.stringify(result.params)}\` |`);
  if (result.tuning)
    lines.push(
      `| tuning | Optuna, ${result.tuning.trials} trials in ${result.tuning.seconds.toFixed(0)} s (validation skill ${f(result.tuning.best_value)}) |`,
    );
  lines.push('');
  lines.push(`## Walk-forward: ${ev.folds} folds, purge ≥ horizon, every predictor on the same test rows`);
  lines.push('');
  lines.push(
    'MAE of the predicted close (quote currency). Skill = 1 − MAE(model)/MAE(persistence); DM = Diebold–Mariano, two-sided, Newey–West variance. Direction: ties excluded, Wilson 95% interval. Coverage: share of actual returns inside [p10, p90] (nominal 80%).',
  );
  lines.push('');
  lines.push(
    '| | n | MAE model | persistence | drift | linear | skill | DM p | direction | p10–p90 coverage |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const [pair, s] of Object.entries(ev.per_pair)) lines.push(scoreRow(pair, s));
  lines.push(scoreRow('all pairs', ev));
  lines.push('');
  lines.push('### Per fold');
  lines.push('');
  const pairs = Object.keys(ev.per_pair);
  lines.push(
    `| fold | test period | n | MAE model | persistence | drift | linear | skill | ${pairs.map((p) => `skill ${p}`).join(' | ')} |`,
  );
  lines.push(`|---|---|---|---|---|---|---|---|${pairs.map(() => '---').join('|')}|`);
  for (const fm of ev.per_fold) {
    const m = fm.metrics;
    lines.push(
      `| ${fm.fold + 1} | ${iso(fm.testFrom)} → ${iso(fm.testTo)} | ${fm.n} | ${f(m.model?.mae_price)} | ${f(m.persistence?.mae_price)} | ${f(m.drift?.mae_price)} | ${f(m.linear?.mae_price)} | ${pc(m.model?.skill, 3)} | ${pairs.map((p) => pc(m[`model ${p}`]?.skill, 3)).join(' | ')} |`,
    );
  }
  lines.push('');
  lines.push('## The p10–p90 band as a probabilistic forecast');
  lines.push('');
  lines.push(
    'On the log return in bps, lower is better. Baseline: persistence with a normal band from the realised volatility of the last hour (p10/p90 = ∓1.2816 · rv_60m · √(h/60 min)). Interval score of the central 80 % interval (Gneiting & Raftery 2007); CRPS of the split normal through p10, the point forecast and p90.',
  );
  lines.push('');
  lines.push(
    '| | coverage (below / above) | mean width | pinball p10 | pinball p90 | interval score | baseline | CRPS | baseline |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const [pair, s] of [...Object.entries(ev.per_pair), ['all pairs', ev] as const]) {
    const m = s.intervals;
    const b = s.intervals_baseline;
    lines.push(
      `| ${pair} | ${pc(m.coverage, 1)} (${pc(m.below, 1)} / ${pc(m.above, 1)}) | ${f(m.mean_width_bps, 2)} | ${f(m.pinball_p10, 3)} | ${f(m.pinball_p90, 3)} | ${f(m.interval_score, 3)} | ${f(b.interval_score, 3)} | ${f(m.crps, 3)} | ${f(b.crps, 3)} |`,
    );
  }
  lines.push('');
  lines.push(
    `Coverage per fold and pair: ${ev.per_fold.map((fm) => pairs.map((p) => pc(fm.metrics[`model ${p}`]?.coverage_p10_p90, 1)).join(' / ')).join(' · ')}`,
  );
  lines.push('');
  // Deciles per pair, by each pair's own rv_60m: pooled deciles would sort BTC into the calm ones and ETH into the
  // turbulent ones.
  const decileRows = Object.entries(ev.per_pair_vol_decile).flatMap(([pair, deciles]) =>
    deciles.map((d) => ({ pair, d })),
  );
  if (decileRows.length > 0) {
    lines.push(
      '| pair | rv_60m decile (of the pair) | rv range | coverage | mean width | interval score | baseline | skill |',
    );
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const { pair, d } of decileRows)
      lines.push(
        `| ${pair} | ${d.decile} | ${f(d.rv_from, 5)} – ${f(d.rv_to, 5)} | ${pc(d.coverage, 1)} | ${f(d.mean_width_bps, 2)} | ${f(d.interval_score, 3)} | ${f(d.interval_score_baseline, 3)} | ${pc(d.skill, 3)} |`,
      );
    lines.push('');
  }
  if (result.figures?.length) {
    lines.push('## Figures');
    lines.push('');
    for (const fig of result.figures)
      lines.push(`![${fig.replace('.png', '').replaceAll('_', ' ')}](${fig})`, '');
  }
  if (result.importance) {
    const imp = result.importance;
    lines.push(`## Feature importance (final model; SHAP on the last ${imp.shap_rows} rows)`);
    lines.push('');
    lines.push('| column | mean \\|SHAP\\| (bps) | total gain | gain per split |');
    lines.push('|---|---|---|---|');
    const cols = Object.keys(imp.shap_mean_abs).sort((a, b) => imp.shap_mean_abs[b]! - imp.shap_mean_abs[a]!);
    for (const c of cols.slice(0, 20))
      lines.push(
        `| ${c} | ${f(imp.shap_mean_abs[c], 4)} | ${f(imp.total_gain[c] ?? 0, 1)} | ${f(imp.gain[c] ?? 0, 3)} |`,
      );
    lines.push('');
  }
  return lines.join('\n');
}
