import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERR } from '../../../src/core/errors.ts';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import { registerModel, stumpModel } from '../../support/champion.ts';
import { exitedWithin, runCli } from '../../support/cli.ts';
import { scratchDir } from '../../support/scratch.ts';

describe('backtest refuses a model that does not fit the question (docs/training.md: CC_ERR_MODEL_MISMATCH)', () => {
  it('another --horizon than the model’s: CC_ERR_MODEL_MISMATCH, exit 2, a hint about the horizon', async () => {
    const dir = scratchDir('cc-backtest-');
    const registry = new LocalRegistry(join(dir, 'registry'));
    const stump = stumpModel(1, [{ f: 0, c: 0, a: -1, b: 1 }]);
    await registerModel(registry, 'm', ['ret_1m'], { model: stump, p10: stump, p90: stump });
    const candles = join(dir, 'c.csv');
    writeFileSync(candles, 'timestamp,open,high,low,close,volume\n1700000000,1,1,1,1,1\n');
    const args = ['backtest', '--registry', join(dir, 'registry'), '--name', 'm', '--model', 'champion'];
    const run = runCli([...args, '--candles', candles, '--pair', 'BTC/USDT', '--horizon', '10m']);
    const code = await exitedWithin(run, 30_000, 'backtest --horizon 10m to be refused');
    const stderr = run.stderr();
    assert.equal(code, ERR.MODEL_MISMATCH.exitCode, stderr);
    assert.match(stderr, /predicts 5 minutes ahead, not 10m.*\[CC_ERR_MODEL_MISMATCH\]/, stderr);
    assert.match(stderr, /hint: leave --horizon out/, stderr);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });
});
