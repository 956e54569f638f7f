import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import pino from 'pino';
import { ChampionHolder } from '../../src/inference/model-holder.ts';
import { MlflowRegistry } from '../../src/training/registry/mlflow.ts';
import { MlflowClient } from '../../src/training/registry/mlflow-client.ts';
import { openRegistry, TRAINING_REGISTRY } from '../../src/training/registry/open.ts';
import { RegistryError } from '../../src/training/registry/registry.ts';
import { registerModel, stumpModel } from '../support/champion.ts';
import { OutageProxy } from '../support/outage-proxy.ts';
import { registryContract, sampleModel } from '../support/registry-contract.ts';
import { scratchDir } from '../support/scratch.ts';

/** The same contract as the local directory, against a real MLflow tracking server (scripts/mlflow.sh). */
const ROOT = join(import.meta.dirname, '..', '..');
const BASE = process.env.CRYPTOCAST_TEST_MLFLOW ?? 'http://127.0.0.1:5500';
const URL = `mlflow+${BASE}`;

/** MLflow's own REST API, as the MLflow UI reads it. */
async function mlflow<T>(path: string): Promise<T> {
  const res = await fetch(`${BASE}/api/2.0/mlflow/${path}`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as T;
}

describe('MLflow registry (a real tracking server)', () => {
  before(() => {
    if (!process.env.CRYPTOCAST_TEST_MLFLOW)
      execFileSync('bash', [join(ROOT, 'scripts', 'mlflow.sh'), 'start'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
  });

  registryContract(() => openRegistry(URL));

  it('shows the registered model, its version, run and champion alias in MLflow itself', async () => {
    const reg = await openRegistry(URL);
    assert.equal(reg.kind, 'mlflow');
    const name = `ui-${process.pid}-${Date.now().toString(36)}`;
    const s = sampleModel(name, 'ui');
    const card = await reg.register(s.card, s.dir);
    await reg.setAlias(name, 'champion', card.version, 'first model');

    const { registered_model: rm } = await mlflow<{
      registered_model: { name: string; aliases?: { alias: string; version: string }[] };
    }>(`registered-models/get?name=${name}`);
    assert.equal(rm.name, name);
    assert.deepEqual(rm.aliases, [{ alias: 'champion', version: '1' }]);

    const { model_version: mv } = await mlflow<{
      model_version: { version: string; run_id: string; status: string; aliases?: string[] };
    }>(`model-versions/get?name=${name}&version=1`);
    assert.equal(mv.status, 'READY');
    assert.deepEqual(mv.aliases, ['champion']);

    const { run } = await mlflow<{
      run: {
        info: { status: string; artifact_uri: string };
        data: {
          params?: { key: string; value: string }[];
          metrics?: { key: string; value: number }[];
          tags?: { key: string; value: string }[];
        };
      };
    }>(`runs/get?run_id=${mv.run_id}`);
    assert.equal(run.info.status, 'FINISHED');
    assert.deepEqual(Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value])), {
      max_depth: '4',
      tag: 'ui',
    });
    const metrics = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
    assert.equal(metrics['summary.skill'], 0.25);
    assert.equal(metrics['fold.model.mae_price'], 1.5);
    const tags = Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
    assert.equal(tags['cryptocast.model_version'], `${name}/1`);
    assert.equal(tags['mlflow.source.git.commit'], 'abc123');

    const { files } = await mlflow<{ files: { path: string }[] }>(`artifacts/list?run_id=${mv.run_id}`);
    assert.deepEqual(files.map((f) => f.path).sort(), ['card.json', 'model.json', 'report.md']);
    const stored = await fetch(
      `${BASE}/api/2.0/mlflow-artifacts/artifacts/${run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '')}/card.json`,
    );
    assert.deepEqual(await stored.json(), card);
    await reg.close();
  });

  it('keeps the alias history across registry instances (it lives in MLflow)', async () => {
    const name = `hist-${process.pid}-${Date.now().toString(36)}`;
    const a = await openRegistry(URL);
    for (const t of ['a', 'b']) {
      const s = sampleModel(name, t);
      await a.register(s.card, s.dir);
    }
    await a.setAlias(name, 'champion', 1, 'r1');
    await a.setAlias(name, 'champion', 2, 'x'.repeat(6000));
    await a.close();
    const b = await openRegistry(URL);
    const h = await b.aliasHistory(name);
    assert.deepEqual(
      h.map((c) => [c.alias, c.version, c.previous]),
      [
        ['champion', 1, null],
        ['champion', 2, 1],
      ],
    );
    assert.equal(h[0]!.reason, 'r1');
    assert.match(h[1]!.reason, /^x{4000,}.*\(cut\)$/);
    assert.equal(await b.alias(name, 'champion'), 2);
    assert.deepEqual(await b.aliasHistory(`never-${name}`), []);
    assert.deepEqual(await b.list(`never-${name}`), []);
    await b.close();
  });

  it('fails with a clear RegistryError when the server is unreachable or refuses', async () => {
    // A port nothing listens on: one the kernel just handed out and that was closed again.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const down = new MlflowRegistry(`http://127.0.0.1:${port}`, { timeoutMs: 5_000 });
    await assert.rejects(down.list('m'), (err: Error) => {
      assert.ok(err instanceof RegistryError, String(err));
      assert.match(
        err.message,
        new RegExp(`MLflow at http://127\\.0\\.0\\.1:${port} is unreachable \\(ECONNREFUSED\\)`),
      );
      return true;
    });
    const s = sampleModel('m', 'a');
    await assert.rejects(down.register(s.card, s.dir), /unreachable/);

    // MLflow's own error answer (an invalid filter here) comes through with its status and error_code.
    const client = new MlflowClient(URL.slice('mlflow+'.length));
    await assert.rejects(client.api('GET', 'model-versions/search', { filter: "name=='x" }), (err: Error) => {
      assert.ok(err instanceof RegistryError);
      assert.match(err.message, /HTTP 400 INVALID_PARAMETER_VALUE: /);
      return true;
    });
  });
});

