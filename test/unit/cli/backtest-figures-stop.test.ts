import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backtestCommand } from '../../../src/cli/commands/backtest.ts';
import { evaluateCommand } from '../../../src/cli/commands/train.ts';
import { ERR } from '../../../src/core/errors.ts';
import { trainerPython } from '../../../src/training/python-trainer.ts';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import { registerModel, stumpModel } from '../../support/champion.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * `cryptocast backtest --figures` stopped (SIGINT) after its drawing passed its last check of the stop, while the
 * figures are renamed into place: they are all there, and the command ended saying nothing of them (evaluate said
 * "no figures"). The stop is injected at that very point — the stop listener called as the drawing's last check of the
 * signal passes, its files drawn — with a stand-in for the trainer's Python that draws two files, not a signal timed
 * from outside.
 */
describe('backtest and evaluate --figures stopped while their figures are put in place', () => {
  const dir = scratchDir('cc-backtest-figures-stop-');
  const python = join(dir, 'python');
  // `python -m cryptocast_trainer figures --input WORK --out WORK`: two figures in WORK, their names on stdout; any
  // other call (evaluate's training) goes to the trainer's Python.
  writeFileSync(
    python,
    `#!/bin/sh\nif [ "$3" != figures ]; then exec '${trainerPython()}' "$@"; fi\n` +
      'printf x > "$7/a.png"\nprintf x > "$7/b.png"\nprintf "a.png\\nb.png\\n"\n',
  );
  chmodSync(python, 0o755);
  const before = process.env.CRYPTOCAST_PYTHON;
  const check = AbortSignal.prototype.throwIfAborted;
  after(() => {
    AbortSignal.prototype.throwIfAborted = check;
    if (before === undefined) delete process.env.CRYPTOCAST_PYTHON;
    else process.env.CRYPTOCAST_PYTHON = before;
  });

  /** `days` of minutes of BTC/USDT, a close wandering around 100, as a candles CSV. */
  function candlesFile(days: number): string {
    const file = join(dir, `c-${days}.csv`);
    const rows = ['timestamp,open,high,low,close,volume'];
    for (let i = 0, close = 100; i < days * 1_440; i++) {
      close += Math.sin(i / 7) * 0.3 + Math.sin(i / 113) * 0.1;
      rows.push(`${1_700_000_040 + i * 60},${close},${close + 0.5},${close - 0.5},${close},1`);
    }
    writeFileSync(file, `${rows.join('\n')}\n`);
    return file;
  }

  /**
   * Calls the command's own stop listener (onStopSignal's, the last one added), as SIGINT does, right after the first
   * check of a stop that passes once the drawing's files are in its work folder in `figures`: the drawing's last check
   * before the renames. Returns whether it did.
   */
  function stopAfterTheDrawing(figures: string): () => boolean {
    const drawn = () =>
      existsSync(figures) &&
      readdirSync(figures).some((d) => d.startsWith('.figures-') && existsSync(join(figures, d, 'b.png')));
    let stopped = false;
    AbortSignal.prototype.throwIfAborted = function (this: AbortSignal) {
      check.call(this);
      if (!stopped && drawn()) {
        stopped = true;
        (process.listeners('SIGINT').at(-1) as (s: NodeJS.Signals) => void)('SIGINT');
      }
    };
    return () => stopped;
  }

  /** The error `p` rejects with (it must). */
  const failureOf = (p: Promise<void>) =>
    p.then(
      () => assert.fail('the command ended as if not stopped'),
      (err: unknown) => err as Error & { code?: string; exitCode?: number },
    );

  it('backtest: ends interrupted (exit 130) saying the figures were drawn, and they are in place', async () => {
    const registry = new LocalRegistry(join(dir, 'registry'));
    const stump = stumpModel(1, [{ f: 0, c: 0, a: -1, b: 1 }]);
    await registerModel(registry, 'm', ['ret_1m'], { model: stump, p10: stump, p90: stump });
    const figures = join(dir, 'backtest-figures');
    process.env.CRYPTOCAST_PYTHON = python;
    const stopped = stopAfterTheDrawing(figures);
    const failure = await failureOf(
      backtestCommand({
        model: 'champion',
        name: 'm',
        registry: join(dir, 'registry'),
        candles: candlesFile(2),
        pair: 'BTC/USDT',
        figures,
      }),
    );
    assert.ok(stopped(), 'the stop was injected after the drawing');
    assert.equal(failure.code, ERR.INTERRUPTED.code, failure.message);
    assert.equal(failure.exitCode, 130);
    assert.deepEqual(readdirSync(figures).sort(), ['a.png', 'b.png']);
    assert.match(
      failure.message,
      /interrupted: the backtest was stopped; its figures were drawn into .*backtest-figures before/,
    );
  });

  it('evaluate: the same, not "no figures"', async () => {
    const figures = join(dir, 'evaluate-figures');
    const predictions = join(dir, 'oos.csv');
    process.env.CRYPTOCAST_PYTHON = python;
    const stopped = stopAfterTheDrawing(figures);
    const failure = await failureOf(
      evaluateCommand({
        candles: candlesFile(4),
        pair: 'BTC/USDT',
        horizon: '5m',
        folds: '2',
        mode: 'expanding',
        tuneSeconds: '0',
        trials: '1',
        seed: '42',
        predictions,
        figures,
      }),
    );
    assert.ok(stopped(), 'the stop was injected after the drawing');
    assert.equal(failure.code, ERR.INTERRUPTED.code, failure.message);
    assert.deepEqual(readdirSync(figures).sort(), ['a.png', 'b.png']);
    assert.ok(existsSync(predictions));
    assert.match(
      failure.message,
      /interrupted: the evaluation was stopped; its predictions were written to .*oos\.csv and its figures were drawn into .*evaluate-figures before$/,
    );
  });
});
