import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { sampleModel } from '../support/registry-contract.ts';
import { scratchDir } from '../support/scratch.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

/**
 * The training pipeline end to end on real Binance candles, with the real trainer (Python, XGBoost): evaluate's
 * numbers recomputed independently from its predictions file and the raw klines; train → registry → gate → aliases
 * → promote / rollback; failures that must leave the champion alone; bad input.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const cc = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(join(ROOT, 'bin/cryptocast'), args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
const fails = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
  try {
    await cc(args, env);
  } catch (err) {
    return err as { code: number; stderr: string };
  }
  assert.fail(`expected cryptocast ${args[0]} to fail`);
};

/** A folder of symlinks to some daily kline zips. */
function days(symbols: string[], dates: string[]): string {
  const dir = scratchDir('cc-klines-');
  for (const s of symbols) {
    mkdirSync(join(dir, s), { recursive: true });
    for (const d of dates)
      symlinkSync(join(BINANCE, s, `${s}-1m-${d}.zip`), join(dir, s, `${s}-1m-${d}.zip`));
  }
  return dir;
}

/** close by (symbol, close time) straight from the zips: an independent reader for the check. */
function rawCloses(symbols: string[], dates: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of symbols)
    for (const d of dates) {
      const files = unzipSync(readFileSync(join(BINANCE, s, `${s}-1m-${d}.zip`)));
      const text = new TextDecoder().decode(Object.values(files)[0]!);
      for (const line of text.trim().split('\n')) {
        const f = line.split(',');
        out.set(`${s.replace('USDT', '/USDT')} ${Number(f[0]) + 60_000}`, Number(f[4]));
      }
    }
  return out;
}

const WEEK = ['01', '02', '03', '04', '05', '06', '07'].map((d) => `2022-01-${d}`);
const MARCH = Array.from({ length: 31 }, (_, i) => `2022-03-${String(i + 1).padStart(2, '0')}`);

