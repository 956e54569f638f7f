import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Progress, runTrainer } from '../../../src/training/python-trainer.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * The trainer's stdout is read line by line as JSON events. A line that parses but is not an object (`null`, a number,
 * a list) used to be read as one (`ev.event` on null): a TypeError thrown in the stream's listener, uncaught, which
 * ended the whole process instead of the fit going on or failing with a clear error.
 */
describe('runTrainer: stdout lines that are JSON but not events', () => {
  it('null, numbers, strings and lists are passed on as log lines; progress events still arrive; the fit completes', async () => {
    const dir = scratchDir('cc-trainer-lines-');
    const out = join(dir, 'out');
    const python = join(dir, 'python');
    // A stand-in trainer: prints odd lines and one progress event, then writes an empty result (0 predictions).
    writeFileSync(
      python,
      [
        '#!/bin/sh',
        'out="$9"',
        "echo 'null'",
        "echo '42'",
        'echo \'"text"\'',
        "echo '[1,2]'",
        'echo \'{"event":"progress","stage":"folds","done":1,"total":2,"detail":"fold 1"}\'',
        ': > "$out/oos.f64"',
        'echo \'{"params":{},"tuning":null,"folds":[],"xgboost":"test","seconds":0}\' > "$out/result.json"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const saved = process.env.CRYPTOCAST_PYTHON;
    process.env.CRYPTOCAST_PYTHON = python;
    const logs: string[] = [];
    const progress: Progress[] = [];
    try {
      mkdirSync(out);
      const { oos, result } = await runTrainer(
        dir,
        {
          horizonMs: 300_000,
          folds: [],
          quantiles: [0.1, 0.9],
          seed: 1,
          validationFraction: 0.2,
          final: false,
          figures: false,
        },
        out,
        (p) => progress.push(p),
        (m) => logs.push(m),
      );
      assert.equal(oos.row.length, 0);
      assert.equal(result.xgboost, 'test');
    } finally {
      if (saved === undefined) delete process.env.CRYPTOCAST_PYTHON;
      else process.env.CRYPTOCAST_PYTHON = saved;
    }
    assert.deepEqual(logs, ['null', '42', '"text"', '[1,2]']);
    assert.deepEqual(
      progress.map((p) => p.detail),
      ['fold 1'],
    );
  });
});
