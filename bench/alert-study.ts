/**
 * How often the skill alerts fire on a model that is good (monitoring defaults): the 14 months of Binance walked
 * forward (`cryptocast evaluate --predictions`, 1,017,492 out-of-sample predictions, positive skill in every fold, DM
 * p < 1e-15) are fed minute by minute to the alert engine (src/monitoring/alerts: `observe` and `AlertStates`, the
 * monitor's own code) as the monitor would see them matured, for the shipped quality rules (skill, coverage) and the former ones.
 * Also the spread of the rolling skill a good model shows per window, and how many cold starts (a new system, the
 * first day) would fire. An alert that fires on this model is noise: users learn to ignore it.
 * The band is the one the predictor publishes by default (online adaptive conformal: `evaluate --adaptive-conformal`).
 * Usage: ./bench/run alert-study [--predictions FILE.csv] (default: evaluates the 14 months first, ~2 min, cached in
 * .data/study/alert-study-predictions.csv)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AlertSignals, observe } from '../src/monitoring/alerts/engine.ts';
import { DEFAULT_RULE_INPUTS, type Rule, RuleSchema } from '../src/monitoring/alerts/rules.ts';
import { AlertStates } from '../src/monitoring/alerts/state.ts';
import { emptySums, type RollingQuality, type Sums } from '../src/monitoring/rolling-quality.ts';
import { recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const MIN = 60_000;
const DAY = 86_400_000;
const WINDOWS = { '1h': 3_600_000, '24h': DAY, '7d': 7 * DAY } as const;

const i = process.argv.indexOf('--predictions');
const file = i > 0 ? process.argv[i + 1]! : join(ROOT, '.data', 'study', 'alert-study-predictions.csv');
if (i < 0 && !existsSync(file)) {
  mkdirSync(join(ROOT, '.data', 'study'), { recursive: true });
  process.stderr.write('walking forward over the 14 months (cryptocast evaluate, ~2 min)…\n');
  execFileSync(
    join(ROOT, 'bin', 'cryptocast'),
    ['evaluate', '--candles', DATA, '--adaptive-conformal', '--predictions', file],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

// Per pair, in target-time order: |model error| and |persistence error| (prices), as the monitor scores them.
const series = new Map<string, { t: number[]; em: number[]; ep: number[]; band: number[] }>();
const lines = readFileSync(file, 'utf8').split('\n');
const col = Object.fromEntries(lines[0]!.split(',').map((c, k) => [c, k]));
for (let k = 1; k < lines.length; k++) {
  if (lines[k] === '') continue;
  const f = lines[k]!.split(',');
  const pair = f[col.pair!]!;
  const actual = Number(f[col.actual_close!]);
  let s = series.get(pair);
  if (!s) {
    s = { t: [], em: [], ep: [], band: [] };
    series.set(pair, s);
  }
  s.t.push(Number(f[col.targetTs!]));
  s.em.push(Math.abs(Number(f[col.predicted_close!]) - actual));
  s.band.push(Number(f[col.p10!]) <= actual && actual <= Number(f[col.p90!]) ? 1 : 0);
  s.ep.push(Math.abs(Number(f[col.close!]) - actual));
}

const qualityRules = (inputs: unknown[]) =>
  inputs
    .map((r) => RuleSchema.parse(r))
    .filter((r) => r.kind === 'skill_below' || r.kind === 'coverage_outside');
const shipped = qualityRules(DEFAULT_RULE_INPUTS);
const former = qualityRules([
  { name: 'former-24h-below-0', kind: 'skill_below', window: '24h', threshold: 0, minCount: 120, for: '15m' },
  {
    name: 'former-coverage-240',
    kind: 'coverage_outside',
    window: '24h',
    low: 0.7,
    high: 0.9,
    minCount: 240,
    for: '30m',
  },
]);

interface Sorted {
  t: Float64Array;
  /** Prefix sums of |model error| and |persistence error|: any window's sums in O(1). */
  cm: Float64Array;
  cp: Float64Array;
  /** Prefix sums of verdicts inside the published p10–p90 band. */
  cb: Float64Array;
}
const sorted = new Map<string, Sorted>();
for (const [pair, s] of series) {
  const order = [...s.t.keys()].sort((a, b) => s.t[a]! - s.t[b]!);
  const cm = new Float64Array(order.length + 1);
  const cp = new Float64Array(order.length + 1);
  const cb = new Float64Array(order.length + 1);
  order.forEach((k, j) => {
    cm[j + 1] = cm[j]! + s.em[k]!;
    cp[j + 1] = cp[j]! + s.ep[k]!;
    cb[j + 1] = cb[j]! + s.band[k]!;
  });
  sorted.set(pair, { t: Float64Array.from(order, (k) => s.t[k]!), cm, cp, cb });
}

/**
 * The engine over one pair's verdicts [from, to) (a cold start at `from`: nothing before it counts), one evaluation
 * per verdict, the event clock also the wall clock (reminders as live). Returns the first firing times per rule.
 */
