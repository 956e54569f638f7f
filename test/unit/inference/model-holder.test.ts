import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { metrics } from '../../../src/core/metrics.ts';
import { FEATURE_COLUMNS, FEATURE_SET } from '../../../src/features/technical.ts';
import { ChampionHolder, columnIndex, ModelLoadError } from '../../../src/inference/model-holder.ts';
import type { FeatureVectorRecord } from '../../../src/schemas/feature.ts';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import {
  type ModelCard,
  type ModelRegistry,
  modelCacheFolder,
} from '../../../src/training/registry/registry.ts';
import { type ModelFiles, registerModel, stumpModel } from '../../support/champion.ts';
import { featureVector } from '../../support/factories.ts';
import { scratchDir } from '../../support/scratch.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * The champion holder on a LocalRegistry in a temp dir, with tiny real XGBoost JSON models (stumps): columns are
 * mapped by name, a promotion is swapped in only once fully loaded, a broken or unservable champion keeps the old
 * one serving.
 */
const quiet = pino({ level: 'silent' });
const T = Date.UTC(2024, 5, 1);

/** A technical vector whose value for column c is `set[c]`, else 0. */
function vector(set: Record<string, number | null>): FeatureVectorRecord {
  return featureVector({ windowEnd: T, values: FEATURE_COLUMNS.map((c) => (c in set ? set[c]! : 0)) });
}

/** Point model: rsi_14 < 50 → -3 else +5, plus ret_1m < 0 → -1 else +1; p10 = base -10, p90 = base +10. */
const COLUMNS = ['rsi_14', 'ret_1m'];
function files(shift = 0): ModelFiles {
  return {
    model: stumpModel(2, [
      { f: 0, c: 50, a: -3 + shift, b: 5 + shift },
      { f: 1, c: 0, a: -1, b: 1 },
    ]),
    p10: stumpModel(2, [], { base: -10, objective: 'reg:quantileerror' }),
    p90: stumpModel(2, [], { base: 10, objective: 'reg:quantileerror' }),
  };
}

function setup() {
  const registry = new LocalRegistry(scratchDir('cc-reg-'));
  const cacheDir = scratchDir('cc-cache-');
  const name = 'price';
  const holder = (reg: ModelRegistry = registry, pollMs = 60_000) =>
    new ChampionHolder(reg, { name, cacheDir, pollMs, logger: quiet });
  return { registry, name, holder };
}

