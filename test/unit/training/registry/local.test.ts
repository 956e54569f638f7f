import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { breakIfStale, LocalRegistry } from '../../../../src/training/registry/local.ts';
import { openRegistry, requireAnswer } from '../../../../src/training/registry/open.ts';
import { RegistryError, RegistryFileError } from '../../../../src/training/registry/registry.ts';
import { registryContract, sampleModel } from '../../../support/registry-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('local directory registry', () => {
  registryContract(async () => new LocalRegistry(scratchDir('cc-reg-')));

  it('a lock left behind (its holder killed, or taken long ago) is broken, not waited on for 10 s and failed', async () => {
    const root = scratchDir('cc-reg-');
    const reg = new LocalRegistry(root);
    const s = sampleModel('m', 'a');
    const v = (await reg.register(s.card, s.dir)).version;
    const lock = join(root, 'm', '.lock');
    // Held by a process of this host that has ended (a kill -9 between taking and releasing the lock).
    const ended = spawnSync(process.execPath, ['-e', '']).pid!;
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner.json'), JSON.stringify({ pid: ended, host: hostname() }));
    let t = Date.now();
    await reg.setAlias('m', 'champion', v, 'after a crash');
    assert.ok(Date.now() - t < 5_000, `took ${Date.now() - t} ms`);
    assert.equal(await reg.alias('m', 'champion'), v);
    assert.equal(existsSync(lock), false, 'released after use');
    // No owner written (an older version's lock), taken an hour ago.
    mkdirSync(lock);
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(lock, hourAgo, hourAgo);
    t = Date.now();
    await reg.setAlias('m', 'challenger', v, 'after an old crash');
    assert.ok(Date.now() - t < 5_000, `took ${Date.now() - t} ms`);
    // Held under this very pid by a previous life of a restarted container (pid 1 again): not one of our holds.
    mkdirSync(lock);
    writeFileSync(
      join(lock, 'owner.json'),
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'x' }),
    );
    t = Date.now();
    await reg.setAlias('m', 'challenger', v, 'after a container restart');
    assert.ok(Date.now() - t < 5_000, `took ${Date.now() - t} ms`);
    // A live holder (another process of this host, just now) is not broken: judged as the waiting loop judges it.
    mkdirSync(lock);
    writeFileSync(
      join(lock, 'owner.json'),
      JSON.stringify({ pid: process.ppid, host: hostname(), token: 'y' }),
    );
    assert.equal(await breakIfStale(lock), false, 'a live lock is not broken');
    assert.ok(existsSync(lock));
    rmSync(lock, { recursive: true });
  });

  it('never gives a number again whose folder was deleted by hand while an alias names it', async () => {
    const root = scratchDir('cc-reg-');
    const reg = new LocalRegistry(root);
    const s = sampleModel('m', 'a');
    const v1 = (await reg.register(s.card, s.dir)).version;
    const v2 = (await reg.register(s.card, s.dir)).version;
    await reg.setAlias('m', 'champion', v1, 'first');
    await reg.setAlias('m', 'champion', v2, 'second');
    // A bad champion's folder removed by hand (there is no `models delete`).
    rmSync(join(root, 'm', 'versions', String(v2)), { recursive: true });
    const v3 = (await reg.register(s.card, s.dir)).version;
    assert.equal(v3, v2 + 1, 'the champion alias still names v2: a new model must not become it');
  });

  it('leaves no staging folder behind when an artifact is missing', async () => {
    const root = scratchDir('cc-reg-');
    const reg = new LocalRegistry(root);
    const s = sampleModel('m', 'a');
    await assert.rejects(reg.register({ ...s.card, artifacts: ['model.json', 'missing.json'] }, s.dir));
    assert.deepEqual(readdirSync(join(root, 'm')).sort(), ['versions']);
    assert.deepEqual(readdirSync(join(root, 'm', 'versions')), []);
  });

  it('is chosen by openRegistry for paths, and unknown URL schemes are refused', async () => {
    const reg = await openRegistry(scratchDir('cc-reg-'));
    assert.equal(reg.kind, 'local');
    await assert.rejects(openRegistry('s3://bucket/x'), /unknown registry URL/);
  });

  it('a registry path naming a file, or a card that is not JSON: RegistryError naming the registry, one line', async () => {
    const d = scratchDir('cc-reg-');
    const file = join(d, 'registry.txt');
    writeFileSync(file, 'not a folder\n');
    const reg = new LocalRegistry(file);
    const notFolder = (e: unknown) =>
      e instanceof RegistryError &&
      e.code === 'CC_ERR_REGISTRY' &&
      /registry\.txt is not a folder$/.test(e.message);
    await assert.rejects(reg.list('m'), notFolder);
    await assert.rejects(reg.alias('m', 'champion'), notFolder);
    const s = sampleModel('m', 'a');
    await assert.rejects(reg.register(s.card, s.dir), notFolder);

    const root = join(d, 'reg');
    mkdirSync(join(root, 'm', 'versions', '1'), { recursive: true });
    writeFileSync(join(root, 'm', 'versions', '1', 'card.json'), '{bad');
    await assert.rejects(
      new LocalRegistry(root).list('m'),
      (e: unknown) =>
        e instanceof RegistryError &&
        /reg\/m\/versions\/1\/card\.json is not a model card \([^\n]*JSON/.test(e.message),
    );
  });

  it('a damaged version or aliases.json: an error naming the file, with what to do; nothing in the registry changes', async () => {
    const root = scratchDir('cc-reg-');
    const reg = new LocalRegistry(root);
    const s = sampleModel('m', 'a');
    await reg.register(s.card, s.dir);
    await reg.register(s.card, s.dir);
    await reg.setAlias('m', 'champion', 1, 'test');
    const v1 = join(root, 'm', 'versions', '1');
    const v2 = join(root, 'm', 'versions', '2');
    const snapshot = () =>
      readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => `${join(e.parentPath, e.name)} ${readFileSync(join(e.parentPath, e.name), 'utf8')}`)
        .sort();
    const damaged = (file: string, what: RegExp) => (e: unknown) => {
      assert.ok(e instanceof RegistryFileError, String(e));
      assert.equal(e.code, 'CC_ERR_REGISTRY');
      assert.ok(e.message.startsWith(file), e.message);
      assert.match(e.message, what);
      assert.match(e.hint ?? '', /not changed/);
      return true;
    };

    // The damage: a model file the card lists, gone; a version folder without its card; a card and aliases.json cut
    // short. Then every read names its file (they said "cannot be used: ENOENT", "no version 2", or only the JSON
    // parser's complaint), and none of them changes a byte of the registry.
    rmSync(join(v1, 'model.json'));
    rmSync(join(v2, 'card.json'));
    const aliases = join(root, 'm', 'aliases.json');
    writeFileSync(aliases, readFileSync(aliases, 'utf8').slice(0, 20));
    const before = snapshot();
    await assert.rejects(
      reg.download('m', 1, scratchDir('cc-dl-')),
      damaged(join(v1, 'model.json'), /is missing \(the card lists it\)$/),
    );
    await assert.rejects(reg.get('m', 2), damaged(join(v2, 'card.json'), /is missing$/));
    await assert.rejects(reg.alias('m', 'champion'), damaged(aliases, /is damaged: .*JSON/));
    // requireAnswer (run's first question) hands it on as it is, not as "does not answer" with the URL hint.
    await assert.rejects(requireAnswer(reg, 'm', 'the URL hint'), damaged(aliases, /is damaged/));
    assert.deepEqual(snapshot(), before);
    const card = join(v1, 'card.json');
    writeFileSync(card, readFileSync(card, 'utf8').slice(0, 100));
    const cut = snapshot();
    await assert.rejects(reg.get('m', 1), damaged(card, /is not a model card \(.*JSON/));
    assert.deepEqual(snapshot(), cut);
    // A version that does not exist is still just that.
    assert.equal(await reg.get('m', 3), undefined);
  });
});