describe('MLflow registry: a champion whose card is damaged in MLflow', () => {
  /** Registers a servable champion, then damages its card.json in MLflow's artifact store (`how`). */
  async function damagedChampion(how: 'not JSON' | 'deleted') {
    const reg = new MlflowRegistry(BASE);
    const name = `damaged-${process.pid}-${Date.now().toString(36)}`;
    const stump = stumpModel(1, [{ f: 0, c: 50, a: -1, b: 1 }]);
    const v = await registerModel(reg, name, ['rsi_14'], { model: stump, p10: stump, p90: stump });
    const { model_version: mv } = await mlflow<{ model_version: { source: string } }>(
      `model-versions/get?name=${name}&version=${v.version}`,
    );
    const card = `${BASE}/api/2.0/mlflow-artifacts/artifacts/${mv.source.replace(/^mlflow-artifacts:\//, '')}/card.json`;
    const res = await fetch(
      card,
      how === 'deleted' ? { method: 'DELETE' } : { method: 'PUT', body: '{"cut sh' },
    );
    assert.equal(res.ok, true, `${how}: HTTP ${res.status}`);
    return { reg, name };
  }

  for (const how of ['not JSON', 'deleted'] as const)
    it(`a card.json ${how}: the predictor does not wait for it (no features held forever), and names the card`, async () => {
      const { reg, name } = await damagedChampion(how);
      const h = new ChampionHolder(reg, {
        name,
        cacheDir: scratchDir('cc-cache-'),
        pollMs: 3_600_000,
        logger: pino({ level: 'silent' }),
      });
      await h.start();
      try {
        assert.equal(h.current(), undefined);
        assert.match(h.loadFailure()?.message ?? '', /card\.json/);
        assert.equal(h.waitingForChampion(), false, 'a damaged version does not mend by waiting');
      } finally {
        h.stop();
        await reg.close();
      }
    });
});

describe('MLflow restarting while a training run registers its model (a real MLflow behind a proxy that drops it)', () => {
  const upstreamPort = Number(new globalThis.URL(BASE).port);

  for (const [what, test] of [
    ['the first artifact upload', (m: string, path: string) => m === 'PUT' && /mlflow-artifacts/.test(path)],
    ['the champion alias move', (_m: string, path: string) => path.includes('registered-models/alias')],
    ['the alias history tag', (_m: string, path: string) => path.includes('registered-models/set-tag')],
  ] as const)
    it(`MLflow away for 3 s from ${what}: tried again with back-off, the version registered whole and champion, its history kept`, async () => {
      const proxy = await OutageProxy.start(upstreamPort);
      const reg = await openRegistry(`mlflow+http://127.0.0.1:${proxy.port}`, TRAINING_REGISTRY);
      try {
        const name = `outage-${process.pid}-${Date.now().toString(36)}`;
        const s = sampleModel(name, 'a');
        proxy.outageOn((req) => test(req.method ?? '', req.url ?? ''), 3_000);
        const card = await reg.register(s.card, s.dir);
        await reg.setAlias(name, 'champion', card.version, 'promoted by the gate', { version: undefined });
        assert.ok(proxy.dropped.length > 0, `the outage happened (${what})`);
        // As MLflow itself has it, without the proxy: one version, whole, and the champion with its history.
        const direct = await openRegistry(URL);
        assert.deepEqual(
          (await direct.list(name)).map((c) => c.version),
          [1],
        );
        assert.equal(await direct.alias(name, 'champion'), 1);
        assert.deepEqual(
          (await direct.aliasHistory(name)).map((c) => [c.alias, c.version, c.reason]),
          [['champion', 1, 'promoted by the gate']],
        );
        const files = await direct.download(name, 1, scratchDir('cc-dl-'));
        assert.deepEqual(Object.keys(files).sort(), ['model.json', 'report.md']);
      } finally {
        await reg.close();
        await proxy.close();
      }
    });

  it('opened as other commands open it (no retries), MLflow away fails at once with a clear RegistryError', async () => {
    const proxy = await OutageProxy.start(upstreamPort);
    const reg = await openRegistry(`mlflow+http://127.0.0.1:${proxy.port}`);
    try {
      proxy.outageOn(() => true, 60_000);
      const started = Date.now();
      await assert.rejects(reg.alias('m', 'champion'), (err: Error) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.match(err.message, /MLflow at http:\/\/127\.0\.0\.1:\d+ is unreachable/);
        return true;
      });
      assert.ok(Date.now() - started < 10_000, 'not waited for');
    } finally {
      await reg.close();
      await proxy.close();
    }
  });
});