describe('ChampionHolder', () => {
  it('a champion whose files are damaged or missing is not waited for (vectors skipped as no_champion, not held forever)', async () => {
    const { registry, name, holder } = setup();
    const v1 = await registerModel(registry, name, COLUMNS, files()); // v1 champion
    const root = (registry as unknown as { root: string }).root;
    rmSync(join(root, name, 'versions', String(v1.version), 'model.json'));
    const h = holder(registry, 3_600_000);
    await h.start();
    try {
      assert.equal(h.current(), undefined);
      assert.match(h.loadFailure()!.message, /model\.json is missing/);
      assert.equal(h.waitingForChampion(), false, 'a damaged version will not mend by waiting');
    } finally {
      h.stop();
    }
  });

  it('a champion alias that disappears (its version deleted in MLflow) keeps the model serving, and says so once', async () => {
    const { registry, name } = setup();
    await registerModel(registry, name, COLUMNS, files()); // v1, champion
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // The alias as the registry answers it: v1, then gone (MLflow removes a deleted version's aliases).
    let named: number | undefined = 1;
    const reg: ModelRegistry = Object.create(registry, { alias: { value: async () => named } });
    const h = new ChampionHolder(reg, { name, cacheDir: scratchDir('cc-cache-'), pollMs: 3_600_000, logger });
    await h.start();
    try {
      assert.equal(h.current()?.card.version, 1);
      named = undefined;
      await h.refresh();
      await h.refresh();
      assert.equal(h.current()?.card.version, 1, 'still serving');
      assert.deepEqual(
        lines.filter((l) => /champion alias is gone/.test(l.msg)).map((l) => l.level),
        [40],
        'one warning',
      );
    } finally {
      h.stop();
    }
  });

  it('serves nothing until a champion exists, then loads it and maps the vector columns by name', async () => {
    const { registry, name, holder } = setup();
    const h = holder();
    await h.start();
    try {
      assert.equal(h.current(), undefined);
      await registerModel(registry, name, COLUMNS, files(), { champion: false });
      assert.equal(await h.refresh(), false, 'registered but not promoted: still nothing');
      assert.equal(h.current(), undefined);
      await registry.setAlias(name, 'champion', 1, 'test');
      assert.equal(await h.refresh(), true);
      const m = h.current()!;
      assert.equal(m.card.version, 1);
      assert.deepEqual(m.card.columns, COLUMNS);
      assert.deepEqual(m.predict(vector({ rsi_14: 70, ret_1m: 0.001 })), {
        returnBps: 6,
        p10Bps: -10,
        p90Bps: 10,
      });
      assert.deepEqual(m.predict(vector({ rsi_14: 30, ret_1m: -0.001 })), {
        returnBps: -4,
        p10Bps: -10,
        p90Bps: 10,
      });
      // A missing value (null) follows default_left (left in these stumps).
      assert.equal(m.predict(vector({ rsi_14: null, ret_1m: 1 })).returnBps, -2);
      // Other columns do not matter: only the card's, by name, in the card's order.
      assert.equal(m.predict(vector({ rsi_14: 70, ret_1m: 1, ret_5m: -99, sma_20: -99 })).returnBps, 6);
      assert.equal(await h.refresh(), false, 'same version: nothing to do');
      assert.equal(h.stats.loads, 1);
    } finally {
      h.stop();
    }
  });

  it('swaps to a newly promoted champion only after it is fully loaded (the old one serves meanwhile)', async () => {
    const { registry, name, holder } = setup();
    await registerModel(registry, name, COLUMNS, files(0));
    // A registry whose downloads can be held back, to look at the holder mid-load.
    let release: () => void = () => {};
    let hold = false;
    let held = false;
    const slow: ModelRegistry = Object.create(registry, {
      download: {
        value: async (n: string, v: number, dir: string) => {
          if (hold) {
            held = true;
            await new Promise<void>((r) => (release = r));
          }
          return registry.download(n, v, dir);
        },
      },
    });
    const h = holder(slow);
    await h.start();
    try {
      assert.equal(h.current()!.card.version, 1);
      await registerModel(registry, name, COLUMNS, files(100));
      hold = true;
      const swapping = h.refresh();
      await waitFor('the holder to be loading the new version', () => held, Boolean, { everyMs: 5 });
      assert.equal(h.current()!.card.version, 1, 'still the old champion while the new one loads');
      assert.equal(h.current()!.predict(vector({ rsi_14: 70, ret_1m: 1 })).returnBps, 6);
      release();
      assert.equal(await swapping, true);
      assert.equal(h.current()!.card.version, 2);
      assert.equal(h.current()!.predict(vector({ rsi_14: 70, ret_1m: 1 })).returnBps, 106);
      assert.equal(h.stats.swaps, 1);
      // A rollback moves the alias back: the holder follows it.
      hold = false;
      await registry.setAlias(name, 'champion', 1, 'rollback');
      assert.equal(await h.refresh(), true);
      assert.equal(h.current()!.card.version, 1);
    } finally {
      h.stop();
    }
  });

  it('picks a promotion up by polling the alias', async (t) => {
    // The poll interval is the subject: its timer runs on a mock clock moved by hand (the registry's file I/O and
    // the wait for its result run on the real one).
    t.mock.timers.enable({ apis: ['setInterval'] });
    const { registry, name, holder } = setup();
    await registerModel(registry, name, COLUMNS, files(0));
    const h = holder(registry, 30_000);
    await h.start();
    try {
      assert.equal(h.stats.polls, 1, 'the alias is read once at start');
      await registerModel(registry, name, COLUMNS, files(1));
      t.mock.timers.tick(29_999);
      assert.equal(h.stats.polls, 1, 'no poll before the interval');
      t.mock.timers.tick(1);
      assert.equal(h.stats.polls, 2, 'a poll at the interval');
      await waitFor(
        'the promoted version to be served',
        () => h.current()!.card.version,
        (v) => v === 2,
        {
          everyMs: 5,
        },
      );
    } finally {
      h.stop();
    }
  });

  it('keeps the old champion when the new one is broken (bad JSON), unservable (news columns) or inconsistent (card vs model inputs)', async () => {
    const { registry, name, holder } = setup();
    await registerModel(registry, name, COLUMNS, files());
    // The counter is the process's (other tests count failures of the same model name): its growth here.
    const failuresCounted = async () =>
      (await metrics.championLoadFailures.get()).values.find((v) => v.labels.model === name)?.value ?? 0;
    const countedBefore = await failuresCounted();
    const h = holder();
    await h.start();
    try {
      await registerModel(registry, name, COLUMNS, { ...files(), p90: '{"learner": "not a model"' });
      assert.equal(await h.refresh(), false);
      assert.equal(h.current()!.card.version, 1);
      // Columns the technical vectors do not have (a news model): refused by name.
      await registerModel(registry, name, [...COLUMNS, 'news_sent_ewm_1h'], files());
      assert.equal(await h.refresh(), false);
      assert.equal(h.current()!.card.version, 1);
      // The card's columns and the model's inputs disagree.
      await registerModel(registry, name, ['rsi_14'], files());
      assert.equal(await h.refresh(), false);
      assert.equal(h.current()!.card.version, 1);
      assert.equal(h.stats.failures, 3);
      assert.equal(
        (await failuresCounted()) - countedBefore,
        3,
        'counted in cryptocast_champion_load_failures_total, for the alert',
      );
      assert.equal(h.stats.loads, 1);
      // A good one after the broken ones is taken.
      await registerModel(registry, name, COLUMNS, files(7));
      assert.equal(await h.refresh(), true);
      assert.equal(h.current()!.card.version, 5);
    } finally {
      h.stop();
    }
  });

  it('a broken champion promoted again after a rollback is said again in the log, and no failure is reported while the served one is named', async () => {
    const { registry, name } = setup();
    await registerModel(registry, name, COLUMNS, files()); // v1, champion
    const errors: { version: number; msg: string }[] = [];
    const logger = pino(
      { level: 'error' },
      { write: (line: string) => void errors.push(JSON.parse(line) as { version: number; msg: string }) },
    );
    const h = new ChampionHolder(registry, {
      name,
      cacheDir: scratchDir('cc-cache-'),
      pollMs: 3_600_000,
      logger,
    });
    await h.start();
    try {
      const broken = await registerModel(registry, name, COLUMNS, { ...files(), p90: '{"learner": "cut' }); // v2
      assert.equal(await h.refresh(), false);
      assert.equal(h.loadFailure()?.version, broken.version);
      // Rolled back to v1, the one served: nothing fails now.
      await registry.setAlias(name, 'champion', 1, 'rollback');
      await h.refresh();
      assert.equal(h.current()?.card.version, 1);
      assert.equal(h.loadFailure(), undefined, 'the failure of a version no longer named is not reported');
      // Promoted again (by hand, thought mended): its failure is news again, logged as the first time was.
      await registry.setAlias(name, 'champion', broken.version, 'promote again');
      assert.equal(await h.refresh(), false);
      assert.deepEqual(
        errors.map((e) => e.version),
        [broken.version, broken.version],
        'each promotion of the broken version is said at error level',
      );
    } finally {
      h.stop();
    }
  });

  it('keeps serving when the registry cannot be read', async () => {
    const { registry, name, holder } = setup();
    await registerModel(registry, name, COLUMNS, files());
    let down = false;
    const flaky: ModelRegistry = Object.create(registry, {
      alias: {
        value: async (n: string, a: 'champion') => {
          if (down) throw new Error('connection refused');
          return registry.alias(n, a);
        },
      },
    });
    const h = holder(flaky);
    await h.start();
    try {
      down = true;
      assert.equal(await h.refresh(), false);
      assert.equal(h.current()!.card.version, 1);
    } finally {
      h.stop();
    }
  });
});

