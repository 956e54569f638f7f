import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/**
 * A new, empty folder under the OS temp folder, removed with everything in it when this test process exits (each
 * test file runs in a process of its own). Tests made them with `mkdtempSync` and left them: a run of the suite left
 * about a thousand folders, some of them hundreds of MB, in /tmp.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (made.length === 0)
    process.on('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  made.push(dir);
  return dir;
}
