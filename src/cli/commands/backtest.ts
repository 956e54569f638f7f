import { n } from '../../app/progress.ts';
import { parseDuration } from '../../config/config.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { checkOutputFile } from '../../core/files.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { requirePair } from '../../ingestion/symbols.ts';
import {
  type Backtest,
  backtest,
  checkApplicable,
  type ModelDocs,
  parseAsPair,
} from '../../training/backtest.ts';
import { openRegistry } from '../../training/registry/open.ts';
import { readArtifacts } from '../../training/registry/registry.ts';
import { datasetFromCandles, requireCandles, sourceProblemLines } from '../../training/sources.ts';
import { resolveVersion } from './models.ts';
import {
  type BandFlags,
  drawFigures,
  parseBandFlags,
  progressDisplay,
  publishedBand,
  summaryText,
  writePredictions,
} from './train.ts';

/**
 * `cryptocast backtest --model champion|VERSION --candles FILE|FOLDER`: a registered model as it is (no refit), on
 * candles it has never seen, scored like `evaluate` (src/training/backtest.ts).
 */
export interface BacktestFlags extends BandFlags {
  model: string;
  candles?: string;
  pair?: string;
  asPair?: string;
  horizon?: string;
  registry: string;
  name: string;
  json?: boolean;
  predictions?: string;
  figures?: string;
}

const ARTIFACTS = ['model.json', 'p10.json', 'p90.json'] as const;

