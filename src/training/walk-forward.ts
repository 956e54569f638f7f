import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, DatasetError, writeDataset } from './dataset.ts';
import { type Evaluation, evaluateInTurns } from './evaluation.ts';
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
  /** Test only from this time on; everything before is the initial training window (`evaluate --history`). */
  testFrom?: number;
  /** Refit every `everyMs` over the test span (the trainer service's schedule), on the latest `windowMs` if given. */
  everyMs?: number;
  windowMs?: number;
  /** Gap between training and test (≥ the horizon; default the horizon). */
  purgeMs?: number;
  /** Fixed hyperparameters, or an Optuna budget (ignored when params are given). */
  params?: Record<string, unknown>;
  tune?: { seconds: number; trials: number };
  /** The point model's training windows in days (null: all); default the trainer's, [null, 60]. */
  pointWindowsDays?: (number | null)[];
  champion?: TrainerSpec['champion'];
  final: boolean;
  figures: boolean;
  seed?: number;
  threads?: number;
  /** Where the dataset and the trainer's output go (a temporary folder by default). */
  workDir?: string;
  onProgress?: (p: Progress) => void;
  onLog?: (message: string) => void;
  /** Stops the trainer (the work folder is removed): SIGINT/SIGTERM of the command. */
  signal?: AbortSignal;
}

export interface WalkForwardRun {
  folds: Fold[];
  oos: OutOfSample;
  result: TrainerResult;
  evaluation: Evaluation;
  /** The trainer's output folder: model.json, p10.json, p90.json, figures (when `final`). */
  outDir: string;
  /** Removes the temporary folder this run made (nothing when the caller gave `workDir`): call once done with `outDir`. */
  cleanup(): Promise<void>;
}

/** The last 10 % of each training window (by time) validates early stopping, after a purge gap. */
export const VALIDATION_FRACTION = 0.1;
/** The trainer refuses an early-stopping split with fewer rows than these (it is told the same numbers). */
export const MIN_FIT_ROWS = 100;
export const MIN_VALIDATION_ROWS = 50;

/**
 * Checks up front, with the trainer's own rule, that every fold's training window can be split for early stopping
 * and every test block has rows: a clear DatasetError with the minimum, not a trainer failure after the features.
 */
export function checkFoldsTrainable(ds: Dataset, folds: readonly Fold[], validationFraction: number): void {
  const t = ds.windowEnd;
  const count = (lo: number, hi: number, from: number, to: number) => {
    let n = 0;
    for (let i = 0; i < ds.n; i++) if (t[i]! >= lo && t[i]! < hi && t[i]! >= from && t[i]! < to) n++;
    return n;
  };
  // Rows needed in a training window: validationFraction of it must hold MIN_VALIDATION_ROWS, the rest MIN_FIT_ROWS
  // (plus the purge gap's minutes); the first fold trains on 1 / (folds + 1) of the span.
  const perWindow = Math.ceil(
    Math.max(MIN_VALIDATION_ROWS / validationFraction, MIN_FIT_ROWS / (1 - validationFraction)) +
      ds.horizonMs / 60_000,
  );
  const needed = perWindow * (folds.length + 1);
  for (const f of folds) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < ds.n; i++)
      if (t[i]! >= f.trainFrom && t[i]! < f.trainTo) {
        if (t[i]! < lo) lo = t[i]!;
        if (t[i]! > hi) hi = t[i]!;
      }
    const cut = hi - (hi - lo) * validationFraction;
    const fit = Number.isFinite(lo) ? count(f.trainFrom, f.trainTo, -Infinity, cut - ds.horizonMs) : 0;
    const val = Number.isFinite(lo) ? count(f.trainFrom, f.trainTo, cut, Infinity) : 0;
    const test = count(f.testFrom, f.testTo, -Infinity, Infinity);
    if (fit < MIN_FIT_ROWS || val < MIN_VALIDATION_ROWS || test === 0)
      throw new DatasetError(
        `too little data for ${folds.length} walk-forward folds: fold ${f.fold + 1} trains on ${fit + val} rows ` +
          `(early stopping needs ≥ ${MIN_FIT_ROWS} to fit and ≥ ${MIN_VALIDATION_ROWS} to validate) and tests on ${test}; ` +
          `this dataset has ${ds.n.toLocaleString('en-US')} rows, ${folds.length} folds need about ` +
          `${needed.toLocaleString('en-US')} (1-minute candles after the indicators' warm-up): give more candles or fewer --folds`,
      );
  }
}

/** Folds over the dataset's span → Python fits each fold (and the final models) → scorecard. */
export async function walkForward(ds: Dataset, opts: WalkForwardOptions): Promise<WalkForwardRun> {
  const folds = walkForwardFolds(ds.windowEnd[0]!, ds.windowEnd[ds.n - 1]!, {
    folds: opts.folds,
    horizonMs: ds.horizonMs,
    purgeMs: opts.purgeMs,
    mode: opts.mode,
    testFrom: opts.testFrom,
    everyMs: opts.everyMs,
    windowMs: opts.windowMs,
  });
  checkFoldsTrainable(ds, folds, VALIDATION_FRACTION);
  // A folder of its own unless the caller gave one; it holds the dataset as the trainer reads it (hundreds of MB for
  // months of candles), so it goes as soon as the run is done with it.
  const ownWork = opts.workDir === undefined;
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'cryptocast-train-')));
  const cleanup = async () => {
    if (ownWork) await rm(work, { recursive: true, force: true });
  };
  const datasetDir = join(work, 'dataset');
  const outDir = join(work, 'out');
  let trained: Awaited<ReturnType<typeof runTrainer>>;
  try {
    await writeDataset(ds, datasetDir);
    await mkdir(outDir, { recursive: true });
    trained = await runTrainer(
      datasetDir,
      {
        horizonMs: ds.horizonMs,
        folds,
        params: opts.params,
        tune: opts.params ? undefined : opts.tune,
        quantiles: [0.1, 0.9],
        threads: opts.threads,
        seed: opts.seed ?? 42,
        validationFraction: VALIDATION_FRACTION,
        minFitRows: MIN_FIT_ROWS,
        minValidationRows: MIN_VALIDATION_ROWS,
        final: opts.final,
        figures: opts.figures,
        champion: opts.champion,
        pointWindowsDays: opts.pointWindowsDays,
      },
      outDir,
      opts.onProgress,
      opts.onLog,
      opts.signal,
    );
  } catch (err) {
    await cleanup();
    throw err;
  }
  if (ownWork) await rm(datasetDir, { recursive: true, force: true });
  const { oos, result } = trained;
  // In slices between which a stop is heard (it computed for tens of seconds on months of test rows, deaf to it).
  let evaluation: Evaluation;
  try {
    evaluation = await evaluateInTurns(ds, folds, oos, opts.signal);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { folds, oos, result, evaluation, outDir, cleanup };
}