describe('ChampionHolder at start, before anything is served', () => {
  it('a download of the named champion that fails (a registry 5xx) is waited for and retried soon, not taken as "no champion"', async () => {
    const { registry, name, holder } = setup();
    await registerModel(registry, name, COLUMNS, files());
    let failuresLeft = 2;
    const flaky: ModelRegistry = Object.create(registry, {
      download: {
        value: async (...args: Parameters<ModelRegistry['download']>) => {
          if (failuresLeft > 0) {
            failuresLeft--;
            throw new Error('MLflow GET .../model.json failed: HTTP 503');
          }
          return registry.download(...args);
        },
      },
    });
    // A poll period far longer than the test: the champion can only arrive by the back-off retries.
    const h = holder(flaky, 3_600_000);
    await h.start();
    try {
      assert.equal(h.current(), undefined);
      assert.equal(h.waitingForChampion(), true, 'the predictor holds its batches (they are redelivered)');
      assert.match(h.loadFailure()!.message, /HTTP 503/);
      await waitFor(
        'the champion to load on a retry',
        () => h.current()?.card.version,
        (v) => v === 1,
        {
          timeoutMs: 30_000,
          everyMs: 20,
        },
      );
      assert.equal(h.stats.failures, 2, 'retried after each failure');
      assert.equal(h.waitingForChampion(), false);
      assert.equal(h.loadFailure(), undefined);
    } finally {
      h.stop();
    }
  });

  it('a champion that can never be served (news columns) is "no champion", not waited for', async () => {
    const { registry, name, holder } = setup();
    await registerModel(registry, name, [...COLUMNS, 'news_sent_ewm_1h'], files());
    const h = holder(registry, 3_600_000);
    await h.start();
    try {
      assert.equal(h.current(), undefined);
      assert.equal(
        h.waitingForChampion(),
        false,
        'the predictor skips as no_champion rather than hold forever',
      );
      assert.match(h.loadFailure()!.message, /news_sent_ewm_1h/);
    } finally {
      h.stop();
    }
  });

  it('a model cache folder that cannot be written is not waited for either', async () => {
    const { registry, name } = setup();
    await registerModel(registry, name, COLUMNS, files());
    const notAFolder = join(scratchDir('cc-cache-'), 'file');
    writeFileSync(notAFolder, 'x');
    const h = new ChampionHolder(registry, { name, cacheDir: notAFolder, pollMs: 3_600_000, logger: quiet });
    await h.start();
    try {
      assert.equal(h.current(), undefined);
      assert.equal(h.waitingForChampion(), false);
      assert.match(h.loadFailure()!.message, /cannot write the model cache folder/);
    } finally {
      h.stop();
    }
  });
});

