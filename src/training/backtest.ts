import { setImmediate as nextTurn } from 'node:timers/promises';
import { CryptocastError, ERR, fail, UsageError } from '../core/errors.ts';
import { WARMUP_CANDLES } from '../features/technical.ts';
import { fillMatrix, imputationPlan } from '../inference/imputation.ts';
import { columnIndex } from '../inference/model-holder.ts';
import { XgbModel } from '../inference/xgboost-model.ts';
import { requirePair } from '../ingestion/symbols.ts';
import { type Dataset, DatasetError } from './dataset.ts';
import { type Evaluation, evaluateInTurns } from './evaluation.ts';
import type { Fold } from './folds.ts';
import type { OutOfSample } from './python-trainer.ts';
import type { ModelCard } from './registry/registry.ts';
import { ridgeFit, ridgePredict } from './ridge.ts';

/**
 * The backtest of a registered model as it is: its three XGBoost files, evaluated by the project's TypeScript
 * runtime (the one the live predictor runs, no refit), on candles it has never seen — another venue, a later
 * period. The production question: "the model we ship, on data it has never seen".
 *
 * Every row is out of sample for the model; the rows are grouped by UTC day, and the days play the role of the
 * walk-forward's folds (per-day breakdown in `per_fold` and `per_day`). Baselines on the same rows: persistence,
 * drift, and the linear baseline — a ridge regression refitted at the start of each day on the candles' earlier
 * rows whose target had already happened (point in time, at most the latest 200,000; on the first day it has seen
 * nothing and predicts 0, like persistence). There is no champion comparison: the model is the one under test.
 */
export class BacktestError extends CryptocastError {
  override readonly name = 'BacktestError';
  /** `hint`: when the mismatch is not a pair's, the catalogue's hint (use --as-pair) would send the user astray. */
  constructor(message: string, hint: string = ERR.MODEL_MISMATCH.hint!) {
    super(ERR.MODEL_MISMATCH.code, message, {
      exitCode: ERR.MODEL_MISMATCH.exitCode,
      hint,
    });
  }
}

export interface ModelDocs {
  'model.json': string;
  'p10.json': string;
  'p90.json': string;
}

export interface Backtest {
  /** The days, as folds: testFrom/testTo the day, trainFrom/trainTo the model's training window. */
  days: Fold[];
  oos: OutOfSample;
  evaluation: Evaluation;
  /** Test rows whose windowEnd lies inside the model's training window (not out of sample: reported). */
  inTrainingWindow: number;
  /** Rows per column whose missing value was filled with its training mean (src/inference/imputation.ts). */
  imputed: Record<string, number>;
}

const DAY_MS = 86_400_000;
/**
 * Rows scored by the three models between two turns of the event loop (about 0.1 s of work): a stop signal is heard
 * and the progress drawn between chunks. Each row's outputs depend on that row alone, so the figures do not depend on
 * the chunk (test/unit/training/backtest.test.ts).
 */
export const SCORE_CHUNK_ROWS = 10_000;

/** Where a backtest stands: the stage (the model's rows, the linear baseline's days, the scoring) and how far. */
export interface BacktestProgress {
  stage: 'model' | 'linear' | 'evaluation';
  done: number;
  total: number;
  detail: string;
}

export interface BacktestOptions {
  /** Aborted: the work stops at the next chunk, and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  onProgress?: (p: BacktestProgress) => void;
  /** Rows per chunk (SCORE_CHUNK_ROWS); tests make it small. */
  chunkRows?: number;
}

/** Lets the event loop turn (a signal's handler, the progress bar), then stops if asked to. */
async function yieldTurn(signal: AbortSignal | undefined): Promise<void> {
  await nextTurn();
  signal?.throwIfAborted();
}
/** The linear baseline learns from at most the latest rows (a long backtest would otherwise refit on everything). */
const LINEAR_MAX_ROWS = 200_000;

/**
 * Parses `--as-pair`: `TRAINED` (when the candles hold one pair) or `PAIR=TRAINED,PAIR=TRAINED`.
 * Returns data pair → trained pair.
 */
export function parseAsPair(text: string | undefined, dataPairs: readonly string[]): Map<string, string> {
  const norm = (p: string) => requirePair(p, '--as-pair');
  const map = new Map<string, string>();
  if (text === undefined) return map;
  if (!text.includes('=')) {
    if (dataPairs.length !== 1)
      throw new UsageError(
        `--as-pair ${text}: the candles hold ${dataPairs.length} pairs (${dataPairs.join(', ')}); map each one: --as-pair ${dataPairs.map((p) => `${p}=…`).join(',')}`,
      );
    map.set(dataPairs[0]!, norm(text));
    return map;
  }
  for (const part of text.split(',')) {
    const [from, to, ...rest] = part.split('=');
    if (from === undefined || to === undefined || rest.length > 0 || !from.trim() || !to.trim())
      throw new UsageError(`--as-pair: "${part}" is not PAIR=TRAINED_PAIR`);
    map.set(norm(from), norm(to));
  }
  return map;
}

