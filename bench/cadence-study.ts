/**
 * Retraining cadence, simulated (issue 16): the trainer service refits every 6 h on the latest 14 days. Over a test
 * span (default: the last walk-forward fold, 2022-12-20 → 2023-02-28), python/cryptocast_trainer/cadence.py replays
 * schedules (every E hours on the latest D days, or on all history) and this scores each on the same rows against
 * persistence, with the 5-fold walk-forward's model of that span (trained once, up to its start) beside them.
 * Usage: ./bench/run cadence-study [--from ISO --to ISO] [--schedules a,b] [--combine a+b ...] [--against a+b]
 *   [--refit | --score-only]
 * (dataset and fits cached in .data/study/; --score-only scores the schedules already fitted; --from all = the
 * walk-forward's first test block to its last). `--combine a+b` also scores the equal-weight mean of those schedules'
 * predictions on the same rows: a forecast combination across estimation windows (Pesaran & Pick 2011).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Evaluation, evaluate } from '../src/training/evaluation.ts';
import { walkForwardFolds } from '../src/training/folds.ts';
import { absPriceErrors } from '../src/training/metrics.ts';
import type { OutOfSample } from '../src/training/python-trainer.ts';
import { TRAINER_VENV } from '../src/training/python-trainer.ts';
import { compare } from '../src/training/scoring.ts';
import { cachedDataset, studyFits } from './interval-study.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const CACHE = join(ROOT, '.data', 'study');

const arg = (k: string) => {
  const i = process.argv.indexOf(k);
  return i < 0 ? undefined : process.argv[i + 1];
};

/** A refit schedule: every `everyHours` on the latest `days` days (null = all history); `seed` replaces the run's;
 * `params` is merged over the trainer's DEFAULT_PARAMS (a member of a combination with other XGBoost settings);
 * `model: 'linear'` fits the trainer's ridge baseline (the `linear` column of `evaluate`) instead of XGBoost. */
type Schedule = {
  name: string;
  everyHours: number;
  days: number | null;
  seed?: number;
  params?: Record<string, number | string>;
  model?: 'linear';
};
const SCHEDULES: Schedule[] = [
  { name: 'days14-every6h', everyHours: 6, days: 14 },
  { name: 'days14-every24h', everyHours: 24, days: 14 },
  { name: 'days60-every168h', everyHours: 168, days: 60 },
  { name: 'all-every168h', everyHours: 168, days: null },
  { name: 'days120-every168h', everyHours: 168, days: 120 },
  // Other seeds: averaging two fits of one window is the control for averaging windows, and a combination's gain
  // should not depend on the seed.
  { name: 'all-every168h-seed7', everyHours: 168, days: null, seed: 7 },
  { name: 'days60-every168h-seed7', everyHours: 168, days: 60, seed: 7 },
  // Candidates to close ETH's gap on top of mean(all, 60 d), fixed before any fit (2026-12-06): boosted forests
  // (4 trees per round) as both members; a fresher 60-day member (daily); a third, shorter window (30 days); a
  // member with another loss (true L1).
  { name: 'all-every168h-forest4', everyHours: 168, days: null, params: { num_parallel_tree: 4 } },
  { name: 'days60-every168h-forest4', everyHours: 168, days: 60, params: { num_parallel_tree: 4 } },
  { name: 'days60-every24h', everyHours: 24, days: 60 },
  // The product's way to a daily 60-day member: the trainer refitting both members daily (checked after B won).
  { name: 'all-every24h', everyHours: 24, days: null },
  { name: 'days30-every168h', everyHours: 168, days: 30 },
  { name: 'all-every168h-l1', everyHours: 168, days: null, params: { objective: 'reg:absoluteerror' } },
  // Their seed-7 controls (a combination's gain must not be seed noise).
  {
    name: 'all-every168h-forest4-seed7',
    everyHours: 168,
    days: null,
    seed: 7,
    params: { num_parallel_tree: 4 },
  },
  {
    name: 'days60-every168h-forest4-seed7',
    everyHours: 168,
    days: 60,
    seed: 7,
    params: { num_parallel_tree: 4 },
  },
  { name: 'days60-every24h-seed7', everyHours: 24, days: 60, seed: 7 },
  { name: 'days30-every168h-seed7', everyHours: 168, days: 30, seed: 7 },
  {
    name: 'all-every168h-l1-seed7',
    everyHours: 168,
    days: null,
    seed: 7,
    params: { objective: 'reg:absoluteerror' },
  },
  // A linear member (the trainer's ridge baseline), fixed before any fit (2026-12-06): a low-variance model where
  // history is short, its errors less correlated with the trees'; as a third member of mean(all, 60 d).
  { name: 'linear-all-every168h', everyHours: 168, days: null, model: 'linear' },
  { name: 'linear-days60-every168h', everyHours: 168, days: 60, model: 'linear' },
];

