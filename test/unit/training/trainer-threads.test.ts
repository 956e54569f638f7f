import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { trainerPython } from '../../../src/training/python-trainer.ts';
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

/**
 * The threads a study module of python/cryptocast_trainer fits with when its spec (written by hand or by a bench
 * script) gives none, run pinned to CPU 0 (one usable CPU). `cadence.main` runs on a three-row dataset, its fit
 * replaced by one that records the thread count it was handed and stops the run.
 */
function cadenceThreadsOnOneCpu(): number {
  const dir = join(scratch, 'cadence');
  const script = `
import json, sys
from pathlib import Path
import numpy as np
import cryptocast_trainer.cadence as cadence

d = Path(sys.argv[1])
(d / "data").mkdir(parents=True, exist_ok=True)
H = 3_600_000.0
t = np.array([0.0, H, 2 * H])
np.zeros(3, dtype="<f4").tofile(d / "data" / "X.f32")
np.column_stack([t, np.zeros(3), np.ones(3), np.zeros(3)]).astype("<f8").tofile(d / "data" / "meta.f64")
(d / "data" / "dataset.json").write_text(json.dumps({"n": 3, "columns": ["x"], "X": "X.f32", "meta": "meta.f64"}))
(d / "spec.json").write_text(json.dumps({"horizonMs": 300000, "from": 2 * H, "to": 3 * H, "seed": 42,
    "schedules": [{"name": "s", "everyHours": 1, "days": None}]}))

class Fitted(Exception):
    pass

def recording_fit(xgb, params, X, y, fit_idx, val_idx, threads, seed):
    print(json.dumps({"threads": threads}))
    raise Fitted()

cadence.inner_split = lambda train, t, fraction, horizon: (train, train)
cadence.fit_one = recording_fit
try:
    cadence.main(["--dataset", str(d / "data"), "--spec", str(d / "spec.json"), "--out", str(d / "out")])
except Fitted:
    pass
`;
  const r = spawnSync('taskset', ['-c', '0', trainerPython(), '-c', script, dir], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: join(ROOT, 'python') },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!).threads;
}

describe('the study modules (cadence.py): the same default as the trainer', {
  skip: !taskset && 'taskset unavailable',
}, () => {
  it('a spec without threads fits on the usable CPUs (1 when pinned to one), not os.cpu_count()', () => {
    assert.equal(cadenceThreadsOnOneCpu(), 1);
  });
});
