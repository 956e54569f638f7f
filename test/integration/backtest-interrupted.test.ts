import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `cryptocast backtest` stopped by a signal: it reads its candles and scores them in chunks between which the event
 * loop turns, so SIGINT/SIGTERM is heard at the next chunk; it ends with CC_ERR_INTERRUPTED (exit 130) and leaves
 * no --predictions file, not even its temporary one. Its scoring ran in one synchronous stretch: the signal killed
 * it, with no word, or was heard only after minutes. The default champion (this checkout's registry) on 60 days of
 * the shared Binance klines, two pairs (172,000 rows: several seconds of scoring on this machine).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const REGISTRY = join(ROOT, '.data', 'registry');
const KLINES = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const DAYS = 60;

describe('cryptocast backtest interrupted', () => {
  const dir = scratchDir('cc-backtest-stop-');
  const candles = join(dir, 'candles');

  before(() => {
    // The first 60 days of March–April 2022 of each pair, linked (the reader takes a folder of kline zips).
    for (const symbol of ['BTCUSDT', 'ETHUSDT']) {
      mkdirSync(join(candles, symbol), { recursive: true });
      const files = readdirSync(join(KLINES, symbol))
        .filter((f) => /-2022-0[34]-\d\d\.zip$/.test(f))
        .sort()
        .slice(0, DAYS);
      assert.equal(files.length, DAYS);
      for (const f of files) symlinkSync(join(KLINES, symbol, f), join(candles, symbol, f));
    }
  });

  const start = (predictions: string, more: string[] = []) => {
    const run = runCli([
      'backtest',
      '--registry',
      REGISTRY,
      '--model',
      'champion',
      '--candles',
      candles,
      '--predictions',
      predictions,
      ...more,
    ]);
    let ended = false;
    void run.exited.then(() => {
      ended = true;
    });
    /** Waits for a line of its progress on stderr; fails at once, naming it, if the command ends without it. */
    const line = async (what: string, re: RegExp) => {
      await waitFor(what, () => ended || re.test(run.stderr()), Boolean, { timeoutMs: 180_000, everyMs: 20 });
      if (!re.test(run.stderr())) assert.fail(`the command ended (${await run.exited}) without ${what}`);
    };
    return { ...run, line };
  };

  /** The scratch folder holds the candles and nothing else: no predictions file, no temporary one. */
  const nothingWritten = () => assert.deepEqual(readdirSync(dir), ['candles']);

  it('SIGINT while the model scores: exit 130, the catalogued line, no predictions file, not one stage more', async () => {
    const predictions = join(dir, 'predictions.csv');
    const run = start(predictions);
    // Its progress (stderr, a line per stage when not on a terminal): the model's first chunk of rows is scored.
    await run.line('the scoring to start', /^model \d+\/\d+: rows$/m);
    run.child.kill('SIGINT');
    const code = await run.exited;
    const stderr = run.stderr();
    assert.equal(code, 130, stderr);
    assert.match(
      stderr,
      /interrupted: the backtest was stopped; no predictions written to .*predictions\.csv.*\[CC_ERR_INTERRUPTED\]/,
    );
    // Stopped at its next chunk: the linear baseline (the next stage) never started.
    assert.doesNotMatch(stderr, /^linear /m, stderr);
    nothingWritten();
  });

  it('SIGTERM while the candles are read: exit 130, no predictions file', async () => {
    const predictions = join(dir, 'predictions.csv');
    const run = start(predictions);
    await run.line('the reading to start', /^candles \d+\/\d+: /m);
    run.child.kill('SIGTERM');
    const code = await run.exited;
    const stderr = run.stderr();
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: the backtest was stopped.*\[CC_ERR_INTERRUPTED\]/);
    // Stopped before the last file: the dataset was never complete (its summary line never printed).
    assert.doesNotMatch(stderr, /^backtest of /m, stderr);
    nothingWritten();
  });

  it('SIGINT during the final evaluation: exit 130 at its next slice, not at its end; no predictions file', async () => {
    const predictions = join(dir, 'predictions.csv');
    const run = start(predictions);
    // The evaluation's first line: the scorecards, per-day and per-decile breakdowns start (one synchronous stretch
    // before: the signal was heard when it ended, seconds later here and 44–105 s on 14 months).
    await run.line('the evaluation to start', /^evaluation 0\/1: scoring$/m);
    const signalled = performance.now();
    run.child.kill('SIGINT');
    const code = await run.exited;
    const seconds = (performance.now() - signalled) / 1000;
    const stderr = run.stderr();
    assert.equal(code, 130, stderr);
    assert.match(
      stderr,
      /interrupted: the backtest was stopped; no predictions written to .*predictions\.csv.*\[CC_ERR_INTERRUPTED\]/,
    );
    // Stopped within the evaluation: it never reported its end.
    assert.doesNotMatch(
      stderr,
      /^evaluation 1\/1/m,
      `${stderr}\n(ended ${seconds.toFixed(1)} s after the signal)`,
    );
    nothingWritten();
  });

  it('SIGTERM while --figures are drawn: exit 130, the predictions kept, no figure and no work folder left', async () => {
    const predictions = join(dir, 'predictions.csv');
    const figures = join(dir, 'figures');
    const run = start(predictions, ['--figures', figures]);
    // The predictions file is committed just before the drawing starts (the trainer's Python, seconds of matplotlib).
    await run.line('the predictions to be written', /out-of-sample predictions written to /);
    run.child.kill('SIGTERM');
    const code = await run.exited;
    const stderr = run.stderr();
    assert.equal(code, 130, stderr);
    assert.match(
      stderr,
      /interrupted: the backtest was stopped; its predictions were written to .*predictions\.csv before.*\[CC_ERR_INTERRUPTED\]/,
    );
    assert.doesNotMatch(stderr, /^figures: /m, stderr);
    // The drawing was stopped, not awaited: no figure of a run that did not finish, nor its inputs or work folder.
    assert.deepEqual(readdirSync(figures), [], stderr);
    assert.deepEqual(readdirSync(dir).sort(), ['candles', 'figures', 'predictions.csv']);
    rmSync(predictions);
    rmSync(figures, { recursive: true });
  });
});
