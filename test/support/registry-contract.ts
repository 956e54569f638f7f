import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import {
  AliasMovedError,
  finishedVersions,
  type ModelRegistry,
  type NewModelCard,
} from '../../src/training/registry/registry.ts';
import { scratchDir } from './scratch.ts';

/** A minimal valid card for model `name` with artifacts model.json and report.md written to a temp folder. */
export function sampleModel(name: string, tag: string): { card: NewModelCard; dir: string } {
  const dir = scratchDir('cc-model-');
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ learner: { tag } }));
  writeFileSync(join(dir, 'report.md'), `# report ${tag}\n`);
  writeFileSync(join(dir, 'not-listed.bin'), 'must not be stored');
  const card: NewModelCard = {
    name,
    codeVersion: 'abc123',
    horizonMs: 300_000,
    target: 'log_return_bps',
    featureSets: [{ name: 'technical', version: 1 }],
    columns: ['ret_1m', 'ret_5m'],
    pairs: ['BTC/USDT'],
    trainingWindow: { from: 1, to: 2 },
    datasetFingerprint: `sha256:${tag}`,
    params: { max_depth: 4, tag },
    folds: [
      {
        fold: 0,
        trainFrom: 0,
        trainTo: 10,
        testFrom: 20,
        testTo: 30,
        n: 5,
        metrics: { model: { mae_price: 1.5 }, persistence: { mae_price: 2 } },
      },
    ],
    summary: { skill: 0.25 },
    artifacts: ['model.json', 'report.md'],
    gate: { promoted: false, reasons: ['test'] },
  };
  return { card, dir };
}

/** The behaviour every registry backend must have; run against the local directory and a real MLflow server. */
export function registryContract(open: () => Promise<ModelRegistry>): void {
  let n = 0;
  const name = () => `contract-${process.pid}-${Date.now().toString(36)}-${++n}`;

  it('numbers versions 1, 2, … per model and round-trips the card and the listed artifacts', async () => {
    const reg = await open();
    try {
      const m = name();
      const a = sampleModel(m, 'a');
      const b = sampleModel(m, 'b');
      const v1 = await reg.register(a.card, a.dir);
      const v2 = await reg.register(b.card, b.dir);
      assert.equal(v1.version, 1);
      assert.equal(v2.version, 2);
      const got = await reg.get(m, 2);
      assert.deepEqual(got?.params, { max_depth: 4, tag: 'b' });
      assert.deepEqual(got?.folds, b.card.folds);
      assert.equal(got?.datasetFingerprint, 'sha256:b');
      assert.ok((got?.createdAt ?? 0) > Date.now() - 600_000);
      assert.deepEqual(
        (await reg.list(m)).map((c) => c.version),
        [1, 2],
      );
      assert.equal(await reg.get(m, 3), undefined);
      const out = scratchDir('cc-dl-');
      const files = await reg.download(m, 1, out);
      assert.deepEqual(Object.keys(files).sort(), ['model.json', 'report.md']);
      assert.equal(JSON.parse(readFileSync(files['model.json']!, 'utf8')).learner.tag, 'a');
      assert.equal(readFileSync(files['report.md']!, 'utf8'), '# report a\n');
    } finally {
      await reg.close();
    }
  });

  it('points aliases at versions, records every change, and refuses unknown versions', async () => {
    const reg = await open();
    try {
      const m = name();
      for (const t of ['a', 'b', 'c']) {
        const s = sampleModel(m, t);
        await reg.register(s.card, s.dir);
      }
      assert.equal(await reg.alias(m, 'champion'), undefined);
      await reg.setAlias(m, 'champion', 1, 'first');
      await reg.setAlias(m, 'challenger', 2, 'not good enough');
      await reg.setAlias(m, 'champion', 3, 'beat v1');
      assert.equal(await reg.alias(m, 'champion'), 3);
      assert.equal(await reg.alias(m, 'challenger'), 2);
      const h = await reg.aliasHistory(m);
      assert.deepEqual(
        h.map((c) => [c.alias, c.version, c.previous, c.reason]),
        [
          ['champion', 1, null, 'first'],
          ['challenger', 2, null, 'not good enough'],
          ['champion', 3, 1, 'beat v1'],
        ],
      );
      await assert.rejects(reg.setAlias(m, 'champion', 9, 'x'), /no version 9/);
      assert.equal(await reg.alias(m, 'champion'), 3);
    } finally {
      await reg.close();
    }
  });

  it('moves an alias conditionally only from the version expected (AliasMovedError otherwise, nothing changed)', async () => {
    const reg = await open();
    try {
      const m = name();
      for (const t of ['a', 'b', 'c']) {
        const s = sampleModel(m, t);
        await reg.register(s.card, s.dir);
      }
      await reg.setAlias(m, 'champion', 1, 'first', { version: undefined });
      await assert.rejects(
        reg.setAlias(m, 'champion', 2, 'stale', { version: undefined }),
        (err: unknown) => {
          assert.ok(err instanceof AliasMovedError);
          assert.equal(err.current, 1);
          return true;
        },
      );
      await assert.rejects(reg.setAlias(m, 'champion', 2, 'stale', { version: 3 }), AliasMovedError);
      assert.equal(await reg.alias(m, 'champion'), 1);
      assert.equal((await reg.aliasHistory(m)).length, 1, 'a refused change is not recorded');
      await reg.setAlias(m, 'champion', 2, 'beat v1', { version: 1 });
      assert.equal(await reg.alias(m, 'champion'), 2);
    } finally {
      await reg.close();
    }
  });

  it('counts as finished only the versions an alias names or named (a run stopped after registering moved none)', async () => {
    const reg = await open();
    try {
      const m = name();
      for (const t of ['a', 'b', 'c', 'd']) {
        const s = sampleModel(m, t);
        await reg.register(s.card, s.dir);
      }
      await reg.setAlias(m, 'champion', 1, 'first');
      await reg.setAlias(m, 'champion', 2, 'beat v1'); // v1 named before, not now
      await reg.setAlias(m, 'challenger', 4, 'not good enough'); // v3: registered, its run stopped
      assert.deepEqual([...(await finishedVersions(reg, m))].sort(), [1, 2, 4]);
    } finally {
      await reg.close();
    }
  });

  it('gives concurrent registrations distinct versions', async () => {
    const reg = await open();
    try {
      const m = name();
      const made = await Promise.all(
        ['a', 'b', 'c', 'd'].map((t) => {
          const s = sampleModel(m, t);
          return reg.register(s.card, s.dir);
        }),
      );
      assert.deepEqual(made.map((c) => c.version).sort(), [1, 2, 3, 4]);
      assert.equal((await reg.list(m)).length, 4);
    } finally {
      await reg.close();
    }
  });
}