const ds = await cachedDataset('binance', DATA);
const folds = walkForwardFolds(ds.windowEnd[0]!, ds.windowEnd[ds.n - 1]!, { folds: 5, horizonMs: 300_000 });
const wholeSpan = arg('--from') === 'all';
const from = wholeSpan ? folds[0]!.testFrom : arg('--from') ? Date.parse(arg('--from')!) : folds[4]!.testFrom;
const to = wholeSpan ? folds[4]!.testTo : arg('--to') ? Date.parse(arg('--to')!) : folds[4]!.testTo;
process.stderr.write(
  `walk-forward test blocks: ${folds.map((f) => `${new Date(f.testFrom).toISOString()} → ${new Date(f.testTo).toISOString()}`).join(', ')}\n`,
);
const out = join(CACHE, `cadence-${from}-${to}`);
mkdirSync(out, { recursive: true });
const specFile = join(out, 'spec.json');
const picked = arg('--schedules')?.split(',');
const schedules: Schedule[] = picked
  ? picked.map((n) => {
      const sch = SCHEDULES.find((x) => x.name === n);
      if (!sch) throw new Error(`unknown schedule ${n} (known: ${SCHEDULES.map((x) => x.name).join(', ')})`);
      return sch;
    })
  : existsSync(specFile)
    ? JSON.parse(readFileSync(specFile, 'utf8')).schedules
    : SCHEDULES;
