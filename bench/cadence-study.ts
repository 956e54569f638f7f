/**
 * Retraining cadence, simulated (issue 16): the trainer service refits every 6 h on the latest 14 days. Over a test
 * span (default: the last walk-forward fold, 2022-12-20 → 2023-02-28), python/cryptocast_trainer/cadence.py replays
 * schedules (every E hours on the latest D days, or on all history) and this scores each on the same rows against
 * persistence, with the 5-fold walk-forward's model of that span (trained once, up to its start) beside them.
 * Usage: ./bench/run cadence-study [--from ISO --to ISO] [--refit | --score-only]   (dataset and fits cached in
 * .data/study/; --score-only scores the schedules already fitted)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Evaluation, evaluate } from '../src/training/evaluation.ts';
import { walkForwardFolds } from '../src/training/folds.ts';
import { TRAINER_VENV } from '../src/training/python-trainer.ts';
import { asOos, cachedDataset, studyFits } from './interval-study.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const CACHE = join(ROOT, '.data', 'study');

const arg = (k: string) => {
  const i = process.argv.indexOf(k);
  return i < 0 ? undefined : process.argv[i + 1];
};

const SCHEDULES = [
  { name: 'days14-every6h', everyHours: 6, days: 14 },
  { name: 'days14-every24h', everyHours: 24, days: 14 },
  { name: 'days60-every168h', everyHours: 168, days: 60 },
  { name: 'all-every168h', everyHours: 168, days: null },
];

const ds = await cachedDataset('binance', DATA);
const folds = walkForwardFolds(ds.windowEnd[0]!, ds.windowEnd[ds.n - 1]!, { folds: 5, horizonMs: 300_000 });
const from = arg('--from') ? Date.parse(arg('--from')!) : folds[4]!.testFrom;
const to = arg('--to') ? Date.parse(arg('--to')!) : folds[4]!.testTo;
const out = join(CACHE, `cadence-${from}-${to}`);
mkdirSync(out, { recursive: true });
const specFile = join(out, 'spec.json');
const schedules: typeof SCHEDULES = existsSync(specFile)
  ? JSON.parse(readFileSync(specFile, 'utf8')).schedules
  : SCHEDULES;
const missing = schedules.filter(
  (s) => process.argv.includes('--refit') || !existsSync(join(out, `${s.name}.f64`)),
);
if (missing.length > 0 && !process.argv.includes('--score-only')) {
  writeFileSync(specFile, JSON.stringify({ horizonMs: 300_000, from, to, seed: 42, schedules }));
  execFileSync(
    'nice',
    [
      '-n',
      '5',
      join(TRAINER_VENV, 'bin', 'python'),
      '-m',
      'cryptocast_trainer.cadence',
      '--dataset',
      join(CACHE, 'binance'),
      '--spec',
      join(out, 'spec.json'),
      '--out',
      out,
    ],
    { cwd: join(ROOT, 'python'), stdio: ['ignore', 'inherit', 'inherit'] },
  );
}

// The walk-forward's test blocks inside the span, so that skill is also shown per block.
const span = folds
  .filter((f) => f.testFrom >= from && f.testTo <= to + 60_000)
  .map((f, k) => ({ ...f, fold: k }));
if (span.length === 0)
  span.push({ fold: 0, trainFrom: ds.windowEnd[0]!, trainTo: from, testFrom: from, testTo: to });
const blockOf = (rows: Float64Array) =>
  Float64Array.from(rows, (i) =>
    span.findIndex((f) => ds.windowEnd[i]! >= f.testFrom && ds.windowEnd[i]! < f.testTo),
  );
const row = (name: string, ev: Evaluation) =>
  `| ${name} | ${Object.entries(ev.per_pair)
    .map(([, c]) => `${(c.skill * 100).toFixed(3)} % (${c.dm_pvalue?.toPrecision(2)})`)
    .join(' | ')} | ${ev.per_fold
    .map((f) =>
      ds.pairs.map((p) => ((f.metrics[`model ${p}`]?.skill as number) * 100).toFixed(2)).join(' / '),
    )
    .join(' · ')} |`;
const lines = [
  `| schedule | ${ds.pairs.map((p) => `${p} skill (DM p)`).join(' | ')} | per walk-forward block, ${ds.pairs.join(' / ')} (%) |`,
  `|---|${ds.pairs.map(() => '---').join('|')}|---|`,
];
// The walk-forward's model over this span (only when the span is one of its test folds).
const s = studyFits('binance', folds, false);
const inSpan = Array.from(s.row.keys()).filter(
  (k) => ds.windowEnd[s.row[k]!]! >= from && ds.windowEnd[s.row[k]!]! < to,
);
const sub = (a: Float64Array) => Float64Array.from(inSpan, (k) => a[k]!);
const wf = asOos(
  { ...s, row: sub(s.row), fold: blockOf(sub(s.row)) },
  sub(s.model),
  sub(s.lo_raw),
  sub(s.hi_raw),
);
if (inSpan.length > 0) lines.push(row('all history, once (the 5-fold walk-forward)', evaluate(ds, span, wf)));
for (const sch of schedules) {
  if (!existsSync(join(out, `${sch.name}.f64`))) continue;
  const b = readFileSync(join(out, `${sch.name}.f64`));
  const a = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const m = a.length / 2;
  const rows = Float64Array.from({ length: m }, (_, i) => a[i * 2]!);
  const pred = Float64Array.from({ length: m }, (_, i) => a[i * 2 + 1]!);
  const zero = new Float64Array(m);
  const ev = evaluate(ds, span, asOos({ ...s, row: rows, fold: blockOf(rows) }, pred, zero, zero));
  const label = `${sch.days === null ? 'all history' : `latest ${sch.days} days`}, every ${sch.everyHours} h`;
  lines.push(row(label, ev));
}
process.stdout.write(
  `${new Date(from).toISOString()} → ${new Date(to).toISOString()}\n${lines.join('\n')}\n`,
);
