import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import cliProgress from 'cli-progress';
import { catalogued, ERR, fail, UsageError } from '../../core/errors.ts';
import { redactSecrets } from '../../core/secrets.ts';
import { coinsIn } from '../../news/normalise.ts';
import { type BackendFlags, createBackend } from '../../sentiment/backends.ts';
import { evenSample, loadDataset, splitOf, trainHalves } from '../../sentiment/datasets.ts';
import { evaluate, metrics } from '../../sentiment/evaluate.ts';
import { LABELS, SentimentError } from '../../sentiment/labels.ts';
import { headPathFor, LocalLlmBackend, modelName, modelPath } from '../../sentiment/local-llm.ts';
import { SentimentScorer } from '../../sentiment/scorer.ts';
import { fitSoftmax, predictProba } from '../../sentiment/softmax.ts';
import { sharedDataDir } from '../sources.ts';

/** A scorer without cache: every call of score and eval is a real model call. */
function scorerOf(flags: BackendFlags): SentimentScorer {
  try {
    const primary = createBackend(flags);
    return new SentimentScorer({ primary, cacheSize: 0 });
  } catch (err) {
    throw catalogued(err, ERR.CONFIG);
  }
}

/** `cryptocast sentiment score "TEXT"`: the signal per coin the text mentions, as JSON. */
export async function score(text: string, opts: BackendFlags): Promise<void> {
  const scorer = scorerOf(opts);
  try {
    const s = await scorer.score(text);
    const coins = coinsIn(text);
    const signals = (coins.length ? coins : ['(none)']).map((coin) => ({
      coin,
      score: Number(s.score.toFixed(4)),
      label: s.label,
      confidence: Number(s.confidence.toFixed(4)),
      reason: s.reason,
      model: s.model,
      promptVersion: s.promptVersion,
      baseline: s.baseline,
      ...(s.fallback ? { fallback: s.fallback } : {}),
    }));
    process.stdout.write(`${redactSecrets(JSON.stringify(signals, null, 2))}\n`);
  } catch (err) {
    if (err instanceof SentimentError && err.kind === 'bad-input') throw new UsageError(err.message);
    throw err;
  } finally {
    await scorer.close();
  }
}

