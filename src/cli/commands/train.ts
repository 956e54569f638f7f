import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { n } from '../../app/progress.ts';
import { parseDuration } from '../../config/config.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { AtomicFile, checkOutputFile } from '../../core/files.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { NEWS_SET, TECHNICAL_SET } from '../../features/feature-writer.ts';
import { newsFeaturesFrom } from '../../features/news-recording.ts';
import { withFeatureStore } from '../../features/store/open.ts';
import { DEFAULT_ACI } from '../../inference/adaptive-conformal.ts';
import { DEFAULT_SHRINKAGE } from '../../inference/shrinkage.ts';
import { adaptBand, shrinkPoint } from '../../training/adaptive-band.ts';
import { checkDataset, type Dataset, priceFromReturn } from '../../training/dataset.ts';
import { type Evaluation, evaluateInTurns } from '../../training/evaluation.ts';
import type { Fold } from '../../training/folds.ts';
import { DEFAULT_GATE, type GatePolicy } from '../../training/gate.ts';
import { PREDICTIONS_CSV_COLUMNS } from '../../training/predictions-csv.ts';
import { drawEvaluationFigures, type OutOfSample, type Progress } from '../../training/python-trainer.ts';
import { openRegistry, requireAnswer, TRAINING_REGISTRY } from '../../training/registry/open.ts';
import {
  datasetFromCandles,
  datasetFromStoreWindow,
  parsePairs,
  requireCandles,
  type SourceReport,
  sourceProblemLines,
} from '../../training/sources.ts';
import { AliasesNotMovedError, trainAndRegister } from '../../training/train.ts';
import { type WalkForwardRun, walkForward } from '../../training/walk-forward.ts';
import { wholeNumber } from '../flags.ts';

/** `cryptocast evaluate` and `cryptocast train`: candles or the feature store → dataset → walk-forward. */

export interface DataFlags {
  candles?: string;
  history?: string;
  store?: string;
  pair?: string;
  pairs?: string;
  days?: string;
  news?: string;
  withNews?: boolean;
  sentiment?: string;
  horizon: string;
}

export interface WalkFlags {
  every?: string;
  window?: string;
  /** `--point-windows all,60d`: the point model is the mean of models fitted on these windows. */
  pointWindows?: string;
  folds: string;
  mode: string;
  purge?: string;
  tuneSeconds: string;
  trials: string;
  seed: string;
}

const MIN_ROWS = 2_000;

function parseHorizon(text: string): number {
  const horizonMs = parseDuration(text, '--horizon');
  if (horizonMs < 60_000 || horizonMs % 60_000 !== 0)
    throw new UsageError(`--horizon must be a whole number of minutes (e.g. 5m), got "${text}"`);
  return horizonMs;
}