/**
 * Checks that the model can honestly be applied to this dataset: same horizon, pairs it was trained for (or mapped
 * to one by the user), technical columns only, and enough candles for the indicators' warm-up.
 */
export function checkApplicable(
  ds: Dataset,
  card: ModelCard,
  asPair: Map<string, string>,
  candlesPerPair: ReadonlyMap<string, number>,
): void {
  if (ds.horizonMs !== card.horizonMs)
    throw new BacktestError(
      `${card.name} v${card.version} predicts ${card.horizonMs / 60_000} minutes ahead; it cannot be backtested at a ${ds.horizonMs / 60_000}-minute horizon`,
      'leave --horizon out: a backtest scores a model at the horizon it was trained for',
    );
  try {
    columnIndex(card); // technical columns and the log-return target, as the predictor serves
  } catch (err) {
    throw new BacktestError(
      (err as Error).message,
      'backtest serves what the predictor serves: a model of technical columns only (train it without --news/--with-news)',
    );
  }
  for (const [from, to] of asPair) {
    if (!ds.pairs.includes(from) && !candlesPerPair.has(from))
      throw new BacktestError(
        `--as-pair ${from}=${to}: the candles have no ${from} (they have ${[...candlesPerPair.keys()].join(', ')})`,
      );
    if (!card.pairs.includes(to))
      throw new BacktestError(
        `--as-pair ${from}=${to}: ${card.name} v${card.version} was not trained on ${to} (it was on ${card.pairs.join(', ')})`,
      );
  }
  const pairs = [...new Set([...candlesPerPair.keys(), ...ds.pairs])];
  const foreign = pairs.filter((p) => !card.pairs.includes(asPair.get(p) ?? p));
  if (foreign.length > 0)
    throw new BacktestError(
      `${card.name} v${card.version} was trained on ${card.pairs.join(', ')}, not on ${foreign.join(', ')}: ` +
        `say which trained pair to treat ${foreign.length === 1 ? 'it' : 'each'} as, e.g. --as-pair ${foreign.length === 1 ? card.pairs[0] : foreign.map((p) => `${p}=${card.pairs[0]}`).join(',')}`,
    );
  const need = WARMUP_CANDLES + ds.horizonMs / 60_000;
  const scored = new Map<string, number>();
  for (let i = 0; i < ds.n; i++) {
    const p = ds.pairs[ds.pair[i]!]!;
    scored.set(p, (scored.get(p) ?? 0) + 1);
  }
  const short = pairs.filter((p) => (scored.get(p) ?? 0) === 0);
  if (short.length > 0)
    throw new DatasetError(
      `too few candles for the indicators' warm-up: ${short.map((p) => `${p} has ${candlesPerPair.get(p) ?? 0}`).join(', ')}; ` +
        `a pair needs at least ${need} consecutive 1-minute candles (${WARMUP_CANDLES} to warm up + ${ds.horizonMs / 60_000} to the first target)`,
    );
}

/**
 * The model's three outputs on every row of the dataset (whose columns must be the card's, in order), with what the
 * predictor fills in (a column the model never saw missing: its training mean) filled in the same way.
 */
export async function predictDataset(
  ds: Dataset,
  card: ModelCard,
  docs: ModelDocs,
  opts: BacktestOptions = {},
) {
  if (ds.columns.join(',') !== card.columns.join(','))
    throw new DatasetError(`the dataset's columns are not ${card.name} v${card.version}'s`);
  const { X, filled: imputed } = fillMatrix(imputationPlan(card), ds.X, ds.n);
  const load = (f: keyof ModelDocs) => {
    let m: XgbModel;
    try {
      m = XgbModel.fromJson(docs[f]);
    } catch (err) {
      throw fail(ERR.MODEL, `${card.name} v${card.version}: ${f}: ${(err as Error).message}`);
    }
    if (m.numFeatures !== card.columns.length)
      throw fail(
        ERR.MODEL,
        `${card.name} v${card.version}: ${f} takes ${m.numFeatures} features, the card lists ${card.columns.length}`,
      );
    return m;
  };
  const models = [load('model.json'), load('p10.json'), load('p90.json')] as const;
  const model = new Float64Array(ds.n);
  const a = new Float64Array(ds.n);
  const b = new Float64Array(ds.n);
  const k = card.columns.length;
  const chunk = opts.chunkRows ?? SCORE_CHUNK_ROWS;
  for (let from = 0; from < ds.n; from += chunk) {
    const to = Math.min(ds.n, from + chunk);
    const rows = X.subarray(from * k, to * k);
    model.set(models[0].predictBatch(rows, to - from), from);
    a.set(models[1].predictBatch(rows, to - from), from);
    b.set(models[2].predictBatch(rows, to - from), from);
    opts.onProgress?.({ stage: 'model', done: to, total: ds.n, detail: 'rows' });
    await yieldTurn(opts.signal);
  }
  // Two independently fitted quantiles can cross: ordered, as the predictor reports them.
  const p10 = a.map((v, i) => Math.min(v, b[i]!));
  const p90 = a.map((v, i) => Math.max(v, b[i]!));
  return { model, p10, p90, imputed };
}

