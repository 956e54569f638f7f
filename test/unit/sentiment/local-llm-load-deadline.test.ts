import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SentimentError } from '../../../src/sentiment/labels.ts';
import { LocalLlmBackend } from '../../../src/sentiment/local-llm.ts';
import { scratchDir } from '../../support/scratch.ts';
import { settlesWithin } from '../../support/wait.ts';

/**
 * The local model's load is time-limited. Weights that never arrive — here a FIFO nobody writes, as a stalled network
 * mount behaves: reading it blocks — held warmUp(), and the stage waiting on it, for ever.
 */
describe('local backend: a load that hangs', () => {
  it('fails with a clear error at the load deadline', async () => {
    const dir = scratchDir('cc-llm-fifo-');
    const fifo = join(dir, 'stalled.gguf');
    execFileSync('mkfifo', [fifo]);
    const backend = new LocalLlmBackend({ modelPath: fifo, headPath: null, loadTimeoutMs: 2_000 });
    try {
      const err = await settlesWithin(
        backend.warmUp().then(
          () => undefined,
          (e: unknown) => e,
        ),
        30_000,
        'the load to give up',
      );
      assert.ok(err instanceof SentimentError, String(err));
      assert.equal(err.kind, 'unavailable');
      assert.match(err.message, /the local model .*stalled\.gguf did not load within 2 s/);
    } finally {
      // Let the hung read end (EOF), so nothing is left blocked in this process: the path goes first (no later open),
      // then a writer opens and closes the FIFO if a reader waits on it.
      const gone = `${fifo}.gone`;
      renameSync(fifo, gone);
      try {
        closeSync(openSync(gone, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: nobody reads it.
      }
    }
  });
});
