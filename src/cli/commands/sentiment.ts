import { existsSync } from 'node:fs';
import { UsageError } from '../../core/errors.ts';
import { coinsIn } from '../../news/normalise.ts';
import { loadDataset } from '../../sentiment/datasets.ts';
import { evaluate } from '../../sentiment/evaluate.ts';
import type { SentimentBackend } from '../../sentiment/labels.ts';
import { LexiconBackend } from '../../sentiment/lexicon.ts';

function backendOf(name: string): SentimentBackend {
  if (name === 'lexicon') return new LexiconBackend();
  throw new UsageError(
    `backend "${name}" is not available yet: lexicon (local and openai come with the LLM work)`,
  );
}

/** `cryptocast sentiment score "TEXT"`: the signal per coin the text mentions. */
export async function score(text: string, opts: { backend: string }): Promise<void> {
  if (text.trim() === '') throw new UsageError('give a text to score');
  const backend = backendOf(opts.backend);
  const s = await backend.score(text);
  const coins = coinsIn(text);
  process.stdout.write(
    `${JSON.stringify({ backend: backend.name, coins: coins.length ? coins : ['(none)'], ...s })}\n`,
  );
}

/** `cryptocast sentiment eval --dataset FILE`: accuracy, macro-F1, confusion matrix, latency. */
export async function evalCommand(opts: {
  dataset: string;
  backend: string;
  limit?: string;
  json?: boolean;
}): Promise<void> {
  if (!existsSync(opts.dataset)) throw new UsageError(`dataset not found: ${opts.dataset}`);
  const backend = backendOf(opts.backend);
  let ds: ReturnType<typeof loadDataset>;
  try {
    ds = loadDataset(opts.dataset);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const limit = opts.limit === undefined ? ds.examples.length : Number(opts.limit);
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  for (const line of ds.skipped ?? []) process.stderr.write(`skipped ${line}\n`);
  const report = await evaluate(ds.name, ds.examples.slice(0, limit), backend);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  process.stdout.write(
    `${report.dataset} · ${report.backend} · n=${report.n}\naccuracy ${pct(report.accuracy)} · macro-F1 ${pct(report.macroF1)} · latency median ${report.latencyMs.median.toFixed(3)} ms, p95 ${report.latencyMs.p95.toFixed(3)} ms\n` +
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