describe('the model cache shared by every run in a working folder', () => {
  it("two registries holding the same name and version never serve each other's files", async () => {
    // Two runs in one folder (one cache), each on its own registry with its own "price" v1.
    const cacheDir = scratchDir('cc-cache-');
    const regA = new LocalRegistry(scratchDir('cc-reg-a-'));
    const regB = new LocalRegistry(scratchDir('cc-reg-b-'));
    await registerModel(regA, 'price', COLUMNS, files(0));
    await registerModel(regB, 'price', COLUMNS, files(100));
    const hB = new ChampionHolder(regB, { name: 'price', cacheDir, logger: quiet });
    // B loads between A's download and A's read of the files: the narrow window of two runs starting together.
    const slowA: ModelRegistry = Object.create(regA, {
      download: {
        value: async (n: string, v: number, dir: string) => {
          const got = await regA.download(n, v, dir);
          assert.equal(await hB.refresh(), true);
          return got;
        },
      },
    });
    const hA = new ChampionHolder(slowA, { name: 'price', cacheDir, logger: quiet });
    assert.equal(await hA.refresh(), true);
    const at = vector({ rsi_14: 70, ret_1m: 1 });
    assert.equal(hA.current()!.predict(at).returnBps, 6, "A serves A's model");
    assert.equal(hB.current()!.predict(at).returnBps, 106, "B serves B's model");
    // One rule for the folder (the backtest downloads there too): under the registry, then name and version.
    const a = modelCacheFolder(regA, 'price', 1, cacheDir);
    assert.notEqual(a, modelCacheFolder(regB, 'price', 1, cacheDir));
    assert.equal(a, modelCacheFolder(new LocalRegistry(regA.location), 'price', 1, cacheDir), 'stable');
    assert.ok(a.startsWith(cacheDir) && a.endsWith(join('price', '1')), a);
    assert.deepEqual(readdirSync(a), [], 'each load reads its own copy and removes it');
  });

  it('two runs on the same registry loading the same version at once: each copies into a folder of its own', async () => {
    // Into one shared folder, one run's copy (a truncate, then a write) could be read half-written by the other.
    const cacheDir = scratchDir('cc-cache-');
    const reg = new LocalRegistry(scratchDir('cc-reg-'));
    await registerModel(reg, 'price', COLUMNS, files(0));
    const dirs: string[] = [];
    let inside = 0;
    let together = 0;
    const watched: ModelRegistry = Object.create(reg, {
      download: {
        value: async (n: string, v: number, dir: string) => {
          dirs.push(dir);
          inside++;
          together = Math.max(together, inside);
          try {
            const got = await reg.download(n, v, dir);
            await new Promise((r) => setImmediate(r)); // the other load's download runs here
            assert.equal(readFileSync(got['model.json']!, 'utf8'), files(0).model, 'its own copy, whole');
            return got;
          } finally {
            inside--;
          }
        },
      },
    });
    const h1 = new ChampionHolder(watched, { name: 'price', cacheDir, logger: quiet });
    const h2 = new ChampionHolder(watched, { name: 'price', cacheDir, logger: quiet });
    assert.deepEqual(await Promise.all([h1.refresh(), h2.refresh()]), [true, true]);
    assert.equal(together, 2, 'the two downloads overlapped');
    assert.equal(new Set(dirs).size, 2, 'two folders');
    const version = modelCacheFolder(reg, 'price', 1, cacheDir);
    for (const d of dirs) assert.equal(dirname(d), version);
    assert.deepEqual(readdirSync(version), [], 'both removed after reading');
  });
});

