/**
 * Ablation (issue 5): what do the news features add? On the span where news and prices overlap (Binance BTCUSDT and
 * ETHUSDT, 2022-01-01 → 2022-07-05), the same walk-forward twice — technical columns only, and technical + the 5
 * news_sentiment columns (local LLM sentiment of the recorded crypto news, point in time by availableAt) — then both
 * prediction files compared row by row: MAE per pair, and a Diebold–Mariano test of with-news vs without.
 * Usage: ./bench/run news-ablation [--sentiment local|lexicon]   (the local LLM's answers are cached)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Evaluation } from '../src/training/evaluation.ts';
import { defaultHacLag, dieboldMariano } from '../src/training/metrics.ts';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const SHARED = join(ROOT, '..', 'shared', 'data');
const KLINES = join(SHARED, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const NEWS = join(SHARED, 'crypto-news-sentiment', 'news', 'cryptonews_2021-10_2022-07.csv.gz');
const sentiment = process.argv.includes('--sentiment')
  ? process.argv[process.argv.indexOf('--sentiment') + 1]!
  : 'local';

const dir = scratchDir('bench-news-');
const outDir = scratchDir('bench-news-out-');
for (const s of ['BTCUSDT', 'ETHUSDT']) {
  mkdirSync(join(dir, s));
  for (const f of readdirSync(join(KLINES, s)))
    if (/-2022-0[1-7]-\d\d\.zip$/.test(f) && f.slice(-14, -4) <= '2022-07-05')
      symlinkSync(join(KLINES, s, f), join(dir, s, f));
}

function evaluate(withNews: boolean): {
  ev: Evaluation;
  preds: Map<string, [number, number]>;
  seconds: number;
} {
  // Not in the candles folder: evaluate would read it as candles.
  const file = join(outDir, `${withNews ? 'news' : 'technical'}.csv`);
  const args = ['evaluate', '--candles', dir, '--json', '--predictions', file];
  if (withNews) args.push('--news', NEWS, '--sentiment', sentiment);
  const t0 = performance.now();
  const out = execFileSync(join(ROOT, 'bin', 'cryptocast'), args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 << 20,
  });
  const seconds = (performance.now() - t0) / 1000;
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const h = lines[0]!.split(',');
  const preds = new Map<string, [number, number]>();
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    preds.set(`${f[h.indexOf('pair')]} ${f[h.indexOf('windowEnd')]}`, [
      Number(f[h.indexOf('predicted_close')]),
      Number(f[h.indexOf('close')]),
    ]);
  }
  return { ev: JSON.parse(out.toString()), preds, seconds };
}

const base = evaluate(false);
const news = evaluate(true);
const closeAt = new Map<string, number>();
for (const [k, [, c]] of base.preds) closeAt.set(k, c);

const rows: string[] = [];
for (const pair of Object.keys(base.ev.per_pair)) {
  // Actual close at the target = the close of the row 5 minutes later (both files list every test row).
  const d: number[] = [];
  let aeBase = 0;
  let aeNews = 0;
  for (const [k, [pb]] of base.preds) {
    if (!k.startsWith(`${pair} `)) continue;
    const t = Number(k.split(' ')[1]);
    const actual = closeAt.get(`${pair} ${t + 300_000}`);
    const pn = news.preds.get(k)?.[0];
    if (actual === undefined || pn === undefined) continue;
    aeBase += Math.abs(pb - actual);
    aeNews += Math.abs(pn - actual);
    d.push(Math.abs(pn - actual) - Math.abs(pb - actual));
  }
  const dm = dieboldMariano(d, defaultHacLag(d.length, 5));
  const b = base.ev.per_pair[pair]!;
  const nws = news.ev.per_pair[pair]!;
  const line = `| ${pair} | ${fmt(d.length)} | ${(b.skill * 100).toFixed(3)}% | ${(nws.skill * 100).toFixed(3)}% | ${(aeBase / d.length).toFixed(4)} | ${(aeNews / d.length).toFixed(4)} | ${((1 - aeNews / aeBase) * 100).toFixed(3)}% | ${dm ? dm.pvalue.toPrecision(2) : '—'} |`;
  process.stdout.write(`${line}\n`);
  rows.push(line);
}

recordBenchmark(
  'news-ablation',
  'News ablation: technical features alone vs technical + news sentiment (2022-01 → 2022-07-05)',
  `\`./bench/run news-ablation\` (sentiment backend: ${sentiment}). Binance BTCUSDT and ETHUSDT 1-minute candles from
2022-01-01 to 2022-07-05 (where the recorded news and the prices overlap), the same 5 expanding folds, default
parameters, twice: the 24 technical columns, then those plus the 5 \`news_sentiment\` columns (EWM 1h/6h/24h of the
per-coin sentiment score, counts 1h/24h, from signals available at each candle's close). Compared on the same test
rows: only the columns differ. Only test rows whose target close is itself a test row are compared (the last 5
minutes of each fold drop out). Wall time: technical ${base.seconds.toFixed(0)} s, with news ${news.seconds.toFixed(0)} s
(including scoring the news; cached answers are reused).

| pair | test rows | skill (technical) | skill (with news) | MAE technical | MAE with news | news vs technical | DM p (news vs technical) |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}`,
);
