import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';

/**
 * `cryptocast run` with a champion whose files are damaged (a model file cut short, a card gone): the run goes on
 * without predictions as before, but it used to say `no champion "cryptocast-price" … train one`, with the reason
 * only in a JSON log line ("cannot be used: ENOENT"). Now it names the version, the file and what to do, and the
 * registry is left exactly as it was. Needs none of Kafka, PostgreSQL, MLflow or OpenSearch.
 */
const dir = tempDirs();

async function registry(): Promise<{ root: string; v1: string }> {
  const root = dir('cc-broken-registry-');
  await registerFlatChampion(root);
  return { root, v1: join(root, 'cryptocast-price', 'versions', '1') };
}

const digest = (root: string) =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const f = join(e.parentPath, e.name);
      return `${f} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`;
    })
    .sort();

async function runOn(root: string) {
  const run = runCli(replayRunArgs(join(dir('cc-broken-store-'), 's.duckdb'), '2022-05-09'), {
    CRYPTOCAST_REGISTRY: root,
    CRYPTOCAST_MODEL_NAME: 'cryptocast-price',
  });
  const code = await exitedWithin(run, 120_000, 'the run');
  const done = run.events.find((e) => e.event === 'done');
  return { code, stderr: run.stderr(), predictions: done?.predictions };
}

describe('cryptocast run with a damaged champion', () => {
  it('a model file cut short: names the version and the file, says what to do; no predictions; registry unchanged', async () => {
    const { root, v1 } = await registry();
    const model = join(v1, 'model.json');
    writeFileSync(model, readFileSync(model, 'utf8').slice(0, 200));
    const before = digest(root);
    const r = await runOn(root);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal(r.predictions, 0);
    assert.match(
      r.stderr,
      /cannot load the champion "cryptocast-price" v1 of .*: cryptocast-price v1: model\.json: not an XGBoost JSON model[^\n]*; no predictions \(the registry was not changed: register a new version/,
    );
    assert.doesNotMatch(r.stderr, /no champion "cryptocast-price"/, 'there is one: it does not load');
    assert.deepEqual(digest(root), before);
  });

  it('a card gone from its version folder: names the card file (not "no version 1"); registry unchanged', async () => {
    const { root, v1 } = await registry();
    rmSync(join(v1, 'card.json'));
    const before = digest(root);
    const r = await runOn(root);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal(r.predictions, 0);
    assert.ok(
      r.stderr.includes(
        `cannot load the champion "cryptocast-price" v1 of ${root}: ${join(v1, 'card.json')} is missing`,
      ),
      r.stderr.slice(-2000),
    );
    assert.match(r.stderr, /the version is damaged and was not changed: restore its folder/);
    assert.deepEqual(digest(root), before);
  });

  it('a model cache that cannot be written (.data a file where the command runs): the cache is named, not the registry', async () => {
    const { root } = await registry();
    const cwd = dir('cc-cwd-');
    writeFileSync(join(cwd, '.data'), 'a file, not a folder\n');
    const stderr = await new Promise<string>((resolve, reject) =>
      execFile(
        CLI,
        replayRunArgs(join(cwd, 's.duckdb'), '2022-05-09'),
        {
          cwd,
          env: { ...process.env, CRYPTOCAST_REGISTRY: root, CRYPTOCAST_MODEL_NAME: 'cryptocast-price' },
          timeout: 120_000,
        },
        (err, _out, errText) => (err ? reject(new Error(`${err.message}\n${errText}`)) : resolve(errText)),
      ),
    );
    assert.ok(
      stderr.includes(
        `cannot load the champion "cryptocast-price" v1 of ${root}: cannot write the model cache folder ${join(cwd, '.data', 'model-cache')}`,
      ),
      stderr.slice(-2000),
    );
    assert.doesNotMatch(
      stderr,
      /registry .* is not a folder/,
      'the registry is a folder: it is not to blame',
    );
  });
});