describe('cryptocast evaluate (real klines, real XGBoost)', () => {
  it('prints the walk-forward metrics, and its predictions file reproduces them from the raw candles', async () => {
    const data = days(['BTCUSDT', 'ETHUSDT'], WEEK);
    const preds = join(data, 'predictions.csv');
    const r = await cc(['evaluate', '--candles', data, '--folds', '3', '--json', '--predictions', preds]);
    const ev = JSON.parse(r.stdout);
    for (const k of [
      'n',
      'folds',
      'mae_model',
      'mae_persistence',
      'skill',
      'dm_pvalue',
      'direction_accuracy',
      'coverage_p10_p90',
    ])
      assert.ok(k in ev, `key ${k}`);
    assert.equal(ev.folds, 3);
    assert.deepEqual(Object.keys(ev.per_pair).sort(), ['BTC/USDT', 'ETH/USDT']);
    assert.ok(ev.coverage_p10_p90 > 0.5 && ev.coverage_p10_p90 < 0.95, `coverage ${ev.coverage_p10_p90}`);

    const closes = rawCloses(['BTCUSDT', 'ETHUSDT'], WEEK);
    const lines = readFileSync(preds, 'utf8').trim().split('\n');
    const header = lines[0]!.split(',');
    for (const k of ['windowEnd', 'targetTs', 'predicted_close', 'p10', 'p90'])
      assert.ok(header.includes(k), k);
    const col = (k: string) => header.indexOf(k);
    assert.equal(lines.length - 1, ev.n);
    const err: Record<string, { model: number; persistence: number; n: number }> = {};
    let lastEnd = 0;
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      const pair = f[col('pair')]!;
      const windowEnd = Number(f[col('windowEnd')]);
      const targetTs = Number(f[col('targetTs')]);
      assert.equal(targetTs - windowEnd, 300_000, 'the target is 5 minutes after the candle');
      assert.ok(windowEnd >= lastEnd, 'rows in time order');
      lastEnd = windowEnd;
      const now = closes.get(`${pair} ${windowEnd}`);
      const actual = closes.get(`${pair} ${targetTs}`);
      assert.ok(now !== undefined && actual !== undefined, `raw candles at ${windowEnd} and ${targetTs}`);
      const p10 = Number(f[col('p10')]);
      const p90 = Number(f[col('p90')]);
      assert.ok(p10 <= p90);
      err[pair] ??= { model: 0, persistence: 0, n: 0 };
      const e = err[pair];
      e.model += Math.abs(Number(f[col('predicted_close')]) - actual);
      e.persistence += Math.abs(now - actual);
      e.n++;
    }
    for (const [pair, e] of Object.entries(err)) {
      const s = ev.per_pair[pair];
      assert.equal(e.n, s.n);
      assert.ok(Math.abs(e.model / e.n - s.mae_model) < 1e-6 * s.mae_model, `${pair} model MAE`);
      assert.ok(
        Math.abs(e.persistence / e.n - s.mae_persistence) < 1e-9 * s.mae_persistence,
        `${pair} persistence MAE`,
      );
      assert.ok(Math.abs(1 - s.mae_model / s.mae_persistence - s.skill) < 1e-9);
    }
  });

  it('refuses too little data and constant prices with a clear message (exit 2)', async () => {
    const dir = scratchDir('cc-bad-');
    const rows = (count: number, price: (i: number) => number) =>
      `timestamp,open,high,low,close,volume\n${Array.from({ length: count }, (_, i) => {
        const p = price(i);
        return `${1_700_000_000_000 + i * 60_000},${p},${p},${p},${p},1`;
      }).join('\n')}\n`;
    writeFileSync(
      join(dir, 'short.csv'),
      rows(300, (i) => 100 + Math.sin(i)),
    );
    writeFileSync(
      join(dir, 'flat.csv'),
      rows(3_000, () => 100),
    );
    const short = await fails(['evaluate', '--candles', join(dir, 'short.csv'), '--pair', 'BTC/USD']);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /only \d+ usable rows \(need at least 2000\)/);
    const flat = await fails(['evaluate', '--candles', join(dir, 'flat.csv'), '--pair', 'BTC/USD']);
    assert.equal(flat.code, 2);
    assert.match(flat.stderr, /price never changes/);
  });

  it('--history: earlier candles are the initial training window, and only the new candles are tested', async () => {
    const history = days(['BTCUSDT', 'ETHUSDT'], WEEK);
    const NEXT = ['2022-01-08', '2022-01-09', '2022-01-10'];
    const fresh = days(['BTCUSDT'], NEXT);
    const preds = join(scratchDir('cc-history-'), 'predictions.csv');
    const r = await cc([
      'evaluate',
      '--candles',
      fresh,
      '--history',
      history,
      '--folds',
      '3',
      '--json',
      '--predictions',
      preds,
    ]);
    const ev = JSON.parse(r.stdout);
    const start = Date.UTC(2022, 0, 8, 0, 1); // the first new candle closes at 00:01
    assert.deepEqual(Object.keys(ev.per_pair), ['BTC/USDT']);
    assert.equal(ev.per_fold.length, 3);
    assert.equal(ev.per_fold[0].testFrom, start);
    for (const f of ev.per_fold) {
      assert.equal(f.trainFrom, Date.UTC(2022, 0, 1, 1, 1)); // expanding from the history's first ready row
      assert.equal(f.trainTo, f.testFrom - 300_000);
    }
    // Every new minute after the warm-up (60) and before the last target (5) is tested, nothing before.
    assert.equal(ev.n, 3 * 1440 - 60 - 5);
    const lines = readFileSync(preds, 'utf8').trim().split('\n').slice(1);
    assert.equal(lines.length, ev.n);
    assert.ok(lines.every((l) => l.startsWith('BTC/USDT,') && Number(l.split(',')[1]) >= start));
    assert.ok(ev.per_day.length === 3 && ev.per_day[0].day === '2022-01-08');

    const overlap = await fails(['evaluate', '--candles', history, '--history', fresh]);
    assert.equal(overlap.code, 2);
    assert.match(overlap.stderr, /--history must end before the candles begin/);
  });
});

