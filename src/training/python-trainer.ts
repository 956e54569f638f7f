import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setting } from '../config/env.ts';
import { CryptocastError, ERR } from '../core/errors.ts';
import type { Dataset } from './dataset.ts';
import type { Evaluation } from './evaluation.ts';
import type { Fold } from './folds.ts';

/**
 * Runs the fit step in Python (python/cryptocast_trainer): XGBoost's maintained bindings are Python, R, JVM and C,
 * so the fit itself runs there, and everything around it (dataset, folds, metrics, the gate, the registry) stays in
 * TypeScript. The contract is files: the dataset folder, a spec (JSON), and an output folder with the
 * out-of-sample predictions, the final models (XGBoost JSON) and a result file.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
export const TRAINER_VENV = join(ROOT, '.tools', 'trainer-venv');

export function trainerPython(): string {
  const py = setting('CRYPTOCAST_PYTHON') ?? join(TRAINER_VENV, 'bin', 'python');
  if (!existsSync(py))
    throw new TrainerError(
      `the trainer's Python is not installed (${py}): run bash scripts/setup.sh, or set CRYPTOCAST_PYTHON to a Python with the packages of python/requirements.txt`,
    );
  return py;
}

export class TrainerError extends CryptocastError {
  override readonly name = 'TrainerError';
  constructor(message: string) {
    super(ERR.TRAINER.code, message, { exitCode: ERR.TRAINER.exitCode });
  }
}

export interface TrainerSpec {
  horizonMs: number;
  folds: Fold[];
  /** Fixed hyperparameters; when absent and `tune` is given, Optuna chooses them. */
  params?: Record<string, unknown>;
  tune?: { seconds: number; trials: number };
  quantiles: [number, number];
  /** XGBoost's threads; default the CPUs the process may use (os.availableParallelism()). */
  threads?: number;
  seed: number;
  validationFraction: number;
  /** The fewest rows an early-stopping split may have to fit / to validate (checked up front by walkForward too). */
  minFitRows?: number;
  minValidationRows?: number;
  /** Fit the final models on every row (train) or only walk forward (evaluate). */
  final: boolean;
  figures: boolean;
  /** The point model's training windows in days (null: all); absent: the trainer's default, [null, 60]. */
  pointWindowsDays?: (number | null)[];
  /** The champion's configuration, refitted on the same folds so the gate compares like with like. */
  champion?: { params: Record<string, unknown>; columns: string[] };
}

export interface OutOfSample {
  /** Dataset row of each prediction, its fold, and the predicted returns (bps) of each predictor. */
  row: Int32Array;
  fold: Int32Array;
  model: Float64Array;
  p10: Float64Array;
  p90: Float64Array;
  linear: Float64Array;
  /** NaN when no champion configuration was refitted. */
  champion: Float64Array;
}

export interface TrainerResult {
  params: Record<string, unknown>;
  /** `last_trial_started_after`: seconds from the start of tuning to the start of its last trial. */
  tuning: { trials: number; best_value: number; seconds: number; last_trial_started_after: number } | null;
  folds: {
    fold: number;
    bestIteration: number;
    trainRows: number;
    validationRows: number;
    testRows: number;
    seconds: number;
  }[];
  final?: { bestIteration: number; trainRows: number; validationRows: number };
  importance?: {
    total_gain: Record<string, number>;
    gain: Record<string, number>;
    shap_mean_abs: Record<string, number>;
    shap_rows: number;
  };
  figures?: string[];
  xgboost: string;
  seconds: number;
}

export interface Progress {
  stage: 'tune' | 'folds' | 'final';
  done: number;
  total: number;
  detail: string;
}