export async function backtestCommand(opts: BacktestFlags): Promise<void> {
  const started = performance.now();
  if (opts.candles === undefined) throw new UsageError('backtest needs --candles FILE|FOLDER');
  if (opts.predictions) checkOutputFile(opts.predictions, '--predictions');
  // The flags are checked before the model and the candles are loaded, not after.
  parseBandFlags(opts);
  if (opts.pair !== undefined) requirePair(opts.pair, '--pair');
  for (const p of opts.asPair?.split(/[,=]/) ?? []) if (p.trim()) requirePair(p, '--as-pair');
  if (opts.horizon !== undefined) parseDuration(opts.horizon, '--horizon');
  const registry = await openRegistry(opts.registry);
  // SIGINT/SIGTERM: the reading, the scoring and its evaluation stop at their next chunk, the figures' drawing at once,
  // no --predictions file is written (its temporary file is removed), and the command ends with CC_ERR_INTERRUPTED
  // (exit 130). The scoring ran in one synchronous stretch: Node died by the signal, with no word, after up to minutes.
  const stop = new AbortController();
  const stopListening = onStopSignal(() => stop.abort());
  // On a terminal a bar per stage; otherwise a line per stage and one every 5 s (logs, pipes).
  const progress = progressDisplay(5_000);
  let result: Backtest;
  let card: Awaited<ReturnType<typeof registry.get>>;
  let asPair: Map<string, string>;
  let bandInfo: Record<string, unknown> = {};
  let bandText = '';
  let written = false;
  let figuresDrawn = false;
  try {
    const version = await resolveVersion(registry, opts.name, opts.model);
    card = await registry.get(opts.name, version);
    if (card === undefined) throw fail(ERR.MODEL_VERSION, `${opts.name} has no version ${version}`);
    if (opts.horizon !== undefined) {
      if (parseDuration(opts.horizon, '--horizon') !== card.horizonMs)
        // The model does not fit the question, as with a foreign pair (CC_ERR_MODEL_MISMATCH, docs/training.md).
        throw fail(
          ERR.MODEL_MISMATCH,
          `${card.name} v${card.version} predicts ${card.horizonMs / 60_000} minutes ahead, not ${opts.horizon}: a backtest cannot change the horizon`,
          { hint: `leave --horizon out (the model's own), or backtest a model trained at ${opts.horizon}` },
        );
    }
    const missing = ARTIFACTS.filter((f) => !card!.artifacts.includes(f));
    if (missing.length > 0)
      throw new UsageError(`${card.name} v${card.version} has no ${missing.join(', ')}`);
    const docs: ModelDocs = await readArtifacts(registry, card.name, card.version, ARTIFACTS);

    const source = await datasetFromCandles(opts.candles, {
      horizonMs: card.horizonMs,
      pair: opts.pair,
      columns: card.columns,
      signal: stop.signal,
      onFile: (done, total) =>
        progress.onProgress({ stage: 'candles', done, total, detail: 'files read, features computed' }),
    });
    progress.stop();
    for (const line of sourceProblemLines(source)) process.stderr.write(`${line}\n`);
    requireCandles(source, opts.candles, opts.pair);
    const ds = source.dataset;
    asPair = parseAsPair(opts.asPair, [...source.candlesPerPair.keys()]);
    checkApplicable(ds, card, asPair, source.candlesPerPair);
    process.stderr.write(
      `backtest of ${card.name} v${card.version} (trained ${iso(card.trainingWindow.from)} → ${iso(card.trainingWindow.to)} on ${card.pairs.join(', ')}): ` +
        `${n(ds.n)} rows of ${ds.pairs.map((p) => (asPair.has(p) ? `${p} as ${asPair.get(p)}` : p)).join(', ')}, ${iso(ds.windowEnd[0]!)} → ${iso(ds.windowEnd[ds.n - 1]!)}\n`,
    );
    const bt = await backtest(ds, card, docs, { signal: stop.signal, onProgress: progress.onProgress });
    progress.stop();
    const band = await publishedBand(opts, ds, bt.days, bt.oos, bt.evaluation, stop.signal);
    result = { ...bt, oos: band.oos, evaluation: band.evaluation };
    bandInfo = band.info;
    bandText = band.text;
    if (result.inTrainingWindow > 0)
      process.stderr.write(
        `warning: ${n(result.inTrainingWindow)} of ${n(ds.n)} rows lie inside the model's training window: they are not out of sample\n`,
      );
    for (const [column, rows] of Object.entries(result.imputed))
      process.stderr.write(
        `note: ${column} is missing in ${n(rows)} of ${n(ds.n)} rows and ${card.name} v${card.version} never saw it missing in training: filled with its training mean, as the predictor does\n`,
      );
    if (opts.predictions) {
      await writePredictions(opts.predictions, ds, result.oos, stop.signal);
      written = true;
    }
    stop.signal.throwIfAborted();
    if (opts.figures) {
      await drawFigures(opts.figures, ds, result.oos, result.evaluation, stop.signal);
      figuresDrawn = true;
    }
    stop.signal.throwIfAborted();
  } catch (err) {
    if (stop.signal.aborted)
      throw fail(
        ERR.INTERRUPTED,
        // A stop after the predictions file was committed leaves it (what was reported as done is kept); so does one
        // after the drawing's last check of the stop, whose figures are all renamed into place.
        `interrupted: the backtest was stopped${
          !opts.predictions
            ? ''
            : written
              ? `; its predictions were written to ${opts.predictions} before`
              : `; no predictions written to ${opts.predictions}`
        }${!opts.figures ? '' : figuresDrawn ? `; its figures were drawn into ${opts.figures} before` : '; no figures drawn'}`,
      );
    throw err;
  } finally {
    progress.stop();
    stopListening();
    await registry.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const ev = result.evaluation;
  if (opts.json)
    process.stdout.write(
      `${JSON.stringify(
        {
          model: {
            name: card.name,
            version: card.version,
            trainingWindow: card.trainingWindow,
            pairs: card.pairs,
            horizonMs: card.horizonMs,
          },
          candles: opts.candles,
          as_pair: Object.fromEntries(asPair),
          in_training_window: result.inTrainingWindow,
          imputed: result.imputed,
          ...ev,
          ...bandInfo,
          seconds,
        },
        null,
        2,
      )}\n`,
    );
  else {
    process.stdout.write(summaryText(ev, seconds, 'backtest') + bandText);
    process.stdout.write('  day         rows   skill     DM p    coverage  width bps  IS / IS(baseline)\n');
    for (const d of ev.per_day)
      process.stdout.write(
        `  ${d.day}  ${String(d.n).padStart(5)}  ${pc(d.skill, 3).padStart(8)}  ${(d.dm_pvalue === null ? '—' : d.dm_pvalue.toPrecision(2)).padStart(7)}  ${pc(d.coverage, 1).padStart(7)}  ${d.mean_width_bps.toFixed(1).padStart(9)}  ${(d.interval_score / d.interval_score_baseline).toFixed(3)}\n`,
      );
  }
}

const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
const pc = (x: number | null, d: number) => (x === null ? '—' : `${(x * 100).toFixed(d)}%`);