describe('cryptocast train and models (local registry)', () => {
  const data = days(['BTCUSDT'], MARCH);
  const registry = scratchDir('cc-registry-');
  const reg = ['--registry', registry, '--name', 'btc'];
  const train = (extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
    cc(['train', '--candles', data, '--tune-seconds', '0', '--json', ...reg, ...extra], env);
  const champion = async () => new LocalRegistry(registry).alias('btc', 'champion');

  it('trains, registers with lineage and report, and the gate decides by its stated rule', async () => {
    // alpha 1: the gate then only asks for positive skill on every pair (March 2022 BTC: the model wins slightly).
    const out = JSON.parse((await train(['--gate-alpha', '1'])).stdout);
    assert.equal(out.version, 1);
    const skill = out.summary.per_pair['BTC/USDT'].skill;
    assert.equal(out.promoted, skill > 0, `promoted ⇔ skill > 0 (skill ${skill})`);
    assert.ok(out.promoted, 'this month has positive skill with the default parameters');
    assert.equal(await champion(), 1);
    const card = await new LocalRegistry(registry).get('btc', 1);
    assert.ok(card);
    assert.equal(card.folds.length, 5);
    assert.match(card.datasetFingerprint, /^sha256:[0-9a-f]{64}$/);
    assert.equal(card.trainingWindow.from, Date.UTC(2022, 2, 1, 1, 1));
    assert.ok(card.columns.includes('rsi_14') && !card.columns.includes('sma_20'), 'scale-free columns only');
    // What the predictor fills in for a value the model never saw missing: Binance always counts its trades.
    assert.deepEqual(Object.keys(card.columnStats ?? {}), card.columns);
    assert.equal(card.columnStats!.trades_z_60m!.missing, 0);
    assert.ok(Math.abs(card.columnStats!.trades_z_60m!.mean!) < 1, 'a z-score averages near 0');
    for (const f of [
      'model.json',
      'p10.json',
      'p90.json',
      'report.md',
      'importance.png',
      'predicted_vs_actual.png',
      'errors.png',
    ])
      assert.ok(card.artifacts.includes(f), f);
    const report = readFileSync(join(registry, 'btc', 'versions', '1', 'report.md'), 'utf8');
    assert.match(report, /\| BTC\/USDT \| \d+ \|/);
    assert.match(report, /mean \\\|SHAP\\\|/);
    const model = JSON.parse(readFileSync(join(registry, 'btc', 'versions', '1', 'model.json'), 'utf8'));
    assert.ok(model.learner.gradient_booster.model.trees.length >= 1, 'an XGBoost JSON model');
  });

  it('a refit of the same configuration ties with the champion and replaces it; a stricter gate refuses', async () => {
    const again = JSON.parse((await train(['--gate-alpha', '1'])).stdout);
    assert.equal(again.version, 2);
    assert.ok(again.promoted);
    assert.ok(again.reasons.some((r: string) => /same configuration as champion v1/.test(r)));
    const strict = JSON.parse((await train(['--gate-alpha', '1e-12'])).stdout);
    assert.equal(strict.version, 3);
    assert.equal(strict.promoted, false);
    assert.ok(strict.reasons.some((r: string) => r.startsWith('FAIL')));
    assert.equal(await champion(), 2, 'the champion stays');
    assert.equal(await new LocalRegistry(registry).alias('btc', 'challenger'), 3);
  });

  it('a model for another horizon is not compared with the champion: refused, champion unchanged', async () => {
    const other = JSON.parse((await train(['--gate-alpha', '1', '--horizon', '10m'])).stdout);
    assert.equal(other.promoted, false);
    assert.ok(
      other.reasons.some((r: string) =>
        /not comparable with champion v2: it predicts 5 minutes ahead, this model 10/.test(r),
      ),
    );
    assert.equal(await champion(), 2);
  });

  it('lists, shows, rolls back and promotes by hand; never promotes a model worse than persistence', async () => {
    const list = JSON.parse((await cc(['models', 'list', '--json', ...reg])).stdout);
    assert.deepEqual(
      list.versions.map((v: { version: number }) => v.version),
      [1, 2, 3, 4],
    );
    assert.equal(list.champion, 2);
    const shown = JSON.parse((await cc(['models', 'show', 'champion', ...reg])).stdout);
    assert.equal(shown.version, 2);
    assert.match((await cc(['models', 'rollback', ...reg])).stdout, /champion: v1 \(rolled back from v2\)/);
    assert.equal(await champion(), 1);
    assert.match((await cc(['models', 'promote', '3', ...reg])).stdout, /champion: v3 \(was v1\)/);
    // A version that lost to persistence, registered directly: no one can make it champion.
    const bad = sampleModel('btc', 'worse');
    bad.card.summary = { per_pair: { 'BTC/USDT': { skill: -0.01 } } };
    await new LocalRegistry(registry).register(bad.card, bad.dir);
    const refused = await fails(['models', 'promote', '5', ...reg]);
    assert.match(refused.stderr, /no better than persistence on BTC\/USDT/);
    assert.equal(await champion(), 3);
  });

  it('a failed training run leaves the registry as it was', async () => {
    const before = (await new LocalRegistry(registry).list('btc')).length;
    const failed = await fails(['train', '--candles', data, '--tune-seconds', '0', ...reg], {
      CRYPTOCAST_PYTHON: '/bin/false',
    });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the trainer failed/);
    assert.equal((await new LocalRegistry(registry).list('btc')).length, before);
    assert.equal(await champion(), 3);
  });
});

