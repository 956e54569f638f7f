/**
 * The calibration and robustness study (issue 16, docs/training.md): on the 14 months of Binance BTCUSDT/ETHUSDT and
 * the same 5 expanding walk-forward folds as `cryptocast evaluate`, the interval (and point) variants of
 * python/cryptocast_trainer/study.py side by side on identical test rows, plus the online adaptive conformal
 * adjustment (src/inference/adaptive-conformal.ts) applied to each out-of-sample stream in time order, as the live
 * predictor would (an outcome is learnt 5 minutes after its forecast).
 *
 * Usage: ./bench/run interval-study [--refit]    (the dataset and the study's fits are cached in .data/study/)
 * Prints a Markdown table per question; writes .data/study/binance-study/summary.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyOnline } from '../src/inference/adaptive-conformal.ts';
import { type Dataset, readDataset, writeDataset } from '../src/training/dataset.ts';
import { type Evaluation, evaluate } from '../src/training/evaluation.ts';
import { type Fold, walkForwardFolds } from '../src/training/folds.ts';
import type { OutOfSample } from '../src/training/python-trainer.ts';
import { TRAINER_VENV } from '../src/training/python-trainer.ts';
import { datasetFromCandles } from '../src/training/sources.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const CACHE = join(ROOT, '.data', 'study');

export async function cachedDataset(name: string, candles: string, pair?: string): Promise<Dataset> {
  const dir = join(CACHE, name);
  if (!existsSync(join(dir, 'dataset.json'))) {
    process.stderr.write(`building the dataset of ${candles} (cached in ${dir})\n`);
    const src = await datasetFromCandles(candles, { horizonMs: 300_000, pair });
    await writeDataset(src.dataset, dir);
  }
  return readDataset(dir);
}

/** Runs the Python study on the dataset's folds (cached unless `refit`); returns its out-of-sample columns. */
export function studyFits(name: string, folds: Fold[], refit: boolean, extra: Record<string, unknown> = {}) {
  const out = join(CACHE, `${name}-study`);
  mkdirSync(out, { recursive: true });
  if (refit || !existsSync(join(out, 'oos.f64'))) {
    writeFileSync(
      join(out, 'spec.json'),
      JSON.stringify({ horizonMs: 300_000, folds, seed: 42, variants: ['point_vol'], ...extra }),
    );
    execFileSync(
      'nice',
      [
        '-n',
        '5',
        join(TRAINER_VENV, 'bin', 'python'),
        '-m',
        'cryptocast_trainer.study',
        '--dataset',
        join(CACHE, name),
        '--spec',
        join(out, 'spec.json'),
        '--out',
        out,
      ],
      { cwd: join(ROOT, 'python'), stdio: ['ignore', 'inherit', 'inherit'] },
    );
  }
  const b = readFileSync(join(out, 'oos.f64'));
  const a = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const m = a.length / 12;
  const col = (j: number) => Float64Array.from({ length: m }, (_, i) => a[i * 12 + j]!);
  const names = [
    'row',
    'fold',
    'model',
    'point_vol',
    'lo_raw',
    'hi_raw',
    'lo_vol',
    'hi_vol',
    'lo_raw_cqr',
    'hi_raw_cqr',
    'lo_vol_cqr',
    'hi_vol_cqr',
  ] as const;
  return Object.fromEntries(names.map((n, j) => [n, col(j)])) as Record<(typeof names)[number], Float64Array>;
}

/** An OutOfSample for the scorecard from study columns (linear and champion are not part of this study). */
export function asOos(
  s: ReturnType<typeof studyFits>,
  point: Float64Array,
  lo: Float64Array,
  hi: Float64Array,
): OutOfSample {
  const m = s.row.length;
  return {
    row: Int32Array.from(s.row),
    fold: Int32Array.from(s.fold),
    model: point,
    p10: lo,
    p90: hi,
    linear: new Float64Array(m),
    champion: new Float64Array(m).fill(Number.NaN),
  };
}

/** The ACI-adjusted band of a stream (keys = pairs), in the stream's time order. */
export function aci(
  ds: Dataset,
  rows: Float64Array,
  lo: Float64Array,
  hi: Float64Array,
  gamma: number,
  window = 1440,
) {
  return applyOnline(
    {
      key: Float64Array.from(rows, (i) => ds.pair[i]!),
      windowEnd: Float64Array.from(rows, (i) => ds.windowEnd[i]!),
      horizonMs: ds.horizonMs,
      p10: lo,
      p90: hi,
      actual: Float64Array.from(rows, (i) => ds.y[i]!),
    },
    { gamma, window },
  );
}

const pc = (x: number, d = 1) => `${(x * 100).toFixed(d)} %`;

