import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../../../src/training/registry/local.ts';
import { openRegistry } from '../../../../src/training/registry/open.ts';
import { RegistryError } from '../../../../src/training/registry/registry.ts';
import { registryContract, sampleModel } from '../../../support/registry-contract.ts';

describe('local directory registry', () => {
  registryContract(async () => new LocalRegistry(mkdtempSync(join(tmpdir(), 'cc-reg-'))));

  it('leaves no staging folder behind when an artifact is missing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cc-reg-'));
    const reg = new LocalRegistry(root);
    const s = sampleModel('m', 'a');
    await assert.rejects(reg.register({ ...s.card, artifacts: ['model.json', 'missing.json'] }, s.dir));
    assert.deepEqual(readdirSync(join(root, 'm')).sort(), ['versions']);
    assert.deepEqual(readdirSync(join(root, 'm', 'versions')), []);
  });

  it('is chosen by openRegistry for paths, and unknown URL schemes are refused', async () => {
    const reg = await openRegistry(mkdtempSync(join(tmpdir(), 'cc-reg-')));
    assert.equal(reg.kind, 'local');
    await assert.rejects(openRegistry('s3://bucket/x'), /unknown registry URL/);
  });

  it('a registry path naming a file, or a card that is not JSON: RegistryError naming the registry, one line', async () => {
    const d = mkdtempSync(join(tmpdir(), 'cc-reg-'));
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
      (e: unknown) => e instanceof RegistryError && /reg cannot be used: [^\n]*JSON/.test(e.message),
    );
  });
});