export async function loadDataset(
  opts: DataFlags,
): Promise<{ ds: Dataset; source: SourceReport; featureSets: { name: string; version: number }[] }> {
  const horizonMs = parseHorizon(opts.horizon);
  let source: SourceReport;
  const featureSets = [{ name: TECHNICAL_SET.name, version: TECHNICAL_SET.version }];
  if (opts.candles !== undefined && opts.withNews)
    throw new UsageError(
      "--with-news reads a feature store's news features (--store); with --candles, give --news FILE",
    );
  if (opts.candles !== undefined) {
    const news =
      opts.news === undefined ? undefined : await newsFeaturesFrom(opts.news, opts.sentiment ?? 'local');
    if (news) featureSets.push({ name: NEWS_SET.name, version: NEWS_SET.version });
    const bar = new cliProgress.SingleBar(
      { format: 'features [{bar}] {value}/{total} files', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    try {
      source = await datasetFromCandles(opts.candles, {
        horizonMs,
        pair: opts.pair,
        news,
        history: opts.history,
        onFile: (done, total) => {
          if (total < 2) return;
          if (!started) bar.start(total, 0);
          started = true;
          bar.update(done);
        },
      });
    } finally {
      if (started) bar.stop();
    }
    // Candles the recording does not cover get no news, or months-old scores that look like news (news-recording.ts).
    const outside = news?.outsideSpan();
    if (outside) process.stderr.write(`${outside}\n`);
  } else if (opts.history !== undefined) {
    throw new UsageError('--history goes with --candles');
  } else if (opts.store !== undefined) {
    const days = opts.days === undefined ? 30 : wholeNumber('days', opts.days, 1);
    // The store's news features are the feature writer's (--with-news); a recording joins only to --candles. A file
    // given with --store used to be taken as "with news" and never read.
    if (opts.news !== undefined)
      throw new UsageError(
        '--news FILE joins a news recording to --candles; with --store, --with-news reads the news features the store holds',
      );
    const withNews = opts.withNews === true;
    if (withNews) featureSets.push({ name: NEWS_SET.name, version: NEWS_SET.version });
    const pairs = parsePairs(opts.pairs);
    source = await withFeatureStore(opts.store, (store) =>
      datasetFromStoreWindow(store, { horizonMs, days, pairs, withNews }),
    );
  } else throw new UsageError('give --candles FILE|FOLDER or --store URL');
  const { dataset: ds } = source;
  for (const line of sourceProblemLines(source)) process.stderr.write(`${line}\n`);
  if (opts.candles !== undefined) requireCandles(source, opts.candles, opts.pair);
  for (const w of checkDataset(ds, MIN_ROWS)) process.stderr.write(`warning: ${w}\n`);
  process.stderr.write(
    `dataset: ${n(ds.n)} rows (${ds.pairs.join(', ')}), ${ds.columns.length} columns, horizon ${horizonMs / 60_000} min; ` +
      `${n(ds.dropped.notReady)} warming up, ${n(ds.dropped.noTarget)} without a close at the target time${source.resets ? `, ${n(source.resets)} gaps` : ''}\n`,
  );
  if (source.testFrom !== undefined)
    process.stderr.write(
      `history: every row before ${new Date(source.testFrom).toISOString()} is the initial training window; the folds test the candles from then on\n`,
    );
  return { ds, source, featureSets };
}

/**
 * The walk-forward's settings from its flags. Called before the data is loaded (which takes seconds to minutes): a
 * bad value costs nothing. The purge defaults to the horizon.
 */
function walkOptions(opts: WalkFlags & { horizon: string }) {
  if (opts.window !== undefined && opts.every === undefined)
    throw new UsageError('--window goes with --every (a refit every --every on the latest --window)');
  const mode = opts.mode === 'rolling' ? 'rolling' : 'expanding';
  if (opts.mode !== mode) throw new UsageError(`--mode must be expanding or rolling, got "${opts.mode}"`);
  // The refit schedule has a training window of its own (--window); it ignored --mode, so `--mode rolling --every 7d`
  // walked forward on all history and the report did not say.
  if (mode === 'rolling' && opts.every !== undefined)
    throw new UsageError(
      '--mode rolling does not apply to --every (a refit every --every trains on all history): give --window (e.g. 60d) for a fixed-length window',
    );
  const tuneSeconds = wholeNumber('tune-seconds', opts.tuneSeconds);
  const trials = wholeNumber('trials', opts.trials, 1);
  return {
    folds: wholeNumber('folds', opts.folds, 1),
    mode,
    purgeMs: opts.purge === undefined ? parseHorizon(opts.horizon) : parseDuration(opts.purge, '--purge'),
    everyMs: opts.every === undefined ? undefined : parseDuration(opts.every, '--every'),
    windowMs: opts.window === undefined ? undefined : parseDuration(opts.window, '--window'),
    tune: tuneSeconds > 0 ? { seconds: tuneSeconds, trials } : undefined,
    seed: wholeNumber('seed', opts.seed),
    pointWindowsDays: opts.pointWindows === undefined ? undefined : parsePointWindows(opts.pointWindows),
  } as const;
}

/** `all,60d` → [null, 60]: whole days, `all` for the whole training window, each at most once. */
export function parsePointWindows(list: string): (number | null)[] {
  const out = list.split(',').map((w) => {
    const v = w.trim();
    if (v === 'all') return null;
    const ms = parseDuration(v, '--point-windows');
    if (ms % 86_400_000 !== 0 || ms <= 0)
      throw new UsageError(`--point-windows: ${v} is not a whole number of days (e.g. all,60d)`);
    return ms / 86_400_000;
  });
  if (new Set(out).size !== out.length) throw new UsageError(`--point-windows: ${list} names a window twice`);
  return out;
}

/**
 * SIGINT/SIGTERM stop the trainer: its Python child ends, the run's work folder (the dataset, hundreds of MB) goes, and
 * nothing is registered (`train`) or written (`evaluate`: its --predictions and figures come after the walk); the command ends with CC_ERR_INTERRUPTED (exit 130). Without it, Node exited at once and left
 * both behind.
 */
function stopOnSignal(what: 'train' | 'evaluate') {
  const stop = new AbortController();
  const off = onStopSignal(() => stop.abort());
  return {
    signal: stop.signal,
    off,
    /**
     * What to end with: an interruption when the stop caused the failure. `kept`: the predictions file committed
     * before the stop, and `figures` the folder the figures were put in (what was reported as done is kept, as
     * backtest says): a stop after the drawing's last check of it leaves them all in place, and the message said
     * "no figures".
     */
    failure(err: unknown, kept?: string, figures?: string): unknown {
      // A version registered before the failure is said as such (it is not "nothing was registered").
      if (!stop.signal.aborted || err instanceof AliasesNotMovedError) return err;
      // evaluate registers nothing: it said "nothing was registered" too, to a user who had asked for a file.
      if (what === 'train')
        return fail(
          ERR.INTERRUPTED,
          'interrupted: the trainer was stopped and its work folder removed; nothing was registered',
        );
      if (kept === undefined && figures === undefined)
        return fail(
          ERR.INTERRUPTED,
          'interrupted: the walk-forward was stopped and its work folder removed; nothing was written',
        );
      if (figures === undefined)
        return fail(
          ERR.INTERRUPTED,
          `interrupted: the evaluation was stopped; its predictions were written to ${kept} before, no figures`,
        );
      return fail(
        ERR.INTERRUPTED,
        `interrupted: the evaluation was stopped; ${kept === undefined ? '' : `its predictions were written to ${kept} and `}its figures were drawn into ${figures} before`,
      );
    },
  };
}

/**
 * A progress display of a command's stages (the trainer's, the backtest's), on stderr: a bar per stage on a terminal,
 * lines otherwise. `linesEveryMs` spaces those lines (a stage's first and last are always written): the trainer's come
 * a fold at a time, the backtest's a chunk of rows at a time.
 */
export function progressDisplay(linesEveryMs = 0) {
  const bar = new cliProgress.SingleBar(
    { format: '{stage} [{bar}] {value}/{total} · {detail} · {duration_formatted}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let stage = '';
  const tty = process.stderr.isTTY === true;
  let lineStage = '';
  let lineAt = 0;
  return {
    onProgress: (p: Omit<Progress, 'stage'> & { stage: string }) => {
      if (!tty) {
        const now = Date.now();
        if (p.stage !== lineStage || p.done === p.total || now - lineAt >= linesEveryMs) {
          lineStage = p.stage;
          lineAt = now;
          process.stderr.write(`${p.stage} ${p.done}/${p.total}: ${p.detail}\n`);
        }
        return;
      }
      if (p.stage !== stage) {
        if (stage) bar.stop();
        stage = p.stage;
        bar.start(p.total, p.done, { stage: p.stage, detail: p.detail });
      } else bar.update(p.done, { detail: p.detail });
    },
    onLog: (m: string) => process.stderr.write(tty ? `\n${m}\n` : `${m}\n`),
    stop: () => {
      if (stage) bar.stop();
      stage = '';
    },
  };
}

export async function evaluateCommand(
  opts: DataFlags & WalkFlags & BandFlags & { json?: boolean; predictions?: string; figures?: string },
): Promise<void> {
  const started = performance.now();
  // Every flag is checked before the data is loaded and the walk-forward runs, not after minutes of them.
  if (opts.predictions) checkOutputFile(opts.predictions, '--predictions');
  const walk = walkOptions(opts);
  parseBandFlags(opts);
  const { ds, source } = await loadDataset(opts);
  const progress = progressDisplay();
  // Heard until the output is written: a stop during the band's evaluation, the predictions file or the figures
  // ended Node by the signal (the listener was gone), a temporary file of --predictions left behind.
  const stop = stopOnSignal('evaluate');
  let run: WalkForwardRun;
  let band: Awaited<ReturnType<typeof publishedBand>>;
  let written = false;
  let figuresDrawn = false;
  try {
    run = await walkForward(ds, {
      ...walk,
      testFrom: source.testFrom,
      final: false,
      figures: false,
      ...progress,
      signal: stop.signal,
    });
    progress.stop();
    await run.cleanup(); // evaluate uses what the run returned, not its files
    band = await publishedBand(opts, ds, run.folds, run.oos, run.evaluation, stop.signal);
    if (opts.predictions) {
      await writePredictions(opts.predictions, ds, band.oos, stop.signal);
      written = true;
    }
    stop.signal.throwIfAborted();
    if (opts.figures) {
      await drawFigures(opts.figures, ds, band.oos, band.evaluation, stop.signal);
      figuresDrawn = true;
    }
    stop.signal.throwIfAborted();
  } catch (err) {
    throw stop.failure(err, written ? opts.predictions : undefined, figuresDrawn ? opts.figures : undefined);
  } finally {
    stop.off();
    progress.stop();
  }
  const ev = band.evaluation;
  const seconds = (performance.now() - started) / 1000;
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...ev, ...band.info, seconds }, null, 2)}\n`);
  else process.stdout.write(summaryText(ev, seconds) + band.text);
}

export interface BandFlags {
  shrinkage?: boolean;
  adaptiveConformal?: boolean;
  aciGamma?: string;
  aciWindow?: string;
}

/** `--aci-gamma` and `--aci-window`, checked (the commands call this before loading any data). */
export function parseBandFlags(opts: BandFlags): { gamma: number; window: number } {
  const gamma = opts.aciGamma === undefined ? DEFAULT_ACI.gamma : Number(opts.aciGamma);
  const window = opts.aciWindow === undefined ? DEFAULT_ACI.window : Number(opts.aciWindow);
  if (!(gamma > 0 && gamma < 1))
    throw new UsageError(`--aci-gamma must be in (0, 1), got "${opts.aciGamma}"`);
  if (!(Number.isInteger(window) && window > 0))
    throw new UsageError(`--aci-window must be a positive whole number, got "${opts.aciWindow}"`);
  return { gamma, window };
}

/**
 * The band to score: the model's own p10–p90, or (`--adaptive-conformal`) as the live predictor publishes it after
 * online adaptive conformal inference. The raw band's pooled scores are kept beside the adjusted one's. Its
 * evaluation (with either flag) is computed in slices between which `signal` is heard.
 */
export async function publishedBand(
  opts: BandFlags,
  ds: Dataset,
  folds: Fold[],
  oos: OutOfSample,
  ev: Evaluation,
  signal?: AbortSignal,
): Promise<{ oos: OutOfSample; evaluation: Evaluation; info: Record<string, unknown>; text: string }> {
  let info: Record<string, unknown> = { band: 'model', point: 'model' };
  let text = '';
  if (opts.shrinkage) {
    const s = shrinkPoint(ds, oos);
    oos = s.oos;
    info = {
      ...info,
      point: 'shrinkage',
      shrinkage: { ...DEFAULT_SHRINKAGE, mean_lambda: s.meanLambda },
      model_point: {
        skill: ev.skill,
        dm_pvalue: ev.dm_pvalue,
        per_pair: Object.fromEntries(
          Object.entries(ev.per_pair).map(([p, c]) => [p, { skill: c.skill, dm_pvalue: c.dm_pvalue }]),
        ),
      },
    };
    text += `  point: shrunk toward persistence by recent errors (mean λ ${s.meanLambda.toFixed(2)}); the model as it is: skill ${pct(ev.skill)} (DM p ${ev.dm_pvalue === null ? '—' : ev.dm_pvalue.toPrecision(2)})\n`;
  }
  if (!opts.adaptiveConformal) {
    const evaluation = opts.shrinkage ? await evaluateInTurns(ds, folds, oos, signal) : ev;
    return { oos, evaluation, info, text };
  }
  const { gamma, window } = parseBandFlags(opts);
  const adapted = adaptBand(ds, oos, { gamma, window });
  const evaluation = await evaluateInTurns(ds, folds, adapted, signal);
  const raw = ev.intervals;
  return {
    oos: adapted,
    evaluation,
    info: {
      ...info,
      band: 'adaptive conformal',
      adaptive_conformal: { alpha: DEFAULT_ACI.alpha, gamma, window },
      raw_band: {
        intervals: raw,
        per_pair: Object.fromEntries(Object.entries(ev.per_pair).map(([p, c]) => [p, c.intervals])),
        per_pair_vol_decile: ev.per_pair_vol_decile,
      },
    },
    text: `${text}  band: adaptive conformal (γ ${gamma}, window ${window}); the model's own band: coverage ${pct(raw.coverage, 1)}, width ${num(raw.mean_width_bps)} bps, interval score ${num(raw.interval_score)}\n`,
  };
}

