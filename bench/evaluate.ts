/**
 * Benchmark (issue 5): `cryptocast evaluate --candles FILE --json` — the whole walk-forward (features, dataset,
 * 5 folds × model + p10 + p90 + linear, metrics) — on one month of 1-minute candles of one pair (target < 60 s),
 * for three different months, as a user runs it (the CLI, a fresh process each time).
 * Usage: ./bench/run evaluate
 */
import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const MONTHS: [string, string][] = [
  ['BTCUSDT', '2022-03'],
  ['ETHUSDT', '2022-06'],
  ['BTCUSDT', '2022-11'],
];

const rows: string[] = [];
for (const [symbol, month] of MONTHS) {
  const dir = scratchDir('bench-eval-');
  const [y, m] = month.split('-').map(Number) as [number, number];
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  for (let d = 1; d <= days; d++) {
    const f = `${symbol}-1m-${month}-${String(d).padStart(2, '0')}.zip`;
    symlinkSync(join(DATA, symbol, f), join(dir, f));
  }
  const t0 = performance.now();
  const out = execFileSync(join(ROOT, 'bin', 'cryptocast'), ['evaluate', '--candles', dir, '--json'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 << 20,
  });
  const seconds = (performance.now() - t0) / 1000;
  const ev = JSON.parse(out.toString());
  const line = `| ${symbol} ${month} | ${fmt(days * 1440)} | ${fmt(ev.n)} | ${seconds.toFixed(1)} s | ${(ev.skill * 100).toFixed(3)}% | ${ev.dm_pvalue.toPrecision(2)} | ${(ev.direction_accuracy * 100).toFixed(2)}% | ${(ev.coverage_p10_p90 * 100).toFixed(1)}% |`;
  process.stdout.write(`${line}\n`);
  rows.push(line);
}

recordBenchmark(
  'evaluate',
  'Walk-forward evaluation of one month of 1-minute candles (`cryptocast evaluate --json`)',
  `The whole command as a user runs it, a fresh process each time: read the Binance daily zips, compute the features,
build the dataset, fit 5 expanding folds (XGBoost mean model with early stopping, p10 and p90 quantile models,
ridge baseline) in the Python trainer, score against persistence/drift/linear. Default parameters (no tuning).
Target: under 60 s per month.

| month | candles | test rows | wall time | skill | DM p | direction | p10–p90 coverage |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

One month is a small sample for a 0.1–0.2 % effect: the p-values here are not the quality verdict (see
docs/training.md for the 14-month walk-forward).`,
);