describe('cryptocast train over a champion whose card is damaged', () => {
  it('the run is not failed by it: the gate decides without the comparison, and the new version replaces it (said why)', async () => {
    const registry = scratchDir('cc-registry-');
    // v1, champion (a stub: its card is what is damaged), then its card cut short as a full disk leaves it.
    const stump = stumpModel(1, [{ f: 0, c: 50, a: -1, b: 1 }]);
    await registerModel(new LocalRegistry(registry), 'btc', ['rsi_14'], {
      model: stump,
      p10: stump,
      p90: stump,
    });
    writeFileSync(join(registry, 'btc', 'versions', '1', 'card.json'), '{"name": "btc", "vers');
    const r = await cc([
      'train',
      '--candles',
      days(['BTCUSDT'], MARCH),
      '--tune-seconds',
      '0',
      '--gate-alpha',
      '1',
      '--json',
      '--registry',
      registry,
      '--name',
      'btc',
    ]).catch((err: { stderr: string }) => assert.fail(`train failed: ${err.stderr}`));
    const out = JSON.parse(r.stdout);
    assert.equal(out.version, 2);
    assert.equal(out.promoted, true, out.reasons.join('\n'));
    assert.ok(
      out.reasons.some((x: string) => /^pass: champion v1 cannot be read .*card\.json/.test(x)),
      out.reasons.join('\n'),
    );
    assert.equal(await new LocalRegistry(registry).alias('btc', 'champion'), 2);
  });
});

describe('cryptocast train whose version is registered but its alias cannot be moved', () => {
  it('says the version was registered and what to do, not only the registry error', async () => {
    const registry = scratchDir('cc-registry-');
    // The alias lock held by a live process (this test's) the whole run: the move waits 10 s and fails.
    mkdirSync(join(registry, 'btc', '.lock'), { recursive: true });
    writeFileSync(
      join(registry, 'btc', '.lock', 'owner.json'),
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'held-by-the-test' }),
    );
    const failed = await fails([
      'train',
      '--candles',
      days(['BTCUSDT'], MARCH),
      '--tune-seconds',
      '0',
      '--gate-alpha',
      '1',
      '--registry',
      registry,
      '--name',
      'btc',
    ]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /btc v1 was registered, but its alias could not be moved: .*registry lock/);
    assert.match(failed.stderr, /models promote 1/);
    const local = new LocalRegistry(registry);
    assert.deepEqual(
      (await local.list('btc')).map((c) => c.version),
      [1],
    );
    assert.equal(await local.alias('btc', 'champion'), undefined);
  });
});

