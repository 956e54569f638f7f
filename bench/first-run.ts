/**
 * First contact, as a new user meets it: a fresh clone of this repository, then the README's first command —
 * `bash scripts/setup.sh && ./bin/cryptocast run` — timed to the first stored prediction and to the end of the run.
 * With `--cold`, npm's and pip's download caches are empty folders of the run's own, so every package comes from
 * the registries again, as on a fresh machine (the registries here are local mirrors: a slow network adds its own
 * download time). `--tests` also times the README's second command (`bash scripts/test.sh`) in the same clone.
 *
 *   ./bench/run first-run [--cold] [--tests]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fmt, recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const cold = process.argv.includes('--cold');
const withTests = process.argv.includes('--tests');
const TARGET_S = 300;

const work = mkdtempSync(join(tmpdir(), 'cc-first-run-'));
const clone = join(work, 'cryptocast');
const env: NodeJS.ProcessEnv = { ...process.env };
// The clone's own settings, not this shell's: a user's first run knows none of them.
for (const k of Object.keys(env))
  if (k.startsWith('CRYPTOCAST_') && k !== 'CRYPTOCAST_SHARED_DATA') delete env[k];
// The clone is not beside ../shared/data as this checkout is: point it there (the recordings a user of this
// workspace has).
env.CRYPTOCAST_SHARED_DATA ??= join(ROOT, '..', 'shared', 'data');
if (cold) {
  env.npm_config_cache = join(work, 'npm-cache');
  env.PIP_CACHE_DIR = join(work, 'pip-cache');
}
const log = createWriteStream(join(work, 'first-run.log'));

/** Runs a shell command in the clone, its output into the log; resolves with the wall time in seconds. */
function timed(label: string, command: string, cwd = clone): Promise<number> {
  process.stdout.write(`${label} …\n`);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pipe(log, { end: false });
    p.stderr.pipe(log, { end: false });
    p.on('error', reject);
    p.on('exit', (code) => {
      const s = (performance.now() - t0) / 1000;
      if (code === 0) resolve(s);
      else
        reject(
          new Error(
            `${label} failed (exit ${code}) after ${s.toFixed(0)} s: see ${join(work, 'first-run.log')}`,
          ),
        );
    });
  });
}

/** `cryptocast run --json`: seconds to the first stored prediction, and to the end; the run's summary. */
function run(): Promise<{
  firstPredictionS: number | undefined;
  totalS: number;
  summary: Record<string, unknown>;
}> {
  process.stdout.write('./bin/cryptocast run …\n');
  const t0 = performance.now();
  let firstPredictionS: number | undefined;
  let summary: Record<string, unknown> = {};
  return new Promise((resolve, reject) => {
    const p = spawn(join(clone, 'bin', 'cryptocast'), ['run', '--json', '--port', '0'], {
      cwd: clone,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stderr.pipe(log, { end: false });
    createInterface({ input: p.stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line);
      } catch {
        return;
      }
      if (firstPredictionS === undefined && Number(e.predictions) > 0)
        firstPredictionS = (performance.now() - t0) / 1000;
      if (e.event === 'done' || e.event === 'stopped') summary = e;
    });
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve({ firstPredictionS, totalS: (performance.now() - t0) / 1000, summary })
        : reject(new Error(`cryptocast run failed (exit ${code}): see ${join(work, 'first-run.log')}`)),
    );
  });
}

const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const cloneS = await timed(
  'git clone',
  `git clone --quiet ${JSON.stringify(ROOT)} ${JSON.stringify(clone)}`,
  work,
);
const setupS = await timed('bash scripts/setup.sh', 'bash scripts/setup.sh');
const r = await run();
const testS = withTests
  ? await timed('bash scripts/test.sh', 'bash scripts/test.sh').finally(() => {
      // The suite leaves its servers running (a later run reuses them): they belong to this clone, which is deleted
      // below, and would hold the test ports for the next suite on this machine.
      for (const s of ['kafka', 'mlflow', 'opensearch', 'postgres'])
        try {
          execFileSync('bash', [`scripts/${s}.sh`, 'stop'], { cwd: clone, stdio: 'ignore' });
        } catch {}
    })
  : undefined;
const toFirst = r.firstPredictionS === undefined ? undefined : cloneS + setupS + r.firstPredictionS;

const s = (x: number | undefined) => (x === undefined ? '—' : `${fmt(x)} s`);
const rows = [
  ['git clone', s(cloneS), ''],
  ['`bash scripts/setup.sh` (Node, npm packages, trainer venv, LLM weights, default model)', s(setupS), ''],
  ['`./bin/cryptocast run`: start → first stored prediction', s(r.firstPredictionS), ''],
  [
    '**fresh clone → first prediction**',
    `**${s(toFirst)}**`,
    `≤ ${TARGET_S} s ${toFirst !== undefined && toFirst <= TARGET_S ? '**met**' : 'not met'}`,
  ],
  [
    '`./bin/cryptocast run` to the end of the default replay',
    `${s(r.totalS)} (${fmt(Number(r.summary.trades ?? 0))} trades, ${fmt(Number(r.summary.predictions ?? 0))} predictions, ${fmt(Number(r.summary.errorRecords ?? 0))} error records)`,
    '',
  ],
  ...(testS === undefined
    ? []
    : [['`bash scripts/test.sh` in the same clone', s(testS), '≤ 1,500 s (25 min)']]),
];
const table = [
  '| step | wall time | goal |',
  '|---|---:|---|',
  ...rows.map((x) => `| ${x.join(' | ')} |`),
].join('\n');
process.stdout.write(`\n${table}\n`);
recordBenchmark(
  'first-run',
  'First run: a fresh clone to the first prediction',
  `\`./bench/run first-run${cold ? ' --cold' : ''}${withTests ? ' --tests' : ''}\` at ${head}: a \`git clone\` of this repository, then the README's first command in it. ` +
    (cold
      ? "npm's and pip's download caches empty (every package fetched from the registries again, here local mirrors); "
      : "npm's and pip's download caches as this machine has them; ") +
    'the tools the test suite needs (Kafka, PostgreSQL, MLflow, OpenSearch, Chromium) are not part of the first run.\n\n' +
    table,
);
log.end();
if (!process.argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
