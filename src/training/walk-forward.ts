import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, writeDataset } from './dataset.ts';
import { type Evaluation, evaluate } from './evaluation.ts';
import { type Fold, walkForwardFolds } from './folds.ts';
import {
  type OutOfSample,
  type Progress,
  runTrainer,
  type TrainerResult,
  type TrainerSpec,
} from './python-trainer.ts';

export interface WalkForwardOptions {
  folds: number;
  mode: 'expanding' | 'rolling';
  /** Gap between training and test (≥ the horizon; default the horizon). */
  purgeMs?: number;
  /** Fixed hyperparameters, or an Optuna budget (ignored when params are given). */
  params?: Record<string, unknown>;
  tune?: { seconds: number; trials: number };
  champion?: TrainerSpec['champion'];
  final: boolean;
  figures: boolean;
  seed?: number;
  threads?: number;
  /** Where the dataset and the trainer's output go (a temporary folder by default). */
  workDir?: string;
  onProgress?: (p: Progress) => void;
  onLog?: (message: string) => void;
}

export interface WalkForwardRun {
  folds: Fold[];
  oos: OutOfSample;
  result: TrainerResult;
  evaluation: Evaluation;
  /** The trainer's output folder: model.json, p10.json, p90.json, figures (when `final`). */
  outDir: string;
}

/** Folds over the dataset's span → Python fits each fold (and the final models) → scorecard. */
export async function walkForward(ds: Dataset, opts: WalkForwardOptions): Promise<WalkForwardRun> {
  const folds = walkForwardFolds(ds.windowEnd[0]!, ds.windowEnd[ds.n - 1]!, {
    folds: opts.folds,
    horizonMs: ds.horizonMs,
    purgeMs: opts.purgeMs,
    mode: opts.mode,
  });
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'cryptocast-train-')));
  const datasetDir = join(work, 'dataset');
  const outDir = join(work, 'out');
  await writeDataset(ds, datasetDir);
  await mkdir(outDir, { recursive: true });
  const { oos, result } = await runTrainer(
    datasetDir,
    {
      horizonMs: ds.horizonMs,
      folds,
      params: opts.params,
      tune: opts.params ? undefined : opts.tune,
      quantiles: [0.1, 0.9],
      threads: opts.threads,
      seed: opts.seed ?? 42,
      validationFraction: 0.1,
      final: opts.final,
      figures: opts.figures,
      champion: opts.champion,
    },
    outDir,
    opts.onProgress,
    opts.onLog,
  );
  return { folds, oos, result, evaluation: evaluate(ds, folds, oos), outDir };
}