/** The linear baseline, refitted at the start of each day on the earlier rows whose target time has passed. */
export async function linearByDay(
  ds: Dataset,
  days: readonly Fold[],
  opts: BacktestOptions = {},
): Promise<Float64Array> {
  const out = new Float64Array(ds.n);
  const k = ds.columns.length;
  // Rows are in time order: the rows seen before a day are a prefix, its test rows a range.
  let seenEnd = 0;
  let testStart = 0;
  for (const [di, d] of days.entries()) {
    // A refit takes up to ~0.2 s (200,000 rows): the event loop turns after each day.
    if (di > 0) {
      opts.onProgress?.({ stage: 'linear', done: di, total: days.length, detail: 'days' });
      await yieldTurn(opts.signal);
    }
    while (seenEnd < ds.n && ds.windowEnd[seenEnd]! + ds.horizonMs <= d.testFrom) seenEnd++;
    while (testStart < ds.n && ds.windowEnd[testStart]! < d.testFrom) testStart++;
    let testEnd = testStart;
    while (testEnd < ds.n && ds.windowEnd[testEnd]! < d.testTo) testEnd++;
    const from = Math.max(0, seenEnd - LINEAR_MAX_ROWS);
    if (seenEnd - from < 2 * k || testEnd === testStart) continue; // nothing to learn from yet: 0, as persistence
    const seen = Int32Array.from({ length: seenEnd - from }, (_, j) => from + j);
    const test = Int32Array.from({ length: testEnd - testStart }, (_, j) => testStart + j);
    const pred = ridgePredict(ridgeFit(ds.X, k, ds.y, seen), ds.X, k, test);
    for (const [j, i] of test.entries()) out[i] = pred[j]!;
  }
  opts.onProgress?.({ stage: 'linear', done: days.length, total: days.length, detail: 'days' });
  return out;
}

/**
 * The backtest, in chunks (SCORE_CHUNK_ROWS rows of the model, a day of the linear baseline, a slice of the
 * evaluation: `evaluateInTurns`) between which the event loop turns: a 14-month backtest computes for minutes
 * (measured on 2 × 425 days, 1.2M rows: the three models 20 s, the linear baseline 70 s, the evaluation 44 s before
 * it computed each row's CRPS once), and a Ctrl-C was not heard until its end.
 */
export async function backtest(
  ds: Dataset,
  card: ModelCard,
  docs: ModelDocs,
  opts: BacktestOptions = {},
): Promise<Backtest> {
  if (ds.n === 0) throw new DatasetError('no rows to backtest');
  const first = Math.floor(ds.windowEnd[0]! / DAY_MS) * DAY_MS;
  const last = ds.windowEnd[ds.n - 1]!;
  const days: Fold[] = [];
  for (let t = first, k = 0; t <= last; t += DAY_MS, k++)
    days.push({
      fold: k,
      trainFrom: card.trainingWindow.from,
      trainTo: card.trainingWindow.to,
      testFrom: t,
      testTo: t + DAY_MS,
    });
  const { model, p10, p90, imputed } = await predictDataset(ds, card, docs, opts);
  const linear = await linearByDay(ds, days, opts);
  opts.onProgress?.({ stage: 'evaluation', done: 0, total: 1, detail: 'scoring' });
  await yieldTurn(opts.signal);
  const fold = new Int32Array(ds.n);
  let inTrainingWindow = 0;
  for (let i = 0; i < ds.n; i++) {
    fold[i] = Math.floor((ds.windowEnd[i]! - first) / DAY_MS);
    const t = ds.windowEnd[i]!;
    if (t >= card.trainingWindow.from && t <= card.trainingWindow.to + ds.horizonMs) inTrainingWindow++;
  }
  // Days without a row (a gap in the candles) are dropped, so that every "fold" has test rows.
  const present = new Set(fold);
  const kept = days.filter((d) => present.has(d.fold));
  const oos: OutOfSample = {
    row: Int32Array.from({ length: ds.n }, (_, i) => i),
    fold,
    model,
    p10,
    p90,
    linear,
    champion: new Float64Array(ds.n).fill(Number.NaN),
  };
  const evaluation = await evaluateInTurns(ds, kept, oos, opts.signal);
  opts.onProgress?.({ stage: 'evaluation', done: 1, total: 1, detail: 'scoring' });
  return { days: kept, oos, evaluation, inTrainingWindow, imputed };
}
