import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ERR } from '../../src/core/errors.ts';
import { CLI, exitedWithin, liveRunOnKraken, runCli } from '../support/cli.ts';
import { countsInNewProcess } from '../support/duckdb-file.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';
import { krakenRecordedTrades } from '../support/exchanges/fixtures.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `cryptocast run` on a store file that stops taking writes half-way: a disk that fills, a file damaged in its middle.
 * The stages used to retry for ever (re-reading their input, logging the same error many times a second; a full disk
 * read "cannot rollback - no transaction is active"), so the run never ended and never said why. Now it stops with
 * one CC_ERR_STORE line that says what happened and what to do, and the file keeps what the run reported stored.
 * Needs none of Kafka, PostgreSQL, MLflow or OpenSearch; the full disk is a 3 MB tmpfs, so that case needs root.
 */
const dir = tempDirs();
const FEATURES = ['fs_technical_v1', 'pair, window_end'] as const;
const PREDICTIONS = ['predictions_v1', 'pair, window_end, model_version'] as const;
const ERRORS = ['prediction_errors_v1', 'pair, window_end, model_name, model_version'] as const;

/** Exit 1, CC_ERR_STORE with `pattern` on the error line, its hint, and no stack trace after it. */
function storeRefused(stderr: string, pattern: RegExp): void {
  const at = stderr.lastIndexOf('cryptocast: ');
  assert.ok(at >= 0, stderr.slice(-2000));
  const end = stderr.slice(at);
  assert.match(end, new RegExp(`\\[${ERR.STORE.code}\\]`), end);
  assert.match(end, pattern, end);
  assert.match(end, /\n {2}hint: /);
  assert.doesNotMatch(end, /\n\s+at /, 'no stack trace');
}