const missing = schedules.filter(
  (s) => process.argv.includes('--refit') || !existsSync(join(out, `${s.name}.f64`)),
);
if (missing.length > 0 && !process.argv.includes('--score-only')) {
  // Only the missing schedules are fitted (cadence.py fits every schedule of its spec); 2 threads: the machine's
  // 2 cores are shared with other jobs.
  writeFileSync(specFile, JSON.stringify({ horizonMs: 300_000, from, to, seed: 42, threads: 2, schedules }));
  writeFileSync(
    join(out, 'fit-spec.json'),
    JSON.stringify({ horizonMs: 300_000, from, to, seed: 42, threads: 2, schedules: missing }),
  );
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
      join(out, 'fit-spec.json'),
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
// Over several blocks, also the earlier blocks and the last one apart: the first cadence study chose on the last.
const parts = [{ title: 'whole span', blocks: span }];
if (span.length > 1)
  parts.push(
    { title: 'earlier blocks', blocks: span.slice(0, -1) },
    { title: 'last block', blocks: span.slice(-1) },
  );
const tables = parts.map((p) => [
  `${p.title}: ${new Date(p.blocks[0]!.testFrom).toISOString()} → ${new Date(p.blocks.at(-1)!.testTo).toISOString()}`,
  `| schedule | ${ds.pairs.map((p) => `${p} skill (DM p)`).join(' | ')} | per walk-forward block, ${ds.pairs.join(' / ')} (%) |`,
  `|---|${ds.pairs.map(() => '---').join('|')}|---|`,
]);
/** Scores point forecasts (rows = dataset rows) against persistence on each part; the band is not scored here. */
const score = (label: string, rows: Float64Array, pred: Float64Array) => {
  const fold = blockOf(rows);
  parts.forEach((p, j) => {
    const keep: number[] = [];
    for (let k = 0; k < rows.length; k++) if (p.blocks.some((b) => b.fold === fold[k])) keep.push(k);
    const zero = new Float64Array(keep.length);
    const oos: OutOfSample = {
      row: Int32Array.from(keep, (k) => rows[k]!),
      fold: Int32Array.from(keep, (k) => fold[k]!),
      model: Float64Array.from(keep, (k) => pred[k]!),
      p10: zero,
      p90: zero,
      linear: zero,
      champion: new Float64Array(keep.length).fill(Number.NaN),
    };
    tables[j]!.push(row(label, evaluate(ds, p.blocks, oos)));
  });
};
// The walk-forward's model over this span; with --from all only when its fits are cached (the 5-fold study also
// fits the quantile and volatility-target models, which a comparison of point forecasts does not need).
if (!wholeSpan || existsSync(join(CACHE, 'binance-study', 'oos.f64'))) {
  const s = studyFits('binance', folds, false);
  const inSpan = Array.from(s.row.keys()).filter(
    (k) => ds.windowEnd[s.row[k]!]! >= from && ds.windowEnd[s.row[k]!]! < to,
  );
  if (inSpan.length > 0)
    score(
      'all history, once (the 5-fold walk-forward)',
      Float64Array.from(inSpan, (k) => s.row[k]!),
      Float64Array.from(inSpan, (k) => s.model[k]!),
    );
}
const load = (name: string) => {
  if (!existsSync(join(out, `${name}.f64`))) return undefined;
  const b = readFileSync(join(out, `${name}.f64`));
  const a = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const m = a.length / 2;
  return {
    rows: Float64Array.from({ length: m }, (_, i) => a[i * 2]!),
    pred: Float64Array.from({ length: m }, (_, i) => a[i * 2 + 1]!),
  };
};
const labelOf = (name: string) => {
  const sch = SCHEDULES.find((x) => x.name === name) ?? schedules.find((x) => x.name === name);
  if (!sch) return name;
  const seed = sch.seed !== undefined ? `, seed ${sch.seed}` : '';
  const params = sch.params
    ? `, ${Object.entries(sch.params)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`
    : '';
  const model = sch.model ? `${sch.model} (ridge), ` : '';
  return `${model}${sch.days === null ? 'all history' : `latest ${sch.days} days`}, every ${sch.everyHours} h${params}${seed}`;
};
for (const sch of schedules) {
  const st = load(sch.name);
  if (st) score(labelOf(sch.name), st.rows, st.pred);
}
// Equal-weight combinations: every schedule predicts the same rows in the same order (the test rows depend only
// on the span and the refit times), which is checked rather than assumed.
const combined = (names: string[]) => {
  const streams = names.map(load);
  if (streams.some((st) => !st)) return undefined;
  const [first, ...rest] = streams as NonNullable<(typeof streams)[number]>[];
  for (const st of rest)
    if (st.rows.length !== first!.rows.length || st.rows.some((r, k) => r !== first!.rows[k]))
      throw new Error(`--combine ${names.join('+')}: the schedules do not predict the same rows`);
  const pred = Float64Array.from(
    first!.pred,
    (_, k) => streams.reduce((acc, st) => acc + st!.pred[k]!, 0) / streams.length,
  );
  return { rows: first!.rows, pred };
};
/** Whole span, per pair: the skill of forecast `a` against forecast `b` (same rows) and its DM p. */
const headToHead = (rows: Float64Array, a: Float64Array, b: Float64Array) =>
  ds.pairs
    .map((p, pi) => {
      const keep = Array.from(rows.keys()).filter((k) => ds.pair[rows[k]!] === pi);
      const r = Int32Array.from(keep, (k) => rows[k]!);
      const ka = Float64Array.from(keep, (k) => a[k]!);
      const kb = Float64Array.from(keep, (k) => b[k]!);
      const mae = (e: Float64Array) => e.reduce((x, v) => x + v, 0) / e.length;
      const maeA = mae(absPriceErrors(r, ds.close, ds.targetClose, ka));
      const maeB = mae(absPriceErrors(r, ds.close, ds.targetClose, kb));
      const c = compare(ds, r, ka, kb, maeA, maeB);
      return `${p} ${(c.skill * 100).toFixed(3)} % (DM p ${c.dm_pvalue?.toPrecision(2)})`;
    })
    .join(', ');
// `--against a+b`: every combination is also compared head to head with that one (a candidate against the default).
const againstNames = arg('--against')?.split('+');
const against = againstNames && combined(againstNames);
if (againstNames && !against)
  process.stderr.write(`--against ${againstNames.join('+')}: not fitted yet, skipped\n`);
const head: string[] = [];
process.argv.forEach((a, i) => {
  if (a !== '--combine') return;
  const names = process.argv[i + 1]!.split('+');
  const mean = combined(names);
  if (!mean) {
    process.stderr.write(`--combine ${names.join('+')}: not every schedule is fitted yet, skipped\n`);
    return;
  }
  score(`equal-weight mean of (${names.map(labelOf).join('; ')})`, mean.rows, mean.pred);
  // Head to head with the first schedule, whole span: is the combination better than that schedule alone?
  head.push(
    `mean of ${names.join('+')} against ${names[0]} alone: ${headToHead(mean.rows, mean.pred, load(names[0]!)!.pred)}`,
  );
  if (against && againstNames!.join('+') !== names.join('+')) {
    if (against.rows.length !== mean.rows.length || against.rows.some((r, k) => r !== mean.rows[k]))
      throw new Error(`--against ${againstNames!.join('+')}: not the same rows as ${names.join('+')}`);
    head.push(
      `mean of ${names.join('+')} against mean of ${againstNames!.join('+')}: ${headToHead(mean.rows, mean.pred, against.pred)}`,
    );
  }
});
process.stdout.write(`${tables.map((t) => t.join('\n')).join('\n\n')}\n\n${head.join('\n')}\n`);