/** Calls `python -m cryptocast_trainer fit` and reads what it wrote to `outDir`. */
export async function runTrainer(
  datasetDir: string,
  spec: TrainerSpec,
  outDir: string,
  onProgress?: (p: Progress) => void,
  onLog?: (message: string) => void,
  signal?: AbortSignal,
): Promise<{ oos: OutOfSample; result: TrainerResult }> {
  const specPath = join(outDir, 'spec.json');
  // XGBoost's threads, unless the caller chose: the CPUs this process may use (its affinity and its cgroup's CPU
  // quota, which os.availableParallelism() counts). Python's os.cpu_count() is every CPU of the node: a trainer pod
  // limited to 2 CPUs on a 64-core node ran 64 threads, throttled by the quota.
  await writeFile(specPath, JSON.stringify({ ...spec, threads: spec.threads ?? availableParallelism() }));
  const child = spawn(
    trainerPython(),
    ['-m', 'cryptocast_trainer', 'fit', '--dataset', datasetDir, '--spec', specPath, '--out', outDir],
    {
      cwd: ROOT,
      env: { ...process.env, PYTHONPATH: join(ROOT, 'python'), PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      signal, // a stop ends the fit (SIGTERM), and this call rejects with an AbortError
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8_000);
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      onLog?.(line);
      return;
    }
    // Only an object is an event: `null`, a number or a list is valid JSON but no event, so it is passed on as a log
    // line (reading `.event` on null threw a TypeError in this listener, uncaught, and ended the process).
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      onLog?.(line);
      return;
    }
    const ev = parsed as { event?: string; message?: string } & Partial<Progress>;
    if (ev.event === 'progress') onProgress?.(ev as Progress);
    else if (ev.event === 'log' && ev.message) onLog?.(ev.message);
  });
  const code = await new Promise<number | null>((ok, fail) => {
    child.on('error', fail);
    child.on('close', (c) => ok(c));
  });
  if (code !== 0) {
    const last = stderr.trim().split('\n').slice(-12).join('\n');
    throw new TrainerError(`the trainer failed (exit ${code}):\n${last}`);
  }
  const raw = await readFile(join(outDir, 'oos.f64'));
  const all = new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
  const m = all.length / 7;
  const col = (j: number) => Float64Array.from({ length: m }, (_, i) => all[i * 7 + j]!);
  const oos: OutOfSample = {
    row: Int32Array.from(col(0)),
    fold: Int32Array.from(col(1)),
    model: col(2),
    p10: col(3),
    p90: col(4),
    linear: col(5),
    champion: col(6),
  };
  const result = JSON.parse(await readFile(join(outDir, 'result.json'), 'utf8')) as TrainerResult;
  return { oos, result };
}

/**
 * The evaluation's figures, drawn by the trainer's Python (matplotlib) from the out-of-sample predictions:
 * predicted vs actual (last 6 hours per pair, with the band), the error distribution, skill and coverage per day,
 * coverage per volatility decile of each pair. Returns the file names written into `dir`.
 *
 * Drawn into a work folder inside `dir` and moved into `dir` once all are drawn: stopped (`signal`: the drawing ends
 * at once, SIGTERM), the work folder goes and `dir` is left as it was, with no figure half drawn or of a run that did
 * not finish. The drawing went on to its end after a stop, which was heard only then.
 */
export async function drawEvaluationFigures(
  dir: string,
  ds: Dataset,
  oos: OutOfSample,
  ev: Evaluation,
  signal?: AbortSignal,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, '.figures-'));
  try {
    const m = oos.row.length;
    const a = new Float64Array(m * 8);
    for (let k = 0; k < m; k++) {
      const i = oos.row[k]!;
      const at = k * 8;
      a[at] = ds.windowEnd[i]!;
      a[at + 1] = ds.pair[i]!;
      a[at + 2] = ds.close[i]!;
      a[at + 3] = ds.y[i]!;
      a[at + 4] = oos.model[k]!;
      a[at + 5] = oos.p10[k]!;
      a[at + 6] = oos.p90[k]!;
      a[at + 7] = oos.fold[k]!;
    }
    await writeFile(join(work, 'figures-input.f64'), new Uint8Array(a.buffer));
    await writeFile(
      join(work, 'figures-input.json'),
      JSON.stringify({
        pairs: ds.pairs,
        horizonMs: ds.horizonMs,
        n: m,
        per_day: ev.per_day,
        per_pair_vol_decile: ev.per_pair_vol_decile,
      }),
    );
    signal?.throwIfAborted();
    const child = spawn(
      trainerPython(),
      ['-m', 'cryptocast_trainer', 'figures', '--input', work, '--out', work],
      {
        cwd: ROOT,
        env: { ...process.env, PYTHONPATH: join(ROOT, 'python') },
        stdio: ['ignore', 'pipe', 'pipe'],
        signal, // a stop ends the drawing (SIGTERM), and this call rejects with an AbortError
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4_000);
    });
    const code = await new Promise<number | null>((ok, fail) => {
      child.on('error', fail);
      child.on('close', ok);
    });
    if (code !== 0) throw new TrainerError(`drawing the figures failed (exit ${code}):\n${err.trim()}`);
    const files = out.trim().split('\n').filter(Boolean);
    signal?.throwIfAborted();
    // Past this check every figure is moved in, a stop meanwhile or not: the caller that returns counts them drawn
    // (a stop heard after says so, not "no figures").
    for (const f of files) await rename(join(work, f), join(dir, f));
    return files;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
