import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import type { ModelRegistry } from '../../../src/training/registry/registry.ts';
import { moveAliases } from '../../../src/training/train.ts';
import { type ModelFiles, registerModel, stumpModel } from '../../support/champion.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * The aliases moved after a training run (`trainAndRegister` ends with `moveAliases`): a version the gate passed
 * becomes champion only if the predictor can load it, checked on the registered card and files.
 */
const COLUMNS = ['rsi_14', 'ret_1m'];
const files = (n = COLUMNS.length): ModelFiles => ({
  model: stumpModel(n, [{ f: 0, c: 50, a: -3, b: 5 }]),
  p10: stumpModel(n, [], { base: -10, objective: 'reg:quantileerror' }),
  p90: stumpModel(n, [], { base: 10, objective: 'reg:quantileerror' }),
});
const passed = { promoted: true, reasons: ['pass: BTC/USDT vs persistence'] };

describe('moveAliases: the gate passed it, can the predictor serve it?', () => {
  it('a servable version becomes champion', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    const v1 = await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    const decision = await moveAliases(registry, v1, passed, undefined);
    assert.equal(decision.promoted, true);
    assert.equal(await registry.alias('price', 'champion'), 1);
  });

  it('a news model on a registry without a champion is registered as challenger, not champion, and says why', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    const news = await registerModel(registry, 'price', [...COLUMNS, 'news_sent_ewm_1h'], files(3), {
      champion: false,
    });
    const decision = await moveAliases(registry, news, passed, undefined);
    assert.equal(decision.promoted, false);
    assert.match(decision.reasons.at(-1)!, /^FAIL: the predictor cannot serve it: .*news_sent_ewm_1h/);
    assert.equal(await registry.alias('price', 'champion'), undefined);
    assert.equal(await registry.alias('price', 'challenger'), 1);
    const change = (await registry.aliasHistory('price')).at(-1)!;
    assert.match(change.reason, /predictor cannot serve it/);
  });

  it('a champion changed by hand during the run is not overwritten: the new version becomes challenger', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion when the run began
    await registerModel(registry, 'price', COLUMNS, files()); // v2, promoted by hand meanwhile
    const candidate = await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    const decision = await moveAliases(registry, candidate, passed, 1);
    assert.equal(decision.promoted, false);
    assert.match(decision.reasons.at(-1)!, /^FAIL: the champion changed during the run \(v1 → v2\)/);
    assert.equal(await registry.alias('price', 'champion'), 2);
    assert.equal(await registry.alias('price', 'challenger'), 3);
  });

  it("another trainer's promotion landing between the champion check and the alias move is not overwritten", async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    await registerModel(registry, 'price', COLUMNS, files()); // v1, the champion both runs were compared with
    const theirs = await registerModel(registry, 'price', COLUMNS, files(), { champion: false }); // v2
    const ours = await registerModel(registry, 'price', COLUMNS, files(), { champion: false }); // v3
    // The other trainer promotes v2 at the last moment: after every check this run made, just before its alias write.
    let raced = false;
    const racing: ModelRegistry = Object.create(registry, {
      setAlias: {
        value: async (...args: Parameters<ModelRegistry['setAlias']>) => {
          if (args[1] === 'champion' && !raced) {
            raced = true;
            await registry.setAlias(
              'price',
              'champion',
              theirs.version,
              'promoted by the gate (the other trainer)',
            );
          }
          return registry.setAlias(...args);
        },
      },
    });
    const decision = await moveAliases(racing, ours, passed, 1);
    assert.ok(raced, 'the other promotion landed');
    assert.equal(await registry.alias('price', 'champion'), 2, 'the other trainer’s champion stays');
    assert.equal(decision.promoted, false);
    assert.match(decision.reasons.at(-1)!, /^FAIL: the champion changed during the run \(v1 → v2\)/);
    assert.equal(await registry.alias('price', 'challenger'), 3);
  });

  // A registry blip during the check (MLflow answering 503 mid-download) made a good model challenger until the next
  // run, a week later: a failure that may pass is tried again; one that lasts is still a reason.
  const failingDownloads = (registry: ModelRegistry, failures: number) => {
    const calls = { n: 0 };
    const flaky: ModelRegistry = Object.create(registry, {
      download: {
        value: async (...args: Parameters<ModelRegistry['download']>) => {
          if (calls.n++ < failures) throw new Error('MLflow GET .../model.json failed: HTTP 503');
          return registry.download(...args);
        },
      },
    });
    return { flaky, calls };
  };
  const quickRetry = { attempts: 3, backoff: { initialMs: 1, maxMs: 2 } };

  it('a registry that fails the check once, then answers: champion (the check was tried again)', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    const v1 = await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    const { flaky, calls } = failingDownloads(registry, 1);
    const decision = await moveAliases(flaky, v1, passed, undefined, quickRetry);
    assert.equal(decision.promoted, true, decision.reasons.join('; '));
    assert.equal(calls.n, 2);
    assert.equal(await registry.alias('price', 'champion'), 1);
  });

  it('a registry failing every attempt: challenger, with the registry’s error as the reason', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    const v1 = await registerModel(registry, 'price', COLUMNS, files(), { champion: false });
    const { flaky, calls } = failingDownloads(registry, Number.POSITIVE_INFINITY);
    const decision = await moveAliases(flaky, v1, passed, undefined, quickRetry);
    assert.equal(decision.promoted, false);
    assert.match(decision.reasons.at(-1)!, /^FAIL: the predictor cannot serve it: .*HTTP 503/);
    assert.equal(calls.n, 3);
    assert.equal(await registry.alias('price', 'challenger'), 1);
  });

  it('a damaged model file leaves the champion where it was', async () => {
    const registry = new LocalRegistry(scratchDir('cc-reg-'));
    await registerModel(registry, 'price', COLUMNS, files()); // v1 champion
    const damaged = await registerModel(
      registry,
      'price',
      COLUMNS,
      { ...files(), p90: files().p90.slice(0, 40) },
      { champion: false },
    );
    const { flaky, calls } = failingDownloads(registry, 0);
    const decision = await moveAliases(flaky, damaged, passed, 1, quickRetry);
    assert.equal(calls.n, 1, 'a damaged file is not tried again');
    assert.equal(decision.promoted, false);
    assert.match(decision.reasons.at(-1)!, /p90\.json/);
    assert.equal(await registry.alias('price', 'champion'), 1);
    assert.equal(await registry.alias('price', 'challenger'), 2);
  });
});
