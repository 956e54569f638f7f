import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { scratchDir } from '../support/scratch.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The backend's process killed by SIGKILL (the OOM killer, `kill -9`, a node's eviction) while the model's process is
 * wedged in a call. The model's process left when the IPC channel closed ('disconnect'), an event its blocked thread
 * never ran: it stayed, orphaned, with the weights in its memory, until someone killed it by hand. The backend here
 * runs in a process of its own (the one killed); the hang is real, the test hook blocking the model process's thread.
 */
const SCRIPT = `
import { LocalLlmBackend } from ${JSON.stringify(join(ROOT, 'src/sentiment/local-llm.ts'))};
const backend = new LocalLlmBackend({ threads: 1 });
await backend.warmUp();
process.stdout.write(JSON.stringify({ worker: backend.workerPid }) + '\\n');
backend.hangNextCallForTest();
// No deadline: nothing in this process gives up on the call, only its death ends it.
void backend.score('Ethereum exchange hacked, $200m stolen').catch(() => {});
`;

/** Gone: no such process, or a zombie (dead, waiting for a reaper that may never come in a container). */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('local backend: its process killed while the model process is wedged in a call', () => {
  let workerPid: number | undefined;
  after(() => {
    // The fault left a process holding the weights: never leave it behind the test.
    if (workerPid && !isGone(workerPid)) process.kill(workerPid, 'SIGKILL');
  });

  it('takes the model process with it', async () => {
    // A file, not \`node -e\`: node-llama-cpp checks its binary in a child started with this process's flags.
    const script = join(scratchDir('llm-orphan-'), 'parent.ts');
    writeFileSync(script, SCRIPT);
    const parent = spawn(process.execPath, [script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    parent.stdout.on('data', (c) => (stdout += c));
    parent.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      parent.once('exit', (code, signal) => resolve(signal ?? code)),
    );
    try {
      const { worker } = await waitFor(
        "the model's process to be loaded",
        () => (stdout.includes('\n') ? JSON.parse(stdout.split('\n')[0]!) : {}) as { worker?: number },
        (v) => typeof v.worker === 'number' || parent.exitCode !== null,
        { timeoutMs: 120_000 },
      );
      assert.ok(worker !== undefined, `the backend's process ended: ${stderr.slice(-2_000)}`);
      workerPid = worker;
      // The model's process says so (its stderr is the backend's) right before it blocks for ever.
      await waitFor(
        'the model process to block in its call',
        () => stderr,
        (s) => s.includes('blocks for ever'),
        { timeoutMs: 60_000 },
      );
      assert.equal(isGone(worker), false, 'the model process is there, wedged');
    } finally {
      parent.kill('SIGKILL');
    }
    assert.equal(await settlesWithin(exited, 30_000, 'the parent to die'), 'SIGKILL');
    await waitFor('the wedged model process to be gone', () => isGone(workerPid!), Boolean, {
      timeoutMs: 15_000,
    });
  });
});