/** Coverage of every (fold, pair) and every (pair, decile of the pair's rv_60m): the goal is 80 ± 3 % in each. */
export function coverageSummary(ev: Evaluation) {
  const byFoldPair: number[] = [];
  for (const f of ev.per_fold)
    for (const p of ev.pairs) {
      const c = f.metrics[`model ${p}`]?.coverage_p10_p90;
      if (typeof c === 'number') byFoldPair.push(c);
    }
  const deciles = Object.values(ev.per_pair_vol_decile).flatMap((deciles) => deciles.map((d) => d.coverage));
  const inBand = (c: number) => Math.abs(c - 0.8) <= 0.03;
  return {
    overall: ev.coverage_p10_p90,
    fold_pair_min: Math.min(...byFoldPair),
    fold_pair_max: Math.max(...byFoldPair),
    fold_pair_in_band: byFoldPair.filter(inBand).length,
    fold_pair_total: byFoldPair.length,
    decile_min: Math.min(...deciles),
    decile_max: Math.max(...deciles),
    deciles_in_band: deciles.filter(inBand).length,
    width: ev.intervals.mean_width_bps,
    interval_score: ev.intervals.interval_score,
    interval_score_baseline: ev.intervals_baseline.interval_score,
    crps: ev.intervals.crps,
    deciles,
    byFoldPair,
  };
}

export function intervalRow(name: string, ev: Evaluation): string {
  const c = coverageSummary(ev);
  return `| ${name} | ${pc(c.overall)} | ${pc(c.fold_pair_min)} – ${pc(c.fold_pair_max)} (${c.fold_pair_in_band}/${c.fold_pair_total}) | ${pc(c.decile_min)} – ${pc(c.decile_max)} (${c.deciles_in_band}/${c.deciles.length}) | ${c.width.toFixed(2)} | ${c.interval_score.toFixed(3)} | ${c.crps.toFixed(3)} | ${pc(ev.interval_skill, 2)} |`;
}

export const INTERVAL_HEADER =
  '| band | coverage | per fold × pair (in 80 ± 3) | per pair × rv decile (in 80 ± 3) | mean width, bps | interval score | CRPS | IS skill vs persistence ± vol |\n|---|---|---|---|---|---|---|---|';

async function main() {
  const refit = process.argv.includes('--refit');
  const ds = await cachedDataset('binance', DATA);
  const folds = walkForwardFolds(ds.windowEnd[0]!, ds.windowEnd[ds.n - 1]!, { folds: 5, horizonMs: 300_000 });
  const s = studyFits('binance', folds, refit);
  const summary: Record<string, unknown> = {};
  const lines = [INTERVAL_HEADER];
  const show = (name: string, lo: Float64Array, hi: Float64Array, point = s.model) => {
    const t0 = performance.now();
    const ev = evaluate(ds, folds, asOos(s, point, lo, hi));
    summary[name] = {
      ...coverageSummary(ev),
      skill: ev.skill,
      per_pair_skill: Object.fromEntries(Object.entries(ev.per_pair).map(([p, c]) => [p, c.skill])),
    };
    lines.push(intervalRow(name, ev));
    process.stderr.write(`${lines.at(-1)} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    return ev;
  };
  show('quantile models on the return (today)', s.lo_raw, s.hi_raw);
  show('+ split conformal (last 10 % of the window)', s.lo_raw_cqr, s.hi_raw_cqr);
  show('quantile models on return / volatility', s.lo_vol, s.hi_vol);
  show('+ split conformal', s.lo_vol_cqr, s.hi_vol_cqr);
  const gammas = process.env.STUDY_GAMMAS?.split(',').map(Number) ?? [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
  ];
  for (const gamma of gammas) {
    const a = aci(ds, s.row, s.lo_raw, s.hi_raw, gamma);
    show(`return quantiles + online ACI, γ ${gamma}`, a.lo, a.hi);
    const v = aci(ds, s.row, s.lo_vol, s.hi_vol, gamma);
    show(`return / volatility quantiles + online ACI, γ ${gamma}`, v.lo, v.hi);
    const c = aci(ds, s.row, s.lo_vol_cqr, s.hi_vol_cqr, gamma);
    show(`return / volatility quantiles + split conformal + online ACI, γ ${gamma}`, c.lo, c.hi);
  }
  for (const window of process.env.STUDY_WINDOWS?.split(',').map(Number) ?? [360, 4320]) {
    const a = aci(ds, s.row, s.lo_raw, s.hi_raw, 0.001, window);
    show(`return quantiles + online ACI, γ 0.001, window ${window}`, a.lo, a.hi);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  writeFileSync(join(CACHE, 'binance-study', 'summary.json'), JSON.stringify(summary, null, 2));
}

if (import.meta.main) await main();
