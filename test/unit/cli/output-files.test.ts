import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERR } from '../../../src/core/errors.ts';
import { exitedWithin, runCli } from '../../support/cli.ts';
import { scratchDir } from '../../support/scratch.ts';

describe('candles and features --output: written whole or not at all', () => {
  it('candles that all fail (no pair) are refused with CC_ERR_INPUT and leave no output file', async () => {
    const dir = scratchDir('cc-features-');
    const candles = join(dir, 'c.csv');
    writeFileSync(
      candles,
      'timestamp,open,high,low,close,volume\n1700000000,1,1,1,1,1\n1700000060,1,1,1,1,1\n',
    );
    const output = join(dir, 'f.csv');
    const run = runCli(['features', '--candles', candles, '--output', output]);
    const code = await exitedWithin(run, 30_000, 'features to be refused');
    assert.equal(code, ERR.INPUT.exitCode, run.stderr());
    assert.match(run.stderr(), /no feature rows from .*\[CC_ERR_INPUT\]/);
    assert.equal(existsSync(output), false, 'no header-only file left behind');
  });

  it('candles: a trades file whose rows all fail is refused with CC_ERR_INPUT and leaves no output file', async () => {
    const dir = scratchDir('cc-candles-');
    const trades = join(dir, 't.csv');
    writeFileSync(trades, 'timestamp,price,amount\n1700000000,abc,1\n');
    const output = join(dir, 'c.csv');
    const run = runCli(['candles', '--input', trades, '--pair', 'BTC/USD', '--output', output]);
    const code = await exitedWithin(run, 30_000, 'candles to be refused');
    assert.equal(code, ERR.INPUT.exitCode, run.stderr());
    assert.match(run.stderr(), /no trades in .*\[CC_ERR_INPUT\]/);
    assert.equal(existsSync(output), false, 'no header-only file left behind');
  });
});