/**
 * Every out-of-sample prediction, one row each, so anyone can recompute the metrics from the raw candles
 * (`actual_close`, the close at targetTs, is there for convenience; `fold` is the day index in a backtest).
 */
export async function writePredictions(
  path: string,
  ds: Dataset,
  oos: OutOfSample,
  signal?: AbortSignal,
): Promise<void> {
  const out = new AtomicFile(path);
  try {
    await out.write(`${PREDICTIONS_CSV_COLUMNS.join(',')}\n`);
    for (let k = 0; k < oos.row.length; k++) {
      // Stopped (SIGINT/SIGTERM) while writing: the temporary file is removed, the target left as it was.
      if (k % 10_000 === 0) signal?.throwIfAborted();
      const i = oos.row[k]!;
      const c = ds.close[i]!;
      await out.write(
        `${ds.pairs[ds.pair[i]!]},${ds.windowEnd[i]},${ds.windowEnd[i]! + ds.horizonMs},${c},${priceFromReturn(c, oos.model[k]!)},${priceFromReturn(c, oos.p10[k]!)},${priceFromReturn(c, oos.p90[k]!)},${oos.fold[k]},${ds.targetClose[i]}\n`,
      );
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  process.stderr.write(`${n(oos.row.length)} out-of-sample predictions written to ${path}\n`);
}

/** The evaluation's figures (PNG, drawn by the trainer's Python) into `dir`; stopped by `signal`, none. */
export async function drawFigures(
  dir: string,
  ds: Dataset,
  oos: OutOfSample,
  ev: Evaluation,
  signal?: AbortSignal,
): Promise<void> {
  const files = await drawEvaluationFigures(dir, ds, oos, ev, signal);
  process.stderr.write(`figures: ${files.map((f) => join(dir, f)).join(', ')}\n`);
}

const pct = (x: number | null, d = 3) => (x === null ? '—' : `${(x * 100).toFixed(d)}%`);
const num = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d);

export function summaryText(ev: Evaluation, seconds: number, title = 'walk-forward'): string {
  const lines = [
    `${title}: ${ev.folds} ${title === 'backtest' ? 'days' : 'folds'}, ${n(ev.n)} test rows, horizon ${ev.horizon_minutes} min (${seconds.toFixed(1)} s)`,
  ];
  for (const [pair, s] of [...Object.entries(ev.per_pair), ['all pairs', ev] as const]) {
    lines.push(
      `  ${pair.padEnd(10)} MAE ${s.mae_model.toFixed(4)} vs persistence ${s.mae_persistence.toFixed(4)} · drift ${s.mae_drift.toFixed(4)} · linear ${s.mae_linear.toFixed(4)}` +
        ` · skill ${pct(s.skill)} (DM p ${s.dm_pvalue === null ? '—' : s.dm_pvalue.toPrecision(2)}) · direction ${pct(s.direction_accuracy, 2)} · p10–p90 coverage ${pct(s.coverage_p10_p90, 1)}`,
      `  ${''.padEnd(10)} interval (bps): width ${num(s.intervals.mean_width_bps)} · interval score ${num(s.intervals.interval_score)} vs ${num(s.intervals_baseline.interval_score)} (persistence ± volatility; skill ${pct(s.interval_skill, 2)}) · CRPS ${num(s.intervals.crps, 3)} vs ${num(s.intervals_baseline.crps, 3)} · pinball p10 ${num(s.intervals.pinball_p10, 3)} p90 ${num(s.intervals.pinball_p90, 3)}`,
    );
  }
  const cov = ev.per_fold.map((f) => f.metrics.model?.coverage_p10_p90 ?? null);
  lines.push(
    `  coverage per ${title === 'backtest' ? 'day' : 'fold'}: ${cov.map((c) => pct(c, 1)).join(' ')}`,
  );
  for (const [pair, deciles] of Object.entries(ev.per_pair_vol_decile))
    lines.push(
      `  coverage per rv_60m decile of ${pair}: ${deciles.map((d) => pct(d.coverage, 1)).join(' ')}`,
    );
  return `${lines.join('\n')}\n`;
}

export async function trainCommand(
  opts: DataFlags &
    WalkFlags & {
      registry: string;
      name: string;
      gateAlpha: string;
      gateMinSkill: string;
      championMargin: string;
      gateIntervalMargin?: string;
      gateCoverageTolerance?: string;
      json?: boolean;
    },
): Promise<void> {
  const gate: GatePolicy = {
    alpha: Number(opts.gateAlpha ?? DEFAULT_GATE.alpha),
    minSkill: Number(opts.gateMinSkill ?? DEFAULT_GATE.minSkill),
    championMargin: Number(opts.championMargin ?? DEFAULT_GATE.championMargin),
    intervalMargin: Number(opts.gateIntervalMargin ?? DEFAULT_GATE.intervalMargin),
    coverageTolerance: Number(opts.gateCoverageTolerance ?? DEFAULT_GATE.coverageTolerance),
  };
  if (!(gate.alpha > 0 && gate.alpha <= 1))
    throw new UsageError(`--gate-alpha must be in (0, 1], got ${opts.gateAlpha}`);
  if (!Number.isFinite(gate.minSkill) || !Number.isFinite(gate.championMargin))
    throw new UsageError('--gate-min-skill and --champion-margin must be numbers');
  if (!Number.isFinite(gate.intervalMargin) || !(gate.coverageTolerance! >= 0))
    throw new UsageError(
      '--gate-interval-margin must be a number and --gate-coverage-tolerance a number ≥ 0',
    );
  const walk = walkOptions(opts);
  // The registry first: one that cannot be opened is said before the data is loaded (seconds to minutes), not after.
  const registry = await openRegistry(opts.registry);
  let loaded: Awaited<ReturnType<typeof loadDataset>>;
  try {
    await requireAnswer(
      registry,
      opts.name,
      '--registry (or CRYPTOCAST_REGISTRY) names a folder or mlflow+http://host:port of a running MLflow',
    );
    loaded = await loadDataset(opts);
  } catch (err) {
    await registry.close();
    throw err;
  }
  const { ds, featureSets } = loaded;
  const progress = progressDisplay();
  const stop = stopOnSignal('train');
  // The run's own requests ride out a restart of MLflow (asked above at once: a wrong URL is said before the data).
  const training = await openRegistry(opts.registry, { ...TRAINING_REGISTRY, signal: stop.signal });
  try {
    const out = await trainAndRegister(ds, training, {
      ...walk,
      name: opts.name,
      featureSets,
      gate,
      ...progress,
      signal: stop.signal,
    }).catch((err: unknown) => {
      throw stop.failure(err);
    });
    stop.off();
    progress.stop();
    const { card, decision } = out;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ name: card.name, version: card.version, promoted: decision.promoted, reasons: decision.reasons, summary: card.summary }, null, 2)}\n`,
      );
      return;
    }
    process.stdout.write(summaryText(out.run.evaluation, 0).replace(/ \([\d.]+ s\)/, ''));
    process.stdout.write(`\nregistered ${card.name} v${card.version} in ${registry.location}\n`);
    for (const r of decision.reasons) process.stdout.write(`  ${r}\n`);
    process.stdout.write(
      decision.promoted
        ? `promoted: v${card.version} is the champion${out.previousChampion ? ` (was v${out.previousChampion})` : ''}\n`
        : `not promoted: v${card.version} is the challenger; the champion stays ${out.previousChampion ? `v${out.previousChampion}` : 'unset'}\n`,
    );
    process.stdout.write(
      registry.kind === 'local'
        ? `report: ${registry.location}/${card.name}/versions/${card.version}/report.md\n`
        : `report: artifact report.md of ${card.name} v${card.version} (${registry.location})\n`,
    );
  } finally {
    stop.off();
    progress.stop();
    await training.close();
    await registry.close();
  }
}
