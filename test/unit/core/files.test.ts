import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CryptocastError, ERR } from '../../../src/core/errors.ts';
import {
  AtomicFile,
  ensureDir,
  lockForThisProcess,
  refuseOverwritingInput,
} from '../../../src/core/files.ts';
import { scratchDir } from '../../support/scratch.ts';

const dir = () => scratchDir('cc-files-');
const code = (c: string) => (e: CryptocastError) => e.code === c;

describe('files the CLI writes', () => {
  it('AtomicFile: nothing at the target until commit; abort leaves the previous file and no temporary', async () => {
    const d = dir();
    const target = join(d, 'out.csv');
    writeFileSync(target, 'old\n');
    const a = new AtomicFile(target);
    await a.write('new\n');
    assert.equal(readFileSync(target, 'utf8'), 'old\n');
    await a.abort();
    assert.equal(readFileSync(target, 'utf8'), 'old\n');
    assert.deepEqual(readdirSync(d), ['out.csv']);
    const b = new AtomicFile(target);
    await b.write('new\n');
    await b.commit();
    assert.equal(readFileSync(target, 'utf8'), 'new\n');
    assert.deepEqual(readdirSync(d), ['out.csv']);
  });

  it('ensureDir makes missing parents, and fails clearly where it cannot (a file in the way, /proc)', () => {
    const d = dir();
    ensureDir(join(d, 'a', 'b', 'c'));
    assert.ok(existsSync(join(d, 'a', 'b', 'c')));
    writeFileSync(join(d, 'f'), '');
    assert.throws(() => ensureDir(join(d, 'f', 'x')), code(ERR.OUTPUT.code));
    assert.throws(() => ensureDir('/proc/nope/deeper'), code(ERR.OUTPUT.code));
  });

  it('refuseOverwritingInput: same path, another spelling of it, a hard link — not a different file', () => {
    const d = dir();
    const f = join(d, 'in.csv');
    writeFileSync(f, 'x');
    assert.throws(() => refuseOverwritingInput(f, [f]), code(ERR.OUTPUT.code));
    assert.throws(() => refuseOverwritingInput(join(d, '.', 'in.csv'), [f]), code(ERR.OUTPUT.code));
    assert.doesNotThrow(() => refuseOverwritingInput(join(d, 'out.csv'), [f]));
  });

  it('lockForThisProcess: a live owner refuses a second claim with CC_ERR_FILE_IN_USE; a dead owner’s lock is taken over', async () => {
    const d = dir();
    const state = join(d, 'state.json');
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      writeFileSync(`${state}.lock`, `${child.pid}\n`);
      assert.throws(
        () => lockForThisProcess(state, 'the state file'),
        (e: CryptocastError) => {
          assert.equal(e.code, ERR.FILE_IN_USE.code);
          assert.match(e.message, new RegExp(`pid ${child.pid}`));
          return true;
        },
      );
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const release = lockForThisProcess(state, 'the state file');
    assert.equal(readFileSync(`${state}.lock`, 'utf8').trim(), String(process.pid));
    release();
    assert.ok(!existsSync(`${state}.lock`));
  });
});