describe('ChampionHolder pollMs', () => {
  it('refuses, as it is built, a poll interval no timer can hold (CC_ERR_CONFIG naming it)', () => {
    // Node fires a timer set over 2^31 − 1 ms (~24.8 days) after 1 ms, and one of 0 or less at once: the alias was
    // polled every millisecond. Only the CLI's --poll was checked; a library caller's value went straight in.
    const { registry, name } = setup();
    for (const pollMs of [2 ** 31, 25 * 86_400_000, 0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(
        () => new ChampionHolder(registry, { name, pollMs, logger: quiet }),
        (err: Error & { code?: string }) =>
          err.code === 'CC_ERR_CONFIG' &&
          err.message.includes('pollMs') &&
          err.message.includes(String(pollMs)),
        `pollMs ${pollMs}`,
      );
    for (const pollMs of [1, 30_000, 2 ** 31 - 1])
      assert.equal(new ChampionHolder(registry, { name, pollMs, logger: quiet }).pollMs, pollMs);
  });
});

describe('columnIndex: which cards the predictor can serve', () => {
  const card = (o: Partial<ModelCard>) =>
    ({
      name: 'm',
      version: 1,
      target: 'log_return_bps',
      columns: ['ret_1m'],
      featureSets: [{ name: FEATURE_SET.name, version: FEATURE_SET.version }],
      ...o,
    }) as ModelCard;

  it('maps each input column to its index in a technical vector', () => {
    assert.deepEqual(columnIndex(card({ columns: ['rsi_14', 'ret_1m', 'atr_14_rel'] })), [
      FEATURE_COLUMNS.indexOf('rsi_14'),
      0,
      FEATURE_COLUMNS.length - 1,
    ]);
  });

  it('refuses a model trained on another version of the technical set (same column names, other definitions)', () => {
    const other = [{ name: FEATURE_SET.name, version: FEATURE_SET.version + 1 }];
    assert.throws(
      () => columnIndex(card({ featureSets: other })),
      (e: unknown) =>
        e instanceof ModelLoadError &&
        e.message.includes(
          `trained on ${FEATURE_SET.name} v${FEATURE_SET.version + 1}, the live features are v${FEATURE_SET.version}`,
        ),
    );
  });

  it('refuses columns outside the technical set, and another target, with a clear error', () => {
    assert.throws(
      () => columnIndex(card({ columns: ['ret_1m', 'news_count_1h'] })),
      (e: unknown) =>
        e instanceof ModelLoadError && /news_count_1h are not in the technical feature set/.test(e.message),
    );
    assert.throws(
      () => columnIndex(card({ target: 'price' as 'log_return_bps' })),
      (e: unknown) => e instanceof ModelLoadError && /target "price" is not log_return_bps/.test(e.message),
    );
  });
});
