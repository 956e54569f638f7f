import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { modelThreads } from '../../../src/sentiment/local-llm.ts';

describe('local backend: the model threads are bounded by the CPUs the process may use', () => {
  it('a pod limited to 1 CPU on a 32-core node runs 1 thread, not the node’s math cores', () => {
    assert.equal(modelThreads(16, {}, 1), 1);
    assert.equal(modelThreads(2, {}, 8), 2, 'never more than the math cores (spinning threads)');
  });

  it('CRYPTOCAST_LLM_THREADS (the chart: the CPU limit) wins; a bad value is refused by name', () => {
    assert.equal(modelThreads(16, { CRYPTOCAST_LLM_THREADS: '3' }, 1), 3);
    assert.throws(
      () => modelThreads(16, { CRYPTOCAST_LLM_THREADS: '0.5' }, 1),
      /CRYPTOCAST_LLM_THREADS must be a positive integer, got "0\.5"/,
    );
  });

  it('a process pinned to one CPU (taskset) gets 1 by default', (t) => {
    const probe = `import('./src/sentiment/local-llm.ts').then((m) => console.log(m.modelThreads(64)))`;
    const r = spawnSync('taskset', ['-c', '0', process.execPath, '-e', probe], {
      cwd: `${import.meta.dirname}/../../..`,
      encoding: 'utf8',
      env: { ...process.env, CRYPTOCAST_LLM_THREADS: '' },
    });
    if (r.error) return t.skip(`taskset unavailable: ${r.error.message}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1');
  });
});
