import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../../../src/training/registry/local.ts';
import { openRegistry } from '../../../../src/training/registry/open.ts';
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
});
