import { once } from 'node:events';
import {
  createWriteStream,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CryptocastError, ERR, fail } from './errors.ts';

/**
 * Files the CLI writes: never half-written, never over their own input.
 *
 * - `ensureDir` creates a folder and its missing parents one level at a time. (Node's `mkdirSync(…, {recursive})`
 *   spins forever on some paths, e.g. under /proc, in a synchronous loop that not even SIGTERM interrupts.)
 * - `AtomicFile` writes to a hidden temporary file beside the target and renames it over the target only when the
 *   writer commits: a failed or interrupted command leaves the previous file (or none), never a truncated one.
 * - `refuseOverwritingInput` stops a command up front when its output would be one of the files it reads.
 * - `checkOutputFile` stops a command up front when its output path is a folder (or under a file), before any work.
 */

const errCode = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Creates `dir` and its missing parents; a clear CC_ERR_OUTPUT error when it cannot. */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let cur = resolve(dir);
  for (;;) {
    try {
      if (!statSync(cur).isDirectory())
        throw fail(ERR.OUTPUT, `cannot create folder ${dir}: ${cur} is a file`);
      break;
    } catch (e) {
      if (errCode(e) !== 'ENOENT') {
        if (e instanceof CryptocastError) throw e;
        throw fail(ERR.OUTPUT, `cannot create folder ${dir}: ${cur}: ${errCode(e) ?? (e as Error).message}`);
      }
      missing.push(cur);
      const up = dirname(cur);
      if (up === cur) throw fail(ERR.OUTPUT, `cannot create folder ${dir}: no existing parent`);
      cur = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if (errCode(e) === 'EEXIST') continue;
      throw fail(ERR.OUTPUT, `cannot create folder ${d}: ${errCode(e) ?? (e as Error).message}`);
    }
  }
}

/** Same file: the same path once resolved, or (both existing) the same inode. */
export function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Throws CC_ERR_OUTPUT when `output` is one of `inputs` (by path or inode). */
export function refuseOverwritingInput(output: string, inputs: readonly string[], flag = '--output'): void {
  for (const input of inputs)
    if (sameFile(output, input))
      throw fail(ERR.OUTPUT, `${flag} ${output} is also an input file (${input}): it would be destroyed`, {
        hint: 'write the output to another file',
      });
}

/**
 * Throws CC_ERR_OUTPUT when `output` cannot be a file: it is a folder, or its folder cannot be created. Called by
 * every writer before it opens anything (and by commands before long work), so the user hears it in one line
 * instead of a rename's EISDIR stack, or an unhandled stream 'error' after a download.
 */
export function checkOutputFile(output: string, flag = '--output'): void {
  let isDir = false;
  try {
    isDir = statSync(output).isDirectory();
  } catch (e) {
    if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR')
      throw fail(ERR.OUTPUT, `${flag} ${output}: cannot use it: ${errCode(e) ?? (e as Error).message}`);
  }
  if (isDir)
    throw fail(ERR.OUTPUT, `${flag} ${output} is a folder: give a file path`, {
      hint: `e.g. ${join(output, 'out.csv')}`,
    });
  ensureDir(dirname(resolve(output)));
}

/**
 * A file written in full or not at all. `stream` goes to `.<name>.<pid>.<n>.tmp` in the target's folder (same file
 * system, so the rename is atomic); `commit` flushes, closes and renames it over the target; `abort` removes it.
 */
export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  readonly stream: WriteStream;
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private static counter = 0;

  constructor(path: string) {
    this.path = resolve(path);
    checkOutputFile(path, 'output');
    this.tempPath = join(
      dirname(this.path),
      `.${basename(this.path)}.${process.pid}.${AtomicFile.counter++}.tmp`,
    );
    this.stream = createWriteStream(this.tempPath, { flags: 'wx' });
    // An error (disk full) surfaces on the next write or on commit; keep the process alive until then.
    this.stream.on('error', () => {});
  }

  /** Writes with back-pressure. */
  async write(text: string): Promise<void> {
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') return;
    this.stream.end();
    await once(this.stream, 'close');
    if (this.stream.errored) {
      await this.abort();
      throw fail(ERR.OUTPUT, `cannot write ${this.path}: ${this.stream.errored.message}`);
    }
    try {
      // The target may have become a folder (or lost its permissions) while the file was written.
      renameSync(this.tempPath, this.path);
    } catch (e) {
      await this.abort();
      throw fail(ERR.OUTPUT, `cannot write ${this.path}: ${errCode(e) ?? (e as Error).message}`);
    }
    this.state = 'committed';
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (!this.stream.closed) {
      this.stream.destroy();
      await once(this.stream, 'close').catch(() => {});
    }
    try {
      unlinkSync(this.tempPath);
    } catch {
      // already gone
    }
  }
}

/**
 * Claims `path` for this process until it exits: `<path>.lock` holds the owner's pid. A lock left by a process that
 * is gone (killed) is taken over; one held by a live process fails with CC_ERR_FILE_IN_USE. For files one process
 * appends to between runs (a backfill's output and state), which two writers would interleave.
 */
export function lockForThisProcess(path: string, what: string): () => void {
  const lock = `${resolve(path)}.lock`;
  ensureDir(dirname(lock));
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      const release = () => {
        try {
          if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if (errCode(e) !== 'EEXIST')
        throw fail(ERR.OUTPUT, `cannot create ${lock}: ${errCode(e) ?? (e as Error).message}`);
    }
    const owner = Number(readFileSync(lock, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
      throw fail(ERR.FILE_IN_USE, `${what} ${path} is in use by another cryptocast process (pid ${owner})`, {
        hint: `wait for it to finish, or give this run other files; remove ${lock} only if no such process runs`,
      });
    unlinkSync(lock); // stale: its process is gone
  }
  throw fail(ERR.FILE_IN_USE, `${what} ${path}: could not take its lock ${lock}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}
