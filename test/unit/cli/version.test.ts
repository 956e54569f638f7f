import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI } from '../../support/cli.ts';

const packageVersion: string = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8'),
).version;

function version(env: NodeJS.ProcessEnv): string {
  return execFileSync(CLI, ['--version'], { encoding: 'utf8', env: { ...process.env, ...env } }).trim();
}

describe('cryptocast --version: the version of package.json', () => {
  it('run directly (no npm variables)', () => {
    const env = { ...process.env };
    delete env.npm_package_version;
    assert.equal(execFileSync(CLI, ['--version'], { encoding: 'utf8', env }).trim(), packageVersion);
  });

  it('run by an npm script of another package (npm_package_version is that package’s)', () => {
    // `npm run` in a project that calls cryptocast sets npm_package_version to ITS version, not ours.
    assert.equal(version({ npm_package_version: '7.7.7-other' }), packageVersion);
  });
});
