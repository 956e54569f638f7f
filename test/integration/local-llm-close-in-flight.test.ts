import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scratchDir } from '../support/scratch.ts';
import { settlesWithin } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The local backend closed while an embedding runs (a stop in the middle of an item: the scorer gives way at once, then
 * `service news-signals` closes the scorer). Disposing the embedding context under the native call crashed the
 * process — SIGSEGV, in about half the runs here (4 of 8; this test's 5th run with the old code) — so a stopped service
 * exited by a signal, not 0. Each run is a process of its own (a crash would take the test runner with it); several,
 * as the crash is a race (the old code can pass by luck; the fixed one never crashes).
 */
const SCRIPT = `
import { LocalLlmBackend } from ${JSON.stringify(join(ROOT, 'src/sentiment/local-llm.ts'))};
const backend = new LocalLlmBackend({ threads: 1 });
await backend.warmUp();
const text = 'Bitcoin miners sell reserves as fees fall and the price slides. '.repeat(15);
// How long an embedding takes here and now, then a close a third of the way into the next one.
const t0 = performance.now();
await backend.score(text + ' once');
const tookMs = performance.now() - t0;
const answer = backend.score(text).catch((e) => e);
await new Promise((r) => setTimeout(r, tookMs / 3));
await backend.close();
await answer;
`;

describe('local backend: closed while the model is embedding a text', () => {
  it('waits for the call in flight instead of crashing the process', async () => {
    // A file, not \`node -e\`: node-llama-cpp checks its binary in a child started with this process's flags.
    const script = join(scratchDir('llm-close-'), 'close-in-flight.ts');
    writeFileSync(script, SCRIPT);
    for (let run = 1; run <= 6; run++) {
      const child = spawn(process.execPath, [script], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      const [code, signal] = await settlesWithin(
        new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
          child.once('exit', (c, s) => resolve([c, s])),
        ),
        120_000,
        `run ${run} to end`,
        () => child.kill('SIGKILL'),
      );
      assert.deepEqual({ run, code, signal }, { run, code: 0, signal: null }, stderr.slice(-2_000));
    }
  });
});