describe('cryptocast train stopped', () => {
  it('SIGINT while the trainer fits: the trainer ends, its work folder goes, nothing is registered (exit 130)', async () => {
    const tmp = scratchDir('cc-stop-train-');
    const registry = join(tmp, 'registry');
    const run = runCli(
      ['train', '--candles', days(['BTCUSDT'], MARCH), '--tune-seconds', '0', '--registry', registry],
      {
        TMPDIR: tmp, // where the run makes its work folder
      },
    );
    const work = () => readdirSync(tmp).filter((f) => f.startsWith('cryptocast-train-'));
    // The trainer has started once its spec is written (just before the spawn) and a process reads it.
    const fitting = () =>
      work().some((w) => existsSync(join(tmp, w, 'out', 'spec.json'))) && trainerPids(tmp).length > 0;
    await waitFor('the trainer to start', fitting, Boolean, { everyMs: 50 });
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 130, run.stderr());
    assert.match(run.stderr(), /interrupted.*\[CC_ERR_INTERRUPTED\]/);
    assert.deepEqual(work(), [], 'the work folder is removed');
    assert.deepEqual(trainerPids(tmp), [], 'no trainer process is left');
    assert.deepEqual(await new LocalRegistry(registry).list('cryptocast-price'), []);
  });
});

describe('cryptocast evaluate stopped', () => {
  it('SIGINT while the walk-forward fits: exit 130, its work folder goes, and the message is of an evaluation (no registry)', async () => {
    const tmp = scratchDir('cc-stop-evaluate-');
    const predictions = join(tmp, 'oos.csv');
    const run = runCli(['evaluate', '--candles', days(['BTCUSDT'], MARCH), '--predictions', predictions], {
      TMPDIR: tmp,
    });
    const work = () => readdirSync(tmp).filter((f) => f.startsWith('cryptocast-train-'));
    const fitting = () =>
      work().some((w) => existsSync(join(tmp, w, 'out', 'spec.json'))) && trainerPids(tmp).length > 0;
    await waitFor('the trainer to start', fitting, Boolean, { everyMs: 50 });
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 130, run.stderr());
    // It said "nothing was registered", as train does: evaluate never registers, and the user had asked for a file.
    assert.match(
      run.stderr(),
      /cryptocast: interrupted: the walk-forward was stopped and its work folder removed; nothing was written \[CC_ERR_INTERRUPTED\]/,
    );
    assert.doesNotMatch(run.stderr(), /registered/);
    assert.equal(existsSync(predictions), false, 'no --predictions file');
    assert.deepEqual(work(), [], 'the work folder is removed');
    assert.deepEqual(trainerPids(tmp), [], 'no trainer process is left');
  });

  it('SIGTERM while --figures are drawn: exit 130, the predictions kept and said so, no figure left', async () => {
    const tmp = scratchDir('cc-stop-evaluate-figures-');
    const predictions = join(tmp, 'oos.csv');
    const figures = join(tmp, 'figures');
    const run = runCli(
      ['evaluate', '--candles', days(['BTCUSDT'], MARCH), '--predictions', predictions, '--figures', figures],
      { TMPDIR: tmp },
    );
    let ended = false;
    void run.exited.then(() => {
      ended = true;
    });
    // The predictions file is committed just before the drawing starts. The stop listener was gone by then: Node
    // died by the signal (no exit 130, no word) and the drawing went on.
    const written = /out-of-sample predictions written to /;
    await waitFor('the predictions to be written', () => ended || written.test(run.stderr()), Boolean, {
      timeoutMs: 300_000,
      everyMs: 20,
    });
    assert.match(run.stderr(), written);
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 130, run.stderr());
    assert.match(
      run.stderr(),
      /cryptocast: interrupted: the evaluation was stopped; its predictions were written to .*oos\.csv before, no figures \[CC_ERR_INTERRUPTED\]/,
    );
    assert.ok(existsSync(predictions), 'the predictions file reported written is kept');
    assert.deepEqual(readdirSync(figures), [], 'no figure, no work folder of the drawing');
  });
});

/**
 * `service trainer` with `args`, stopped by SIGTERM while it fits with a trainer that fits for ever: `exits` checks how
 * it ended; then the fit's process has ended, its work folder is gone and nothing is registered. The stop must not wait
 * for the fit (a weekly fit on 365 days takes longer than any grace period, so waiting ended in a SIGKILL, or a second
 * signal and the fit's process left running).
 */
