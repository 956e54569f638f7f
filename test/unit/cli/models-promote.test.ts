import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promoteCommand, rollbackCommand } from '../../../src/cli/commands/models.ts';
import { CryptocastError } from '../../../src/core/errors.ts';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import { type ModelFiles, registerModel, stumpModel } from '../../support/champion.ts';
import { scratchDir } from '../../support/scratch.ts';

const COLUMNS = ['rsi_14', 'ret_1m'];
const files = (n = COLUMNS.length): ModelFiles => ({
  model: stumpModel(n, [{ f: 0, c: 50, a: -3, b: 5 }]),
  p10: stumpModel(n, [], { base: -10, objective: 'reg:quantileerror' }),
  p90: stumpModel(n, [], { base: 10, objective: 'reg:quantileerror' }),
});

/** Runs `models promote` (or `rollback` without a version), its stdout captured. */
async function promote(root: string, version?: string): Promise<string> {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out.push(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    if (version === undefined) await rollbackCommand({ registry: root, name: 'price' });
    else await promoteCommand(version, { registry: root, name: 'price' });
  } finally {
    process.stdout.write = write;
  }
  return out.join('');
}

describe('models promote: only a version the predictor can serve', () => {
  it('promotes a servable version', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    assert.match(await promote(root, '2'), /champion: v2 \(was v1\)/);
    assert.equal(await registry.alias('price', 'champion'), 2);
  });

  it('rollback goes one step back even when the last promotion is missing from the alias history', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    await promote(root, '2');
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    await promote(root, '3');
    // The promotion to v3 moved the alias, but its history entry was not written (MLflow: the tag after the alias).
    const file = join(root, 'price', 'aliases.json');
    const aliases = JSON.parse(readFileSync(file, 'utf8')) as { history: unknown[] };
    aliases.history.pop();
    writeFileSync(file, JSON.stringify(aliases));
    assert.equal(await registry.alias('price', 'champion'), 3);
    assert.match(await promote(root), /champion: v2 \(rolled back from v3\)/);
    assert.match(await promote(root), /champion: v1 \(rolled back from v2\)/);
  });

  it('after a rollback whose history entry is missing, the next rollback goes on back, not to the model rolled back from', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    for (const v of ['2', '3']) {
      await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
      await promote(root, v);
    }
    assert.match(await promote(root), /champion: v2 \(rolled back from v3\)/);
    const file = join(root, 'price', 'aliases.json');
    const aliases = JSON.parse(readFileSync(file, 'utf8')) as { history: unknown[] };
    aliases.history.pop(); // that rollback moved the alias; its history entry was not written
    writeFileSync(file, JSON.stringify(aliases));
    assert.match(await promote(root), /champion: v1 \(rolled back from v2\)/);
  });

  it('refuses a news model and a damaged one with CC_ERR_UNSERVABLE naming why; the champion stays', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    await registerModel(registry, 'price', [...COLUMNS, 'news_sent_ewm_1h'], files(3), { champion: false });
    await registerModel(
      registry,
      'price',
      COLUMNS,
      { ...files(), model: '{"learner": ' },
      { champion: false },
    );
    for (const [version, why] of [
      ['2', /news_sent_ewm_1h/],
      ['3', /model\.json/],
    ] as const) {
      await assert.rejects(promote(root, version), (err: unknown) => {
        assert.ok(err instanceof CryptocastError);
        assert.equal(err.code, 'CC_ERR_UNSERVABLE');
        assert.match(
          err.message,
          new RegExp(`^v${version} cannot be champion: the predictor cannot serve it`),
        );
        assert.match(err.message, why);
        assert.ok(err.hint);
        return true;
      });
    }
    assert.equal(await registry.alias('price', 'champion'), 1);
  });
});

describe('models rollback: only to a version the predictor can serve', () => {
  it('refuses a rollback to a version whose model file was damaged since it served, with CC_ERR_UNSERVABLE; the champion stays', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    await promote(root, '2');
    // v1's model file is damaged on the registry's disk after it stopped serving: the predictor, serving v2, would be
    // told to load it, fail, and keep serving v2 (the rollback never taking effect) — and serve nothing after a restart.
    writeFileSync(join(root, 'price', 'versions', '1', 'model.json'), '{"learner": ');
    await assert.rejects(promote(root), (err: unknown) => {
      assert.ok(err instanceof CryptocastError);
      assert.equal(err.code, 'CC_ERR_UNSERVABLE');
      assert.match(err.message, /^cannot roll back to v1: the predictor cannot serve it: .*model\.json/);
      return true;
    });
    assert.equal(await registry.alias('price', 'champion'), 2);
  });

  it('a promotion landing between the read of the history and the move is not overwritten by the rollback', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    for (const v of ['2', '3']) {
      await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
      await promote(root, v);
    }
    await registerModel(registry, 'price', COLUMNS, files(), { champion: false }); // v4
    // The trainer promotes v4 while the rollback, which read v3 as the champion, checks that v2 can be served: the
    // rollback from v3 must not silently drop v4.
    const check = LocalRegistry.prototype.download;
    let raced = false;
    LocalRegistry.prototype.download = async function (this: LocalRegistry, ...args) {
      if (!raced) {
        raced = true;
        await new LocalRegistry(root).setAlias('price', 'champion', 4, 'promoted by the gate (the trainer)');
      }
      return check.apply(this, args);
    };
    try {
      await assert.rejects(promote(root), (err: unknown) => {
        assert.ok(err instanceof CryptocastError);
        assert.match(err.message, /champion changed to v4 while rolling back from v3: nothing changed/);
        return true;
      });
    } finally {
      LocalRegistry.prototype.download = check;
    }
    assert.ok(raced);
    assert.equal(await registry.alias('price', 'champion'), 4);
  });
});
