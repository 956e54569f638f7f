import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI } from '../../support/cli.ts';

describe('stdout closed by its reader (`cryptocast schemas | head -2`)', () => {
  it('ends quietly with 141, as a SIGPIPE does, not with the stack of a failed write', async () => {
    const child = spawn(CLI, ['schemas'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Close the reading end before the command writes (it starts in hundreds of ms): its write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(stderr, '', 'nothing on stderr');
    assert.equal(code, 141);
  });
});