/** `cryptocast sentiment eval --dataset FILE`: accuracy, macro-F1, confusion matrix, latency. */
export async function evalCommand(
  opts: BackendFlags & { dataset: string; limit?: string; json?: boolean; split?: string },
): Promise<void> {
  if (!existsSync(opts.dataset)) throw fail(ERR.INPUT, `dataset not found: ${opts.dataset}`);
  let ds: ReturnType<typeof loadDataset>;
  try {
    ds = loadDataset(opts.dataset);
  } catch (err) {
    throw catalogued(err, ERR.INPUT);
  }
  const split = opts.split ?? 'test';
  if (split !== 'test' && split !== 'all') throw new UsageError('--split must be test or all');
  // The held-out half by default: the local classifier's head was trained on the other half.
  const pool = split === 'all' ? ds.examples : ds.examples.filter((e) => splitOf(e.text) === 'test');
  for (const line of ds.skipped ?? []) process.stderr.write(`skipped ${line}\n`);
  if (pool.length === 0)
    throw fail(
      ERR.INPUT,
      ds.examples.length === 0
        ? `no examples in ${opts.dataset}${ds.skipped?.length ? ` (${ds.skipped.length} lines skipped: see above)` : ''}`
        : `no examples of the test half in ${opts.dataset} (${ds.examples.length} in all): use --split all`,
    );
  const limit = opts.limit === undefined ? pool.length : Number(opts.limit);
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  const scorer = scorerOf(opts);
  const progress = !opts.json && process.stderr.isTTY;
  let report: Awaited<ReturnType<typeof evaluate>>;
  try {
    report = await evaluate(
      split === 'all' ? ds.name : `${ds.name} (test half)`,
      evenSample(pool, limit),
      scorer,
      {
        onProgress: (done, total) => {
          if (progress) process.stderr.write(`\r${done}/${total}`);
        },
      },
    );
  } finally {
    if (progress) process.stderr.write('\r');
    await scorer.close();
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  process.stdout.write(
    `${report.dataset} · ${report.backend} · n=${report.n}${report.fallbacks ? ` (${report.fallbacks} answered by the baseline fallback)` : ''}\n` +
      `accuracy ${pct(report.accuracy)} · macro-F1 ${pct(report.macroF1)} · latency median ${report.latencyMs.median.toFixed(3)} ms, p95 ${report.latencyMs.p95.toFixed(3)} ms\n` +
      `confusion (rows gold, columns predicted: negative, neutral, positive)\n` +
      Object.entries(report.confusion)
        .map(
          ([g, row]) =>
            `  ${g.padEnd(8)} ${Object.values(row)
              .map((v) => String(v).padStart(6))
              .join('')}`,
        )
        .join('\n') +
      '\n',
  );
}

/** The sets the default head is trained on (their `train` halves): crypto headlines and financial news sentences. */
export const DEFAULT_TRAINING_SETS = [
  'crypto-news-sentiment/labelled/CryptoLin_IE.csv',
  'crypto-news-sentiment/labelled/FinancialPhraseBank-v1.0/Sentences_75Agree.txt',
];

/**
 * `cryptocast sentiment train-head`: embeds the `train` half of labelled sets with the local model and fits the
 * softmax head of its classifier mode (balanced classes). Writes the head as JSON beside the weights.
 */
export async function trainHeadCommand(opts: {
  dataset?: string[];
  modelPath?: string;
  output?: string;
  threads?: string;
  limit?: string;
}): Promise<void> {
  const threads = opts.threads === undefined ? undefined : Number(opts.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1))
    throw new UsageError(`--threads must be a positive whole number, got "${opts.threads}"`);
  const limit = opts.limit === undefined ? undefined : Number(opts.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1))
    throw new UsageError(`--limit must be a positive whole number, got "${opts.limit}"`);
  const files = opts.dataset?.length
    ? opts.dataset
    : DEFAULT_TRAINING_SETS.map((f) => join(sharedDataDir(), f));
  const sets = files.map((f) => {
    if (!existsSync(f)) throw fail(ERR.INPUT, `dataset not found: ${f}`);
    try {
      return loadDataset(f);
    } catch (err) {
      throw catalogued(err, ERR.INPUT);
    }
  });
  const { examples, trainedOn: names } = trainHalves(sets, limit);
  // Refused before the model is loaded (it was a plain Error, with its stack, after loading it).
  if (examples.length === 0)
    throw fail(
      ERR.INPUT,
      `no labelled examples in ${files.join(', ')} (their train halves are empty): nothing to train the head on`,
      {
        hint: 'give labelled sets with --dataset: CryptoLin_IE.csv, FinancialPhraseBank Sentences_*.txt, sent_{train,valid}.csv',
      },
    );
  const path = opts.modelPath ?? modelPath();
  const backend = new LocalLlmBackend({ modelPath: path, headPath: null, threads });
  const bar = new cliProgress.SingleBar(
    {
      format: 'embedding {bar} {value}/{total} texts · {eta_formatted} left',
      hideCursor: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 30_000,
    },
    cliProgress.Presets.shades_classic,
  );
  const xs: number[][] = [];
  try {
    await backend.warmUp();
    bar.start(examples.length, 0);
    for (const e of examples) {
      xs.push(await backend.embed(e.text));
      bar.increment();
    }
  } finally {
    bar.stop();
    await backend.close();
  }
  const ys = examples.map((e) => LABELS.indexOf(e.label));
  const fitted = fitSoftmax(xs, ys, 3, { l2: 1e-3, iterations: 300 });
  const inSample = metrics(
    examples.map((e) => e.label),
    xs.map((x) => {
      const p = predictProba(fitted, x);
      return LABELS[p.indexOf(Math.max(...p))]!;
    }),
  );
  const head = {
    model: modelName(path),
    dimensions: xs[0]!.length,
    trainedOn: names,
    examples: examples.length,
    createdAt: new Date().toISOString(),
    ...fitted,
  };
  const out = opts.output ?? headPathFor(path);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.partial`, `${JSON.stringify(head)}\n`);
  renameSync(`${out}.partial`, out);
  process.stderr.write(
    `head written to ${out}: ${examples.length} examples (${names.join('; ')}); in-sample accuracy ${(100 * inSample.accuracy).toFixed(1)}%, macro-F1 ${(100 * inSample.macroF1).toFixed(1)}% (held-out figures: sentiment eval)\n`,
  );
}
