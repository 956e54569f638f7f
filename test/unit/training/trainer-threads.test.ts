import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { scratchDir } from '../../support/scratch.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const scratch = scratchDir('cryptocast-trainer-threads-');
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The spec runTrainer hands to Python, written by a Node pinned to CPU 0 (taskset: one usable CPU, as a pod's CPU
 * limit is one). The fit itself fails at once (no dataset); the spec file is what it would have read.
 */
function specWrittenOnOneCpu(threads?: number): unknown {
  const out = join(scratch, `out-${threads ?? 'default'}`);
  const probe = `
    import('./src/training/python-trainer.ts').then(async ({ runTrainer }) => {
      const fs = await import('node:fs');
      fs.mkdirSync(${JSON.stringify(out)}, { recursive: true });
      const spec = { horizonMs: 300000, folds: [], quantiles: [0.1, 0.9], seed: 42, validationFraction: 0.2,
        final: false, figures: false${threads === undefined ? '' : `, threads: ${threads}`} };
      await runTrainer('/nonexistent-dataset', spec, ${JSON.stringify(out)}).catch(() => {});
    });`;
  const r = spawnSync('taskset', ['-c', '0', process.execPath, '-e', probe], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(join(out, 'spec.json'), 'utf8')).threads;
}

const taskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

describe('the trainer: XGBoost threads bounded by the CPUs the process may use', {
  skip: !taskset && 'taskset unavailable',
}, () => {
  it('by default, the usable CPUs (1 when pinned to one), not Python’s os.cpu_count() (every CPU of the node)', () => {
    assert.equal(specWrittenOnOneCpu(), 1);
  });

  it('a caller’s thread count is kept', () => {
    assert.equal(specWrittenOnOneCpu(3), 3);
  });
});
