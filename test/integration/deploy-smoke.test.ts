import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { defineTopic } from '../../src/runtime/topic.ts';
import { topics } from '../../src/schemas/topics.ts';
import {
  helmTemplate,
  type K8sObject,
  parseManifests,
  podSpec,
  ROOT,
  VALUES_DIR,
} from '../support/deploy.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';
import { ensureOpenSearch, OPENSEARCH_URL } from '../support/opensearch.ts';
import { PG_URL } from '../support/postgres.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * What the chart would run, run here: every Deployment of the production values rendered against this machine's
 * Kafka, PostgreSQL and OpenSearch, and each container's arguments and environment (ConfigMap references resolved,
 * Secrets from a stand-in) started as a process. Each must come up ("running" in its log; the probes the chart
 * names answering: /health and /ready on the metrics port, the API's /v1/health), write nothing to a laptop default
 * (no DuckDB file appears: every store is PostgreSQL), and stop cleanly on SIGTERM. The sources are pointed at closed local ports: nothing reaches the internet.
 */

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

type EnvEntry = {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { key: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
};

describe('the chart’s workloads started as processes against real Kafka, PostgreSQL and OpenSearch', () => {
  const children: ChildProcess[] = [];
  const workdir = scratchDir('cc-smoke-');
  let objects: K8sObject[];
  let apiPort: number;

  before(async () => {
    await ensureKafka();
    await ensureOpenSearch();
    const pg = new URL(PG_URL);
    const kafka = KAFKA_URL.replace(/^kafka:\/\//, '');
    const registry = join(workdir, 'registry');
    mkdirSync(registry);
    apiPort = await freePort();
    const metricsPort = await freePort();
    const closed = 'http://127.0.0.1:1';
    objects = parseManifests(
      helmTemplate(join(VALUES_DIR, 'production-values.yaml'), [
        `kafka.bootstrapServers=${kafka}`,
        `kafka.topicPrefix=${uniquePrefix('smoke')}`,
        'kafka.replicationFactor=1',
        // The production values' SCRAM over TLS, off: this broker is plaintext (kafka-sasl-ssl.test.ts runs the same
        // settings against a real SASL_SSL listener; deploy-chart.test.ts checks they are rendered).
        'kafka.tls.enabled=false',
        'kafka.tls.caSecret.name=',
        'kafka.sasl.mechanism=',
        'kafka.sasl.username=',
        'kafka.sasl.passwordSecret.name=',
        `postgresql.host=${pg.hostname}`,
        `postgresql.port=${pg.port}`,
        `postgresql.user=${pg.username}`,
        `postgresql.database=${pg.pathname.slice(1)}`,
        'postgresql.options=',
        'postgresql.caSecret.name=', // this server is plaintext (postgres-tls.test.ts runs TLS on a real one)
        `registry.url=${registry}`,
        'registry.persistence.enabled=true',
        'registry.persistence.existingClaim=registry',
        `registry.persistence.mountPath=${registry}`,
        `opensearch.url=${OPENSEARCH_URL}`,
        `opensearch.indexPrefix=smoke-${process.pid}-`,
        'opensearch.caSecret.name=', // this node is plain HTTP (opensearch-tls.test.ts checks the CA against HTTPS)
        `api.port=${apiPort}`,
        `metrics.port=${metricsPort}`,
        `sentiment.openai.baseUrl=${closed}/v1`,
        'logLevel=info',
        // The sources, at ports where nothing listens: they start, fail to connect, and retry.
        `news.feeds[0]=${closed}/rss`,
        'services.trades.extraEnv[0].name=CRYPTOCAST_KRAKEN_WS_URL',
        'services.trades.extraEnv[0].value=ws://127.0.0.1:1',
        'services.trades.extraEnv[1].name=CRYPTOCAST_KRAKEN_REST_URL',
        `services.trades.extraEnv[1].value=${closed}`,
        'services.news.extraEnv[0].name=CRYPTOCAST_CRYPTOPANIC_URL',
        `services.news.extraEnv[0].value=${closed}`,
      ]),
    );
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(workdir, { recursive: true, force: true });
  });

  it('the topics Job: creates every declared topic with its partitions, again without harm, refuses a wrong count', async () => {
    const job = objects.find(
      (o) => o.kind === 'Job' && o.metadata.labels['app.kubernetes.io/component'] === 'topics',
    )!;
    const c = podSpec(job).containers[0];
    const env = Object.fromEntries((c.env as EnvEntry[]).map((e) => [e.name, e.value!]));
    const runJob = (extra: Record<string, string> = {}) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        let out = '';
        let err = '';
        const child = spawn(
          process.execPath,
          ['--disable-warning=ExperimentalWarning', join(ROOT, 'src/cli/main.ts'), ...(c.args as string[])],
          { env: { PATH: process.env.PATH ?? '', ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        child.stdout!.on('data', (b) => {
          out += b;
        });
        child.stderr!.on('data', (b) => {
          err += b;
        });
        child.on('exit', (code) => resolve({ code, out, err }));
      });
    const first = await runJob();
    assert.equal(first.code, 0, first.err);
    const bus = KafkaBus.connect(KAFKA_URL, { topicPrefix: env.CRYPTOCAST_TOPIC_PREFIX });
    try {
      const { latest } = await bus.offsets(bus.name(topics.predictions));
      assert.equal(Object.keys(latest).length, topics.predictions.partitions);
      for (const t of Object.values(topics))
        assert.match(first.out, new RegExp(`${bus.name(t)}\\t${t.partitions} partitions`));
    } finally {
      await bus.close();
    }
    assert.equal((await runJob()).code, 0, 'idempotent');
    // A topic that exists with another partition count: the Job fails (status 1) and says what to do.
    const prefix = uniquePrefix('smoke-wrong');
    const other = KafkaBus.connect(KAFKA_URL, { topicPrefix: prefix });
    try {
      await other.ensureTopics([defineTopic({ ...topics.candles, partitions: 2 })]);
    } finally {
      await other.close();
    }
    const wrong = await runJob({ CRYPTOCAST_TOPIC_PREFIX: prefix });
    assert.equal(wrong.code, 1, wrong.err);
    assert.match(wrong.err, /has 2 partitions but cryptocast declares 4.*\[CC_ERR_TOPICS\]/s);
  });

  it('the embedded mode: one `cryptocast run --source live` from its rendered args and env serves the API', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const objs = parseManifests(
      helmTemplate(join(VALUES_DIR, 'embedded-values.yaml'), [
        `api.port=${port}`,
        `metrics.port=${metricsPort}`,
        'logLevel=info',
      ]),
    );
    const cm = objs.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>;
    const d = objs.find((o) => o.kind === 'Deployment')!;
    const c = podSpec(d).containers[0];
    const cwd = join(workdir, 'embedded');
    mkdirSync(join(cwd, '.data'), { recursive: true });
    // The pod's volume is mounted at /app/.data: here, the process's own folder.
    const local = (v: string) => v.replaceAll('/app/.data', join(cwd, '.data'));
    const env: Record<string, string> = {};
    for (const e of (c.env ?? []) as EnvEntry[])
      if (e.valueFrom?.configMapKeyRef) env[e.name] = local(cm[e.valueFrom.configMapKeyRef.key]!);
    const child = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        join(ROOT, 'src/cli/main.ts'),
        ...(c.args as string[]).map(local),
      ],
      {
        cwd,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: cwd,
          ...env,
          // The live source at a port where nothing listens: nothing reaches the internet.
          CRYPTOCAST_KRAKEN_WS_URL: 'ws://127.0.0.1:1',
          CRYPTOCAST_KRAKEN_REST_URL: 'http://127.0.0.1:1',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(child);
    let log = '';
    child.stderr!.on('data', (b) => {
      log += b;
    });
    const state = await waitFor(
      'the embedded run to answer /v1/health, or to exit',
      async () =>
        child.exitCode !== null
          ? 'exited'
          : fetch(`http://127.0.0.1:${port}/v1/health`, { signal: AbortSignal.timeout(2_000) }).then(
              (r) => (r.status === 200 ? 'up' : 'starting'),
              () => 'starting',
            ),
      (v) => v !== 'starting',
      { timeoutMs: 60_000, everyMs: 250 },
    ).catch((err) => `${(err as Error).message}`);
    assert.equal(state, 'up', log.slice(-2000));
    // Its readinessProbe: /v1/ready, with no champion in the registry yet.
    await waitFor(
      'the embedded run /v1/ready',
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/v1/ready`);
        return `${r.status} ${await r.text()}`;
      },
      (v) => v.startsWith('200 '),
      { timeoutMs: 60_000, everyMs: 250 },
    );
    assert.ok(existsSync(join(cwd, '.data', 'cryptocast.duckdb')), 'the DuckDB file on the volume');
    // Its /metrics on the metrics port alone (what the ServiceMonitor scrapes); the HTTP port answers 404 for it.
    const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /^cryptocast_/m);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404);
    const exited = new Promise<number | null | string>((resolve) => {
      const timer = setTimeout(() => resolve('no exit within 30 s'), 30_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log.slice(-3000));
  });

  it('every Deployment starts from its rendered arguments and environment, uses no laptop default, stops on SIGTERM', async (t) => {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-config'))!
      .data as Record<string, string>;
    const rules = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-alert-rules'))!
      .data as Record<string, string>;
    // Stand-ins for the Secrets the production values reference (PostgreSQL here trusts loopback); webhooks at a
    // closed local port.
    const secret = (name: string, key: string) =>
      /WEBHOOK_URL$/.test(key) ? 'http://127.0.0.1:1/hook' : `stand-in-${name}-${key}`;
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    assert.ok(deployments.length >= 10, `${deployments.length} Deployments`);

    const ports = await Promise.all(deployments.map(() => freePort()));
    const started = deployments.map((d, i) => {
      const c = podSpec(d).containers[0];
      const env: Record<string, string> = {};
      for (const e of (c.env ?? []) as EnvEntry[]) {
        if (e.value !== undefined) env[e.name] = e.value;
        else if (e.valueFrom?.configMapKeyRef) env[e.name] = cm[e.valueFrom.configMapKeyRef.key]!;
        else if (e.valueFrom?.secretKeyRef) {
          // PostgreSQL trusts loopback here; the other credentials are stand-ins.
          if (e.name !== 'PGPASSWORD')
            env[e.name] = secret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
        }
      }
      const cwd = join(workdir, c.name);
      mkdirSync(join(cwd, '.data'), { recursive: true });
      // In one pod per service each has the metrics port to itself; here they share a host: a free port each. The
      // alert rules ConfigMap mounted at /etc/cryptocast becomes a file of the process's own.
      const metricsPort = ports[i]!;
      const args = (c.args as string[]).map((a) => {
        if (a.startsWith('--metrics-port=')) return `--metrics-port=${metricsPort}`;
        if (a.startsWith('--alert-rules=')) {
          const file = join(cwd, 'alert-rules.yaml');
          writeFileSync(file, rules['alert-rules.yaml']!);
          return `--alert-rules=${file}`;
        }
        return a;
      });
      const child = spawn(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', join(ROOT, 'src/cli/main.ts'), ...args],
        // Only what the pod would have: its own variables, no inherited CRYPTOCAST_* of this test run.
        {
          cwd,
          env: { PATH: process.env.PATH ?? '', HOME: cwd, NODE_ENV: 'production', ...env },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      children.push(child);
      let log = '';
      child.stderr!.on('data', (b) => {
        log += b;
      });
      return {
        name: c.name as string,
        child,
        cwd,
        log: () => log,
        metricsPort: args.some((a) => a.startsWith('--metrics-port=')) ? metricsPort : undefined,
      };
    });

    for (const s of started) {
      const state = await waitFor(
        `${s.name} to report running, or to exit`,
        () =>
          s.child.exitCode !== null ? 'exited' : /"msg":"running\b/.test(s.log()) ? 'running' : 'starting',
        (v) => v !== 'starting',
        { timeoutMs: 120_000 },
      ).catch((err) => `${(err as Error).message}`);
      assert.equal(state, 'running', `${s.name} (exit ${s.child.exitCode}):\n${s.log().slice(-2000)}`);
      const running = JSON.parse(
        s
          .log()
          .split('\n')
          .find((l) => l.includes('"msg":"running'))!,
      );
      if ('store' in running)
        assert.equal(running.store, 'postgres', `${s.name}: ${JSON.stringify(running)}`);
    }
    const health = await fetch(`http://127.0.0.1:${apiPort}/v1/health`);
    assert.equal(health.status, 200);
    // The chart's readinessProbe: /v1/ready, which waits for the stores, the latest predictions and every view. A
    // fresh install (empty topics, no champion yet) must still become ready, or the Service has no endpoint.
    await waitFor(
      'the API /v1/ready',
      async () => {
        const r = await fetch(`http://127.0.0.1:${apiPort}/v1/ready`);
        return `${r.status} ${await r.text()}`;
      },
      (v) => v.startsWith('200 '),
      { timeoutMs: 120_000, everyMs: 250 },
    );
    // The dashboard page, public like the health routes (its bundle is built in memory: the root filesystem is read-only).
    const page = await fetch(`http://127.0.0.1:${apiPort}/`);
    assert.equal(page.status, 200, await page.clone().text());
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    // The API's metrics are on its metrics port alone (--metrics-port-only): its HTTP port, the one published, has
    // none, even for a client with a valid key (without one, the key check answers 401 first).
    const apiKey = secret('cryptocast-api-keys', 'api-keys');
    const onHttp = await fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers: { 'x-api-key': apiKey } });
    assert.equal(onHttp.status, 404, 'the API’s HTTP port serves /metrics');
    // The chart's probes: /health and /ready on each service's metrics port (the API's included).
    for (const s of started) {
      if (s.metricsPort === undefined) assert.fail(`${s.name} serves no metrics port`);
      const h = await fetch(`http://127.0.0.1:${s.metricsPort}/health`);
      assert.equal(h.status, 200, `${s.name} /health`);
      await waitFor(
        `${s.name} /ready`,
        async () => {
          const r = await fetch(`http://127.0.0.1:${s.metricsPort}/ready`);
          return `${r.status} ${await r.text()}`;
        },
        (v) => v.startsWith('200 '),
        { timeoutMs: 120_000, everyMs: 250 },
      );
      const m = await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`);
      assert.match(await m.text(), /cryptocast_process_/, `${s.name} /metrics`);
    }
    for (const s of started) {
      const files = existsSync(join(s.cwd, '.data')) ? readdirSync(join(s.cwd, '.data')) : [];
      assert.deepEqual(
        files.filter((f) => f.endsWith('.duckdb')),
        [],
        `${s.name} fell back to a DuckDB file: a store setting is missing`,
      );
    }

    const stopTimes: string[] = [];
    await Promise.all(
      started.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${s.name} did not stop within 45 s`)), 45_000);
            const t0 = Date.now();
            s.child.once('exit', (code, signal) => {
              clearTimeout(timer);
              stopTimes.push(`${s.name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
              if (code === 0) resolve();
              else reject(new Error(`${s.name} stopped with ${code ?? signal}:\n${s.log().slice(-2000)}`));
            });
            s.child.kill('SIGTERM');
          }),
      ),
    );
    t.diagnostic(`stopped after SIGTERM: ${stopTimes.join(', ')}`);
  });
});