function replay(pair: string, rules: Rule[], from = 0, to = sorted.get(pair)!.t.length) {
  const { t, cm, cp, cb } = sorted.get(pair)!;
  const lo = new Map<number, number>();
  let k = from;
  const quality = {
    windows: WINDOWS,
    series: () => [{ pair, modelName: 'm', modelVersion: 1 }],
    sums: (_pair: string, windowMs: number): Sums => {
      let j = Math.max(lo.get(windowMs) ?? from, from);
      while (t[j]! <= t[k]! - windowMs) j++;
      lo.set(windowMs, j);
      return {
        ...emptySums(),
        n: k + 1 - j,
        sumAbs: cm[k + 1]! - cm[j]!,
        sumPersistAbs: cp[k + 1]! - cp[j]!,
        inBand: cb[k + 1]! - cb[j]!,
      };
    },
  } as unknown as RollingQuality;
  const states = new AlertStates(() => t[k]!);
  const firings = new Map<string, number[]>(rules.map((r) => [r.name, []]));
  for (; k < to; k++) {
    const signals = { now: t[k]!, live: false, quality } as AlertSignals;
    const obs = rules.flatMap((r) => observe(r, signals));
    for (const n of states.update(obs, t[k]!))
      if (n.status === 'firing' && n.repeat === 0) firings.get(n.rule)!.push(t[k]!);
  }
  return firings;
}

/** Quantiles of the rolling skill (or p10–p90 coverage) over `windowMs` (windows at least 90 % full), per pair. */
function quantiles(what: 'skill' | 'coverage', pair: string, windowMs: number, qs: number[]) {
  const { t, cm, cp, cb } = sorted.get(pair)!;
  const out: number[] = [];
  let j = 0;
  for (let k = 0; k < t.length; k++) {
    while (t[j]! <= t[k]! - windowMs) j++;
    if (k + 1 - j < 0.9 * (windowMs / MIN)) continue;
    out.push(
      what === 'skill'
        ? 1 - (cm[k + 1]! - cm[j]!) / (cp[k + 1]! - cp[j]!)
        : (cb[k + 1]! - cb[j]!) / (k + 1 - j),
    );
  }
  out.sort((a, b) => a - b);
  return [out[0]!, ...qs.map((q) => out[Math.floor(q * (out.length - 1))]!), out.at(-1)!];
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const pairs = [...sorted.keys()].sort();
const out: string[] = [];
const say = (line: string) => {
  process.stdout.write(`${line}\n`);
  out.push(line);
};
const first = sorted.get(pairs[0]!)!.t;
const spanDays = (first.at(-1)! - first[0]!) / DAY;
say(
  `${pairs.map((p) => `${p} ${sorted.get(p)!.t.length.toLocaleString('en-US')}`).join(', ')} out-of-sample predictions, ${day(first[0]!)} → ${day(first.at(-1)!)} (${spanDays.toFixed(0)} days).`,
);
say('');
say(
  '| rule | pair | firings | per 30 days | days it fired (first 6) | cold starts that fire (a new system, first 24 h) |',
);
say('|---|---|---:|---:|---|---:|');
for (const r of [...former, ...shipped]) {
  for (const pair of pairs) {
    const fired = replay(pair, [r]).get(r.name)!;
    const { t } = sorted.get(pair)!;
    let cold = 0;
    let starts = 0;
    for (let m = Math.ceil(t[0]! / DAY) * DAY; m + DAY <= t.at(-1)!; m += DAY) {
      const a = t.findIndex((x) => x >= m);
      let b = a;
      while (b < t.length && t[b]! < m + DAY) b++;
      starts++;
      if (replay(pair, [r], a, b).get(r.name)!.length > 0) cold++;
    }
    const days = [...new Set(fired.map(day))];
    const condition =
      r.kind === 'skill_below'
        ? `skill < ${pct(r.threshold)}`
        : `coverage outside ${pct(r.low)}–${pct(r.high)}`;
    say(
      `| ${r.name} (${r.window}, ${condition}, ≥ ${r.minCount}, for ${r.for / MIN} min, resolve after ${r.resolveAfter / MIN} min) | ${pair} | ${fired.length} | ${((fired.length / spanDays) * 30).toFixed(1)} | ${days.slice(0, 6).join(', ')}${days.length > 6 ? ' …' : ''} | ${cold} of ${starts} |`,
    );
  }
}
const qs = [0.0001, 0.001, 0.01, 0.05, 0.5];
for (const what of ['skill', 'coverage'] as const) {
  say('');
  say(
    `| rolling ${what} of this good model | pair | min | ${qs.map((q) => `${q * 100} %`).join(' | ')} | max |`,
  );
  say(`|---|---|---:|${qs.map(() => '---:').join('|')}|---:|`);
  for (const [w, ms] of Object.entries(WINDOWS))
    for (const pair of pairs)
      say(`| over ${w} | ${pair} | ${quantiles(what, pair, ms, qs).map(pct).join(' | ')} |`);
}
recordBenchmark(
  'alert-study',
  'Quality alerts on a good model: how often they fire (monitoring defaults)',
  out.join('\n'),
);