function mountTmpfs(size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const d = dir('cc-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return d;
}

describe('cryptocast run on a store that stops taking writes', () => {
  // A champion of the test's own, so that predictions and error records are written too, whatever model is trained.
  const env: NodeJS.ProcessEnv = {};
  before(async () => {
    Object.assign(env, await registerFlatChampion(dir('cc-faults-registry-')));
  });
  const full = mountTmpfs('3m');
  after(() => {
    if (full) execFileSync('umount', [full]);
  });

  it('a disk that fills mid-run: CC_ERR_STORE "is full" and an end; the file holds what was reported', {
    skip: full === undefined && 'mounting a small tmpfs needs root',
  }, async () => {
    const file = join(full!, 'cryptocast.duckdb');
    // A month does not fit in 3 MB: the disk fills after a few thousand rows.
    const run = runCli(replayRunArgs(file, '2022-05'), env);
    const code = await exitedWithin(run, 60_000, 'the run on a full disk to end');
    assert.equal(code, ERR.STORE.exitCode, run.stderr().slice(-3000));
    storeRefused(
      run.stderr(),
      /the disk of the store file .*cryptocast\.duckdb is full \(.*No space left on device/,
    );
    assert.doesNotMatch(run.stderr(), /cannot rollback/, 'the failure itself, not the ROLLBACK after it');
    const reported = run.events.filter((e) => e.event === 'stored').at(-1);
    assert.ok(
      reported && (reported.featureRows as number) > 0,
      'some rows were stored before the disk filled',
    );
    // The file and its WAL, moved to a disk with room (what a user does next), open and hold what was reported.
    const moved = join(dir('cc-full-moved-'), 'cryptocast.duckdb');
    copyFileSync(file, moved);
    if (existsSync(`${file}.wal`)) copyFileSync(`${file}.wal`, `${moved}.wal`);
    const rows = (t: readonly [string, string]) => countsInNewProcess(moved, t[0], t[1]);
    assert.deepEqual(rows(FEATURES), { rows: reported.featureRows, keys: reported.featureRows });
    assert.deepEqual(rows(PREDICTIONS), { rows: reported.predictions, keys: reported.predictions });
    assert.deepEqual(rows(ERRORS), { rows: reported.errorRecords, keys: reported.errorRecords });
  });

  const readOnly = mountTmpfs('1m');
  after(() => {
    if (readOnly) execFileSync('umount', [readOnly]);
  });

  it('a store on a read-only file system: refused at once, the hint asks for a writable disk (not another URL)', {
    skip: readOnly === undefined && 'mounting a small tmpfs needs root',
  }, async () => {
    execFileSync('mount', ['-o', 'remount,ro', readOnly!]);
    const run = runCli(replayRunArgs(join(readOnly!, 'cryptocast.duckdb'), '2022-05-09'), env);
    assert.equal(await exitedWithin(run, 60_000, 'the refusal'), ERR.STORE_URL.exitCode, run.stderr());
    assert.match(
      run.stderr(),
      /Read-only file system \[CC_ERR_STORE_URL\]\n {2}hint: the store needs a writable folder/,
    );
  });

  it('a store folder this user may not write (run as nobody): the hint is about permissions, not the URL', {
    skip: process.getuid?.() !== 0 && 'needs root to run the command as another user',
  }, async (t) => {
    // nobody must be able to reach the command: a clone in a folder only its owner may enter (a mkdtemp folder, a
    // home of mode 0700) makes this "bash: …/bin/cryptocast: Permission denied" before the command runs at all.
    const reachable = (() => {
      try {
        execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-x', CLI]);
        return true;
      } catch {
        return false;
      }
    })();
    if (!reachable) {
      t.skip(`nobody cannot reach ${CLI}: this check needs the clone in a folder other users may enter`);
      return;
    }
    // A folder of root's (0755): nobody can read it, not write in it. The command runs where nobody may write
    // (its model cache), with the registry given (readable by all).
    const locked = dir('cc-denied-');
    chmodSync(locked, 0o755);
    const cwd = dir('cc-denied-cwd-');
    chownSync(cwd, 65534, 65534);
    const file = join(locked, 'cryptocast.duckdb');
    const stderr = await new Promise<string>((resolve) =>
      execFile(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', CLI, ...replayRunArgs(file, '2022-05-09')],
        { cwd, env: { ...process.env, ...env, HOME: cwd }, timeout: 60_000 },
        (_err, _out, errText) => resolve(errText),
      ),
    );
    assert.match(
      stderr,
      /Permission denied \[CC_ERR_STORE_URL\]\n {2}hint: this user cannot write there: give a file in a folder it can write/,
    );
    assert.equal(existsSync(file), false);
  });

  const alreadyFull = mountTmpfs('1m');
  after(() => {
    if (alreadyFull) execFileSync('umount', [alreadyFull]);
  });

  it('a disk full before the store is made: the free-space hint, and no empty file left to fail every later run', {
    skip: alreadyFull === undefined && 'mounting a small tmpfs needs root',
  }, async () => {
    const fill = join(alreadyFull!, 'fill');
    // Fills the disk (the write stops at ENOSPC; what it wrote stays).
    try {
      writeFileSync(fill, Buffer.alloc(2 * 1024 * 1024));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    const file = join(alreadyFull!, 'cryptocast.duckdb');
    const run = runCli(replayRunArgs(file, '2022-05-09'), env);
    assert.equal(await exitedWithin(run, 60_000, 'the refusal'), ERR.STORE_URL.exitCode, run.stderr());
    assert.match(
      run.stderr(),
      /No space left on device \[CC_ERR_STORE_URL\]\n {2}hint: free space on that disk/,
    );
    // DuckDB had created the file, 0 bytes: once space was freed, every run failed on it as "not a valid DuckDB
    // database file".
    assert.equal(existsSync(file), false, 'no file left behind');
    assert.equal(existsSync(`${file}.wal`), false);
  });

  const liveFull = mountTmpfs('3m');
  after(() => {
    if (liveFull) execFileSync('umount', [liveFull]);
  });

  it('live (--source live): a disk that fills ends the run too (it waited for ever for the stages to catch up)', {
    skip: liveFull === undefined && 'mounting a small tmpfs needs root',
  }, async () => {
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    // The trades below go out before the subscription is confirmed, so before any watermark of the connector's clock:
    // one of now − 2 s reaching the pair first made these trades of two minutes ago late (dead-lettered, nothing
    // written, and the run never met the full disk).
    srv.holdConfirmations = true;
    try {
      const file = join(liveFull!, 'cryptocast.duckdb');
      const run = liveRunOnKraken(srv, { pairs: 'BTC/USDT', file, env });
      await waitFor(
        'the live source to subscribe',
        () => srv.sockets.size > 0 && srv.heldSubscriptions > 0,
        (ok) => ok,
        {
          timeoutMs: 60_000,
        },
      );
      // The disk fills now; then trades of two minutes ago: their minute closes within seconds and is written.
      try {
        writeFileSync(join(liveFull!, 'fill'), Buffer.alloc(4 * 1024 * 1024));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      const m2 = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 60_000;
      srv.publish(
        'BTC/USDT',
        krakenRecordedTrades()
          .slice(0, 5)
          .map((t, i) => ({ ...t, time: ((m2 + 1_000 + i * 1_000) / 1000).toFixed(3) })),
      );
      srv.confirmSubscriptions();
      const code = await exitedWithin(run, 120_000, 'the live run on a full disk to end');
      assert.equal(code, ERR.STORE.exitCode, run.stderr().slice(-3000));
      storeRefused(run.stderr(), /the disk of the store file .*cryptocast\.duckdb is full/);
    } finally {
      await srv.close();
    }
  });

  it('a store file damaged in its middle: CC_ERR_STORE "is damaged" and an end; the file is not changed', async () => {
    const d = dir('cc-damaged-');
    const file = join(d, 'cryptocast.duckdb');
    const first = runCli(replayRunArgs(file, '2022-05-09'), env);
    assert.equal(await exitedWithin(first, 120_000, 'the first run'), 0, first.stderr().slice(-2000));
    // Random bytes over the data blocks (the headers, the first 12 KB, stay): DuckDB finds the bad checksum when
    // it reads them, after the file opened.
    const fd = openSync(file, 'r+');
    writeSync(fd, randomBytes(200_000), 0, 200_000, 300_000);
    closeSync(fd);
    const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
    const run = runCli(replayRunArgs(file, '2022-05-09'), env);
    const code = await exitedWithin(run, 60_000, 'the run on a damaged file to end');
    assert.equal(code, ERR.STORE.exitCode, run.stderr().slice(-3000));
    storeRefused(run.stderr(), /the store file .*cryptocast\.duckdb is damaged \(.*Corrupt database file/);
    assert.match(run.stderr(), /move it and its \.wal file aside/);
    assert.equal(
      createHash('sha256').update(readFileSync(file)).digest('hex'),
      sha,
      'the file is not changed',
    );
  });
});