async function stoppedWhileFitting(
  prefix: string,
  args: string[],
  exits: (run: ReturnType<typeof runCli>) => Promise<void>,
): Promise<void> {
  const tmp = scratchDir(prefix);
  const store = `duckdb:${join(tmp, 'features.duckdb')}`;
  await cc(['features', '--candles', days(['BTCUSDT'], MARCH.slice(0, 10)), '--store', store]);
  const pidFile = join(tmp, 'fit.pid');
  const python = join(tmp, 'python');
  writeFileSync(python, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 600\n`, { mode: 0o755 });
  const registry = join(tmp, 'registry');
  const run = runCli(['service', 'trainer', '--store', store, '--registry', registry, ...args], {
    TMPDIR: tmp,
    CRYPTOCAST_PYTHON: python,
  });
  let fitPid: number | undefined;
  try {
    fitPid = await waitFor(
      'the fit to start',
      () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0),
      (pid) => pid > 0,
      { everyMs: 50 },
    );
    run.child.kill('SIGTERM');
    await exits(run);
    const pid = fitPid;
    await waitFor(
      'the fit to end',
      () => alive(pid),
      (a) => !a,
      { timeoutMs: 10_000, everyMs: 50 },
    );
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('cryptocast-train-')),
      [],
      'the work folder is removed',
    );
    assert.deepEqual(await new LocalRegistry(registry).list('cryptocast-price'), []);
  } finally {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    if (fitPid !== undefined && alive(fitPid)) process.kill(fitPid, 'SIGKILL');
  }
}

describe('cryptocast service trainer stopped', () => {
  it('SIGTERM while the trainer fits: the fit is abandoned (its process ended, its work folder gone), nothing is registered, exit 0', async () => {
    await stoppedWhileFitting('cc-stop-service-trainer-', ['--now', '--every', '1h'], async (run) =>
      assert.equal(
        await settlesWithin(
          run.exited,
          60_000,
          () => `the service to stop; stderr:\n${run.stderr().slice(-2000)}`,
        ),
        0,
        run.stderr(),
      ),
    );
  });
});

describe('cryptocast service trainer --once stopped', () => {
  it('SIGTERM while the trainer fits: the fit ends, its work folder goes, nothing is registered (exit 130)', async () => {
    await stoppedWhileFitting('cc-stop-trainer-once-', ['--once'], async (run) => {
      // Before: no stop handler in --once, so Node died of the signal at once and left the fit and its folder behind.
      assert.equal(await settlesWithin(run.exited, 60_000, 'the trainer to stop'), 130, run.stderr());
      assert.match(run.stderr(), /\[CC_ERR_INTERRUPTED\]/);
    });
  });
});

/** Whether a process with this pid runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line names a path under `dir` (the trainer is given its dataset and spec there). */
function trainerPids(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `cryptocast_trainer.*${dir}`])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('cryptocast service trainer and tuning', () => {
  const data = days(['BTCUSDT'], MARCH.slice(0, 10));

  it('trains once from the feature store: the same dataset (fingerprint) as from the candle files', async () => {
    const dir = scratchDir('cc-trainer-');
    const store = `duckdb:${join(dir, 'features.duckdb')}`;
    await cc(['features', '--candles', data, '--store', store]);
    const registry = join(dir, 'registry');
    await cc([
      'service',
      'trainer',
      '--store',
      store,
      '--registry',
      registry,
      '--once',
      '--tune-seconds',
      '0',
      '--days',
      '30',
    ]);
    const fromStore = await new LocalRegistry(registry).get('cryptocast-price', 1);
    assert.ok(fromStore, 'the trainer registered v1');
    const fromFiles = JSON.parse(
      (await cc(['train', '--candles', data, '--tune-seconds', '0', '--json', '--registry', join(dir, 'r2')]))
        .stdout,
    );
    const card = await new LocalRegistry(join(dir, 'r2')).get('cryptocast-price', fromFiles.version);
    assert.equal(fromStore.datasetFingerprint, card?.datasetFingerprint);
    assert.deepEqual(fromStore.params, card?.params);
  });

  it('tunes with Optuna within its budget, and the gate refits the champion configuration on the same folds', async () => {
    const registry = scratchDir('cc-tune-');
    const reg = ['--registry', registry, '--name', 'tuned'];
    await cc(['train', '--candles', data, '--tune-seconds', '0', '--gate-alpha', '1', '--json', ...reg]);
    const out = JSON.parse(
      (await cc(['train', '--candles', data, '--tune-seconds', '10', '--trials', '4', '--json', ...reg]))
        .stdout,
    );
    const card = await new LocalRegistry(registry).get('tuned', out.version);
    assert.ok(card);
    const result = JSON.parse(
      readFileSync(join(registry, 'tuned', 'versions', String(out.version), 'result.json'), 'utf8'),
    );
    assert.ok(result.tuning.trials >= 1 && result.tuning.trials <= 4, `trials ${result.tuning.trials}`);
    // The budget, from the trainer's own record (a wall-clock bound on the whole command failed on a loaded machine):
    // no trial starts once its 10 s have passed.
    assert.ok(
      result.tuning.last_trial_started_after >= 0 && result.tuning.last_trial_started_after < 10.5,
      `the last trial started ${result.tuning.last_trial_started_after} s into a 10-s budget`,
    );
    const first = await new LocalRegistry(registry).get('tuned', 1);
    const sorted = (o: Record<string, unknown> | undefined) => JSON.stringify(Object.entries(o ?? {}).sort());
    if (sorted(card.params) !== sorted(first?.params)) {
      // Another configuration than the champion's: it was refitted on these folds and compared.
      const s = card.summary as { per_pair: Record<string, { mae_champion: number | null }> };
      assert.ok(typeof s.per_pair['BTC/USDT']?.mae_champion === 'number');
      assert.ok(out.reasons.some((r: string) => /vs champion v1 refitted on the same folds/.test(r)));
    } else assert.ok(out.reasons.some((r: string) => /same configuration as champion v1/.test(r)));
  });
});

describe('cryptocast train with the MLflow registry (a real server)', () => {
  const BASE = process.env.CRYPTOCAST_TEST_MLFLOW ?? 'http://127.0.0.1:5500';
  before(() => {
    if (!process.env.CRYPTOCAST_TEST_MLFLOW)
      execFileSync('bash', [join(ROOT, 'scripts', 'mlflow.sh'), 'start'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
  });

  it('registers the version with its artifacts in MLflow, sets the alias there, and models list reads it back', async () => {
    const name = `cc-train-${process.pid}-${Date.now().toString(36)}`;
    const reg = ['--registry', `mlflow+${BASE}`, '--name', name];
    const data = days(['BTCUSDT'], MARCH.slice(0, 14));
    const out = JSON.parse(
      (
        await cc([
          'train',
          '--candles',
          data,
          '--tune-seconds',
          '0',
          '--folds',
          '3',
          '--json',
          '--gate-alpha',
          '1',
          ...reg,
        ])
      ).stdout,
    );
    assert.equal(out.version, 1);
    const res = await fetch(`${BASE}/api/2.0/mlflow/registered-models/get?name=${encodeURIComponent(name)}`);
    const rm = ((await res.json()) as { registered_model: { aliases: { alias: string; version: string }[] } })
      .registered_model;
    const alias = out.promoted ? 'champion' : 'challenger';
    assert.deepEqual(
      rm.aliases.map((a: { alias: string; version: string }) => [a.alias, a.version]),
      [[alias, '1']],
    );
    const list = JSON.parse((await cc(['models', 'list', '--json', ...reg])).stdout);
    assert.equal(list[alias], 1);
    assert.equal(list.versions.length, 1);
    const dir = scratchDir('cc-mlflow-dl-');
    const { openRegistry } = await import('../../src/training/registry/open.ts');
    const r = await openRegistry(`mlflow+${BASE}`);
    const files = await r.download(name, 1, dir);
    await r.close();
    const model = JSON.parse(readFileSync(files['model.json']!, 'utf8'));
    assert.ok(model.learner.gradient_booster.model.trees.length >= 1);
    assert.match(readFileSync(files['report.md']!, 'utf8'), /^# /);
  });
});
