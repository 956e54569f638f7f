import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { runCli } from '../support/cli.ts';
import { BINANCE_CAPTURE, KRAKEN_REST_TRADES } from '../support/data.ts';
import { countsInNewProcess } from '../support/duckdb-file.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The embedded default keeps what it reports: `cryptocast run` on a fresh DuckDB file, then the file read by a new
 * process, holds every feature row and prediction the run said it stored — also after a kill -9 at a random point
 * (everything reported before the kill is there) followed by a complete run (the same final data as an
 * uninterrupted run, nothing doubled). Regression test for the two DuckDB instances that one process opened on one
 * file, where the last checkpoint won and every prediction was lost.
 */
const FEATURES = { table: 'fs_technical_v1', key: 'pair, window_end' };
const PREDICTIONS = { table: 'predictions_v1', key: 'pair, window_end, model_version' };

describe('cryptocast run on the embedded default: nothing reported as stored is lost', () => {
  const env: NodeJS.ProcessEnv = {};
  before(async () => {
    // A champion of the test's own (a few stumps on real columns), so the test depends on no trained model.
    const dir = scratchDir('cc-durable-registry-');
    const ret = MODEL_COLUMNS.indexOf('ret_1m');
    const model = stumpModel(MODEL_COLUMNS.length, [
      { f: Math.max(ret, 0), c: 0, a: -0.4, b: 0.6 },
      { f: 1, c: 0.5, a: 0.1, b: -0.2 },
    ]);
    await registerModel(new LocalRegistry(dir), 'cryptocast-price', MODEL_COLUMNS, {
      model,
      p10: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: -8, b: -6 }]),
      p90: stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a: 6, b: 8 }]),
    });
    env.CRYPTOCAST_REGISTRY = dir;
    env.CRYPTOCAST_MODEL_NAME = 'cryptocast-price';
  });

  const fresh = () => join(scratchDir('cc-durable-'), 'cryptocast.duckdb');
  const runArgs = (file: string, extra: string[] = []) => [
    'run',
    '--json',
    '--port',
    '0',
    '--store',
    `duckdb:${file}`,
    '--data',
    `${BINANCE_CAPTURE},${KRAKEN_REST_TRADES}`,
    ...extra,
  ];
  let clean: { featureRows: number; predictions: number } | undefined;

  it('a complete run: a new process finds every feature row and prediction the run reported', async () => {
    const file = fresh();
    const run = runCli(runArgs(file), env);
    const done = await run.waitFor((e) => e.event === 'done');
    assert.equal(await run.exited, 0, run.stderr());
    assert.ok((done.predictions as number) > 300, `predictions reported: ${done.predictions}`);
    assert.equal(done.featureRows, done.featureVectors, 'every feature vector is stored');
    const f = countsInNewProcess(file, FEATURES.table, FEATURES.key);
    const p = countsInNewProcess(file, PREDICTIONS.table, PREDICTIONS.key);
    assert.deepEqual(f, { rows: done.featureRows, keys: done.featureRows });
    assert.deepEqual(p, { rows: done.predictions, keys: done.predictions });
    clean = { featureRows: done.featureRows as number, predictions: done.predictions as number };
  });

  // Random kill points: SIGKILL from outside at a random moment of a paced replay (two draws), and the narrowest
  // window from inside (a prediction batch stored, the process killed before anything else).
  const trials: { name: string; fault?: string }[] = [
    { name: 'kill -9 from outside at a random moment (1)' },
    { name: 'kill -9 from outside at a random moment (2)' },
    {
      name: 'kill -9 right after a prediction batch was stored',
      fault: `predictor:stored:${2 + Math.floor(Math.random() * 20)}`,
    },
  ];
  for (const trial of trials) {
    it(`${trial.name}, then a complete run: everything reported is there, final data = an uninterrupted run`, async () => {
      assert.ok(clean, 'needs the complete run above');
      const file = fresh();
      // Kraken's 7 hours at 5,000× take about 5 s: time for a kill in the middle.
      const crashed = runCli(runArgs(file, ['--data', KRAKEN_REST_TRADES, '--speed', '5000']), {
        ...env,
        ...(trial.fault ? { CRYPTOCAST_FAULT: trial.fault } : {}),
      });
      if (!trial.fault) {
        // A random number of durable-progress reports first (each is a state the run claimed), then the kill.
        const reports = 1 + Math.floor(Math.random() * 6);
        await crashed.waitFor(
          () =>
            crashed.events.filter((e) => e.event === 'stored').length >= reports ||
            crashed.events.some((e) => e.event === 'done'),
        );
        crashed.child.kill('SIGKILL');
      }
      const how = await crashed.exited;
      if (how === 0) return assert.fail('the run ended before the kill: raise the replay length');
      assert.equal(how, 'SIGKILL', crashed.stderr());
      const reported = crashed.events.filter((e) => e.event === 'stored').at(-1) ?? {
        featureRows: 0,
        predictions: 0,
      };
      const f = countsInNewProcess(file, FEATURES.table, FEATURES.key);
      const p = countsInNewProcess(file, PREDICTIONS.table, PREDICTIONS.key);
      assert.ok(
        f.rows >= (reported.featureRows as number),
        `feature rows ${f.rows} < reported ${reported.featureRows}`,
      );
      assert.ok(
        p.rows >= (reported.predictions as number),
        `predictions ${p.rows} < reported ${reported.predictions}`,
      );
      assert.equal(f.rows, f.keys);
      assert.equal(p.rows, p.keys);

      const complete = runCli(runArgs(file), env);
      const done = await complete.waitFor((e) => e.event === 'done');
      assert.equal(await complete.exited, 0, complete.stderr());
      assert.deepEqual(countsInNewProcess(file, FEATURES.table, FEATURES.key), {
        rows: clean.featureRows,
        keys: clean.featureRows,
      });
      assert.deepEqual(countsInNewProcess(file, PREDICTIONS.table, PREDICTIONS.key), {
        rows: clean.predictions,
        keys: clean.predictions,
      });
      assert.equal(done.predictions, clean.predictions);
    });
  }

  it('a second run on the file while the first runs: refused at once (CC_ERR_STORE_LOCKED); the first keeps all it reports', async () => {
    const file = fresh();
    // Paced (about 17 s), so that the second comes while the first writes, even when starting a process takes
    // seconds on a busy machine.
    const first = runCli(runArgs(file, ['--data', KRAKEN_REST_TRADES, '--speed', '1500']), env);
    await first.waitFor((e) => e.event === 'stored' && (e.featureRows as number) > 0);
    const second = runCli(runArgs(file), env);
    assert.equal(await second.exited, 2, second.stderr());
    assert.match(
      second.stderr(),
      /cryptocast: the store file .*cryptocast\.duckdb is in use by another process \[CC_ERR_STORE_LOCKED\]\n {2}hint: /,
    );
    assert.doesNotMatch(
      second.stderr(),
      /dashboard on|\n\s+at /,
      'refused before anything started, no stack trace',
    );
    assert.equal(second.events.length, 0, 'nothing reported as stored by the refused run');
    assert.ok(
      !first.events.some((e) => e.event === 'done'),
      'the first was still running: raise the replay length',
    );
    const done = await first.waitFor((e) => e.event === 'done');
    assert.equal(await first.exited, 0, first.stderr());
    assert.deepEqual(countsInNewProcess(file, FEATURES.table, FEATURES.key), {
      rows: done.featureRows,
      keys: done.featureRows,
    });
    assert.deepEqual(countsInNewProcess(file, PREDICTIONS.table, PREDICTIONS.key), {
      rows: done.predictions,
      keys: done.predictions,
    });
  });
});
