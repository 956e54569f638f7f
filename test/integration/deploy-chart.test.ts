import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parse } from 'yaml';
import { setting } from '../../src/config/env.ts';
import { envOf, SERVICE_ENV, SERVICES, type ServiceName } from '../../src/config/service-env.ts';
import { RESTORE_RETENTION_MS, topics } from '../../src/schemas/topics.ts';
import { LocalLlmBackend } from '../../src/sentiment/local-llm.ts';
import { runCli } from '../support/cli.ts';
import {
  CHART,
  deployTools,
  helmTemplate,
  type K8sObject,
  parseManifests,
  podSpec,
  run,
  serviceDefaults,
  unknownCliFlags,
  unknownServiceFlags,
  VALUES_DIR,
  valueFiles,
} from '../support/deploy.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The Helm chart, offline: helm lint and helm template for the default values and every ci/*-values.yaml, every
 * rendered manifest validated by kubeconform (strict) against the Kubernetes API schemas of the versions
 * scripts/deploy-tools.sh installs (1.30.0 and 1.37.0), then our own checks on what was rendered, derived from the
 * code where it says it: the topics (src/schemas/topics.ts) and each service's environment
 * (src/config/service-env.ts).
 */

const COMPONENT = 'app.kubernetes.io/component';
/**
 * Custom resources kubeconform has no schema for here: ServiceMonitor and PrometheusRule are validated with the
 * Prometheus Operator's models from npm, Strimzi's KafkaTopic by shape (no registry package carries its CRD schema).
 */
const CUSTOM_KINDS = ['ServiceMonitor', 'PrometheusRule', 'KafkaTopic'];
/** The topic whose partitions bound each consumer's replicas. */
const INPUT_TOPIC: Partial<Record<ServiceName, keyof typeof topics>> = {
  candles: 'trades',
  features: 'candles',
  'feature-writer': 'features',
  'news-signals': 'news',
  predictor: 'features',
  'index-sink': 'predictions',
};
/** The services the issue names, each of which must have a Deployment with the default values. */
const REQUIRED_BY_DEFAULT: ServiceName[] = [
  'trades',
  'candles',
  'features',
  'feature-writer',
  'news',
  'news-signals',
  'predictor',
  'monitor',
  'api',
];

/** An API key Secret for values that publish the API (the chart refuses a keyless public API). */
const WITH_KEYS = ['api.keysSecret.name=cryptocast-api-keys'];

const rendered = new Map<string, K8sObject[]>();
const renderedText = new Map<string, string>();
let scratch: string;

before(() => {
  deployTools();
  scratch = scratchDir('cryptocast-chart-');
  for (const v of valueFiles()) {
    const text = helmTemplate(v.file);
    renderedText.set(v.name, text);
    rendered.set(v.name, parseManifests(text));
  }
});
after(() => rmSync(scratch, { recursive: true, force: true }));

const component = (o: K8sObject): string | undefined => o.metadata.labels?.[COMPONENT];
const configMap = (objs: K8sObject[]) =>
  objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-config'));

describe('helm chart deploy/helm/cryptocast', () => {
  test('value files under test: default, minimal, production, strimzi, embedded', () => {
    assert.deepEqual(
      valueFiles().map((v) => v.name),
      ['default', 'embedded', 'minimal', 'production', 'strimzi'],
    );
  });

  test('helm lint --strict passes for every values file', () => {
    const { helm } = deployTools();
    for (const v of valueFiles()) {
      const r = run(helm, ['lint', '--strict', CHART, ...(v.file ? ['-f', v.file] : [])]);
      assert.equal(r.status, 0, `${v.name}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('kubeconform -strict: every rendered manifest is valid for Kubernetes 1.30.0 and 1.37.0', () => {
    const { kubeconform, k8sSchemas, k8sVersions } = deployTools();
    assert.deepEqual(k8sVersions, ['1.30.0', '1.37.0']);
    for (const v of valueFiles()) {
      const file = join(scratch, `${v.name}.yaml`);
      writeFileSync(file, renderedText.get(v.name)!);
      for (const version of k8sVersions) {
        const r = run(kubeconform, [
          '-strict',
          '-summary',
          '-output',
          'json',
          '-kubernetes-version',
          version,
          '-skip',
          CUSTOM_KINDS.join(','),
          '-schema-location',
          `${k8sSchemas}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
          file,
        ]);
        assert.equal(r.status, 0, `${v.name} on ${version}:\n${r.stdout}${r.stderr}`);
        const summary = JSON.parse(r.stdout).summary as Record<string, number>;
        const custom = rendered.get(v.name)!.filter((o) => CUSTOM_KINDS.includes(o.kind)).length;
        assert.equal(summary.valid, rendered.get(v.name)!.length - custom, `${v.name}: ${r.stdout}`);
        assert.equal((summary.invalid ?? 0) + (summary.errors ?? 0), 0);
      }
    }
  });

  test('kubeconform can fail: a misspelt field is refused', () => {
    const { kubeconform, k8sSchemas } = deployTools();
    const file = join(scratch, 'bad.yaml');
    writeFileSync(
      file,
      renderedText.get('default')!.replace('readOnlyRootFilesystem:', 'readOnlyRootFileSystem:'),
    );
    const r = run(kubeconform, [
      '-strict',
      '-kubernetes-version',
      '1.30.0',
      '-schema-location',
      `${k8sSchemas}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
      file,
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /readOnlyRootFileSystem/);
  });

  test('ServiceMonitor: valid against the Prometheus Operator CRD schema (npm @kubernetes-models/prometheus-operator)', () => {
    const monitors = [...rendered.values()].flat().filter((o) => o.kind === 'ServiceMonitor');
    assert.ok(monitors.length > 0);
    // Field types and required fields (the models' schema does not refuse unknown fields).
    for (const m of monitors) new ServiceMonitor(m as never).validate();
    const bad = structuredClone(monitors[0]!);
    bad.spec.endpoints[0].interval = 30;
    assert.throws(() => new ServiceMonitor(bad as never).validate(), /interval must be string/);
  });

  test('PrometheusRule: the rules of deploy/prometheus/alerts.yml, valid against the Prometheus Operator schema', () => {
    const root = join(CHART, '..', '..', '..');
    assert.equal(
      readFileSync(join(CHART, 'files', 'alerts.yml'), 'utf8'),
      readFileSync(join(root, 'deploy', 'prometheus', 'alerts.yml'), 'utf8'),
      'deploy/helm/cryptocast/files/alerts.yml must be a copy of deploy/prometheus/alerts.yml',
    );
    const rule = rendered.get('production')!.find((o) => o.kind === 'PrometheusRule')!;
    new PrometheusRule(rule as never).validate();
    const alerts = rule.spec.groups.flatMap((g: { rules: { alert: string }[] }) =>
      g.rules.map((r) => r.alert),
    );
    assert.ok(alerts.includes('CryptocastServiceDown'), alerts.join(', '));
    // The expressions reach Prometheus as written (Helm does not evaluate their {{ $labels }} templates).
    assert.match(JSON.stringify(rule.spec), /\{\{ \$labels\.pair \}\}/);
    // ServiceDown selects job=~"cryptocast.*": every scraped Service names its job so, whatever the release name.
    for (const svc of rendered.get('production')!.filter((o) => o.kind === 'Service'))
      assert.match(svc.metadata.labels['cryptocast.io/job'], /^cryptocast/);
    assert.equal(
      rendered.get('production')!.find((o) => o.kind === 'ServiceMonitor')!.spec.jobLabel,
      'cryptocast.io/job',
    );
  });

  test('the monitor: alert rules from the values in a ConfigMap it reads, webhooks from a Secret', () => {
    const objs = rendered.get('production')!;
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-alert-rules'))!;
    assert.match(cm.data['alert-rules.yaml'], /kind: skill_below/);
    const monitor = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'monitor')!);
    assert.ok(monitor.containers[0].args.includes('--alert-rules=/etc/cryptocast/alert-rules.yaml'));
    assert.equal(
      monitor.volumes.find((v: { name: string }) => v.name === 'alert-rules').configMap.name,
      cm.metadata.name,
    );
    // The API reads the same rules: /v1/quality serves their coverage band, which the dashboard colours coverage by.
    const api = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'api')!);
    assert.ok(api.containers[0].args.includes('--alert-rules=/etc/cryptocast/alert-rules.yaml'));
    assert.equal(
      api.volumes.find((v: { name: string }) => v.name === 'alert-rules').configMap.name,
      cm.metadata.name,
    );
    const hooks = monitor.containers[0].env.filter((e: { name: string }) => /WEBHOOK/.test(e.name));
    assert.equal(hooks.length, 4);
    for (const h of hooks) assert.equal(h.valueFrom.secretKeyRef.name, 'cryptocast-alerts');
  });

  test('every service the issue names has a Deployment (default values), the trainer a CronJob', () => {
    const objs = rendered.get('default')!;
    const deployments = objs.filter((o) => o.kind === 'Deployment').map(component);
    for (const s of REQUIRED_BY_DEFAULT) assert.ok(deployments.includes(s), `no Deployment for ${s}`);
    const cron = objs.find((o) => o.kind === 'CronJob');
    assert.equal(cron && component(cron), 'trainer');
    assert.equal(cron!.spec.concurrencyPolicy, 'Forbid');
    assert.deepEqual(podSpec(cron!).containers[0].args.slice(0, 3), ['service', 'trainer', '--once']);
    // production adds the index sink
    assert.ok(
      rendered.get('production')!.some((o) => o.kind === 'Deployment' && component(o) === 'index-sink'),
    );
    // each Deployment runs `cryptocast service <its name>`
    for (const [name, objs2] of rendered)
      for (const d of objs2.filter((o) => o.kind === 'Deployment' && component(o) !== 'embedded'))
        assert.deepEqual(podSpec(d).containers[0].args.slice(0, 2), ['service', component(d)], name);
  });

  // The monitor rolled with maxSurge 1: for the overlap two monitors split the candles and predictions partitions, a
  // pair's candles in one and its predictions in the other, and both evaluated the alert rules (each alert twice).
  test('a service that must run once (trades, news, monitor) is replaced by Recreate, the others roll', () => {
    const once = ['trades', 'news', 'monitor'];
    for (const [name, objs] of rendered)
      for (const d of objs.filter((o) => o.kind === 'Deployment' && component(o) !== 'embedded')) {
        // news-signals on its cache's ReadWriteOnce claim too: a new pod elsewhere could not mount it beside the old.
        const onClaim = podSpec(d).volumes.some(
          (v: { name: string; persistentVolumeClaim?: unknown }) =>
            v.name === 'data' && v.persistentVolumeClaim,
        );
        assert.equal(
          d.spec.strategy.type,
          once.includes(component(d)!) || onClaim ? 'Recreate' : 'RollingUpdate',
          `${name}: ${component(d)}`,
        );
      }
  });

  // The candle service and the monitor were each given the policy from the values, but a flag or variable added to
  // one of them (extraArgs, extraEnv) set them apart without a word; such values are refused (below). One value.
  test('one late policy for the candle service and the monitor: market.latePolicy, from one ConfigMap key', () => {
    const objs = parseManifests(helmTemplate(undefined, ['market.latePolicy=revise']));
    assert.equal(configMap(objs)!.data.CRYPTOCAST_LATE_POLICY, 'revise');
    for (const svc of ['candles', 'monitor']) {
      const spec = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === svc)!);
      const env = spec.containers[0].env.filter((e: { name: string }) => e.name === 'CRYPTOCAST_LATE_POLICY');
      assert.deepEqual(
        env.map((e: { valueFrom: { configMapKeyRef: { key: string } } }) => e.valueFrom.configMapKeyRef.key),
        ['CRYPTOCAST_LATE_POLICY'],
        svc,
      );
      assert.ok(!spec.containers[0].args.some((a: string) => a.startsWith('--late-policy')), svc);
    }
  });

  // On the pod's emptyDir, the LLM's answers cache went with every restart (a rollout, an eviction, a crash): the
  // restarted service asked the LLM again for every news item of the retention window.
  describe('news-signals: the LLM answers cache on a claim (services.news-signals.persistence)', () => {
    const CACHE_CLAIM = 'cc-cryptocast-news-signals-cache';
    const newsSignals = (objs: K8sObject[]) =>
      podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'news-signals')!);
    const dataVolume = (objs: K8sObject[]) =>
      newsSignals(objs).volumes.find((v: { name: string }) => v.name === 'data');
    const claim = (objs: K8sObject[]) =>
      objs.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === CACHE_CLAIM);

    test('with an LLM backend (production: openai), by default: a 1Gi ReadWriteOnce claim holds the cache’s folder', () => {
      const objs = rendered.get('production')!;
      const pvc = claim(objs);
      assert.ok(pvc, 'the claim is rendered');
      assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
      assert.equal(pvc.spec.resources.requests.storage, '1Gi');
      assert.equal(pvc.spec.storageClassName, undefined, 'the cluster’s default StorageClass');
      assert.deepEqual(dataVolume(objs), { name: 'data', persistentVolumeClaim: { claimName: CACHE_CLAIM } });
      const mount = newsSignals(objs).containers[0].volumeMounts.find(
        (m: { name: string }) => m.name === 'data',
      );
      const cache = configMap(objs)!.data.CRYPTOCAST_SENTIMENT_CACHE!;
      assert.equal(dirname(cache), mount.mountPath, 'the cache file lies on the claim');
      // kubeconform checked it with every other object of the production values (the test above).
      assert.ok(renderedText.get('production')!.includes(`name: ${CACHE_CLAIM}`));
    });

    test('its size and storage class from the values', () => {
      const objs = parseManifests(
        helmTemplate(join(VALUES_DIR, 'production-values.yaml'), [
          'services.news-signals.persistence.size=5Gi',
          'services.news-signals.persistence.storageClass=fast-ssd',
        ]),
      );
      assert.equal(claim(objs)!.spec.resources.requests.storage, '5Gi');
      assert.equal(claim(objs)!.spec.storageClassName, 'fast-ssd');
    });

    test('persistence.enabled=false, or the lexicon (the default backend, nothing worth keeping): the emptyDir, no claim', () => {
      for (const objs of [
        parseManifests(
          helmTemplate(join(VALUES_DIR, 'production-values.yaml'), [
            'services.news-signals.persistence.enabled=false',
          ]),
        ),
        rendered.get('default')!,
      ]) {
        assert.equal(claim(objs), undefined);
        assert.deepEqual(dataVolume(objs), { name: 'data', emptyDir: { sizeLimit: '1Gi' } });
        const d = objs.find((o) => o.kind === 'Deployment' && component(o) === 'news-signals')!;
        assert.equal(d.spec.strategy.type, 'RollingUpdate');
      }
    });

    test('a size that is not a quantity is refused', () => {
      assert.throws(
        () => helmTemplate(undefined, ['services.news-signals.persistence.size=lots']),
        /news-signals\/persistence\/size/,
      );
    });
  });

  test('every flag the chart passes to `cryptocast service` is one the CLI has', () => {
    for (const [name, objs] of rendered)
      for (const o of objs) {
        const c = podSpec(o)?.containers[0];
        if (c?.args?.[0] !== 'service') continue;
        const unknown = unknownServiceFlags(c.args);
        assert.deepEqual(unknown, [], `${name}: ${o.metadata.name} passes ${unknown}`);
      }
  });

  test('every other `cryptocast` command the chart runs (the embedded `run`, the topics Job) exists with its flags', () => {
    let checked = 0;
    for (const [name, objs] of rendered)
      for (const o of objs) {
        const c = podSpec(o)?.containers[0];
        if (c?.args === undefined || c.args[0] === 'service') continue;
        checked++;
        const unknown = unknownCliFlags(c.args);
        assert.deepEqual(unknown, [], `${name}: ${o.metadata.name} runs ${c.args.join(' ')}`);
      }
    assert.ok(checked >= 2, `${checked} commands checked`);
  });

  // docs/training.md: of the refit schedules walked forward, the latest 365 days refitted weekly with default parameters
  // won (14 or 30 days every 6 h, and 300 s of Optuna, lost skill) — the trainer service's defaults. The production
  // example still ran 30 days every 6 h with tuning, and its champion-age alert (48 h) would fire most of every week
  // under the weekly schedule.
  test('every shipped trainer CronJob refits as `service trainer` does by default: weekly, its --days and --tune-seconds', () => {
    const defaults = serviceDefaults('trainer');
    assert.equal(defaults.get('--every'), '7d');
    const weekMs = 7 * 86_400_000;
    for (const [name, objs] of rendered) {
      const cron = objs.find((o) => o.kind === 'CronJob' && component(o) === 'trainer');
      if (cron === undefined) continue;
      // minute hour * * weekday: once a week
      assert.match(cron.spec.schedule, /^\d+ \d+ \* \* \d$/, `${name}: schedule ${cron.spec.schedule}`);
      const args = podSpec(cron).containers[0].args as string[];
      for (const flag of ['--days', '--tune-seconds'])
        assert.ok(args.includes(`${flag}=${defaults.get(flag)}`), `${name}: ${args.join(' ')}`);
      // A champion-age rule fires only when a weekly run (and its Job's deadline) has passed without a promotion.
      const rules = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-alert-rules'));
      const age = (parse(rules?.data['alert-rules.yaml'] ?? '{}')?.rules ?? []).filter(
        (r: { kind: string }) => r.kind === 'champion_age',
      );
      const deadlineMs = cron.spec.jobTemplate.spec.activeDeadlineSeconds * 1000;
      for (const r of age as { name: string; hours: number }[])
        assert.ok(
          r.hours * 3_600_000 > weekMs + deadlineMs,
          `${name}: alert ${r.name} at ${r.hours} h fires between two weekly refits`,
        );
    }
  });

  test('every container runs as non-root with CPU and memory limits and no privilege escalation', () => {
    for (const [name, objs] of rendered)
      for (const o of objs) {
        const spec = podSpec(o);
        if (spec === undefined) continue;
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          const where = `${name}: ${o.kind} ${o.metadata.name} container ${c.name}`;
          const sc = { ...spec.securityContext, ...c.securityContext };
          assert.equal(sc.runAsNonRoot, true, where);
          assert.ok(
            Number.isInteger(sc.runAsUser) && sc.runAsUser > 0,
            `${where}: runAsUser ${sc.runAsUser}`,
          );
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], where);
          assert.ok(c.resources?.limits?.cpu && c.resources?.limits?.memory, `${where}: limits`);
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: requests`);
        }
        assert.equal(spec.automountServiceAccountToken, false, `${name}: ${o.metadata.name}`);
      }
  });

  test('every env var a service must have is set, only vars it reads are set, and each resolves', () => {
    for (const [name, objs] of rendered) {
      const cm = configMap(objs)!.data as Record<string, string>;
      for (const o of objs) {
        const svc = component(o) as ServiceName;
        if (!(o.kind === 'Deployment' || o.kind === 'CronJob') || !SERVICES.includes(svc)) continue;
        const env = podSpec(o).containers[0].env as {
          name: string;
          value?: string;
          valueFrom?: Record<string, { name: string; key: string }>;
        }[];
        const where = `${name}: ${svc}`;
        const names = env.map((e) => e.name);
        assert.equal(new Set(names).size, names.length, `${where}: duplicate env ${names}`);
        const reads = new Set(envOf(svc).map((s) => s.name));
        for (const n of names)
          assert.ok(reads.has(n), `${where} sets ${n}, which it does not read (src/config/service-env.ts)`);
        for (const s of envOf(svc).filter((x) => x.required)) {
          const e = env.find((x) => x.name === s.name);
          assert.ok(e, `${where}: required ${s.name} not set`);
          const ref = e.valueFrom?.configMapKeyRef;
          const value = e.value ?? (ref ? cm[ref.key] : undefined);
          assert.ok(value, `${where}: ${s.name} resolves to nothing`);
        }
        for (const e of env) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref) assert.ok(ref.key in cm, `${where}: ${e.name} refers to missing ConfigMap key ${ref.key}`);
        }
      }
    }
  });

  test('a managed Kafka: every Kafka client gets TLS and SASL, the password from its Secret, the CA and client certificate as files from Secrets', () => {
    type Env = { name: string; value?: string; valueFrom?: Record<string, { name: string; key: string }> };
    const cases = [
      // SASL/SCRAM over TLS with a private CA (production), mutual TLS with Strimzi's cluster CA and KafkaUser (strimzi)
      { values: 'production', sasl: true, ca: 'cryptocast-kafka-ca', client: undefined },
      { values: 'strimzi', sasl: false, ca: 'cryptocast-cluster-ca-cert', client: 'cryptocast' },
    ];
    for (const c of cases) {
      const objs = rendered.get(c.values)!;
      const cm = configMap(objs)!.data as Record<string, string>;
      const clients = objs.filter(
        (o) =>
          (o.kind === 'Deployment' && component(o) !== 'embedded') ||
          (o.kind === 'Job' && component(o) === 'topics'),
      );
      assert.ok(clients.length >= 8, `${c.values}: ${clients.length} Kafka clients`);
      for (const o of clients) {
        const where = `${c.values}: ${o.kind} ${component(o)}`;
        const pod = podSpec(o);
        const container = pod.containers[0];
        const env = container.env as Env[];
        const value = (name: string) => {
          const e = env.find((x) => x.name === name);
          const ref = e?.valueFrom?.configMapKeyRef;
          return e?.value ?? (ref ? cm[ref.key] : undefined);
        };
        /** The Secret and key a file named by `variable` comes from: its mount, its volume, the volume's item. */
        const fileFrom = (variable: string) => {
          const path = value(variable);
          assert.ok(path, `${where}: ${variable} not set`);
          const mount = (
            container.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]
          ).find((m) => path.startsWith(`${m.mountPath}/`));
          assert.ok(mount?.readOnly, `${where}: ${path} is on no read-only mount`);
          const volume = (
            pod.volumes as {
              name: string;
              secret?: { secretName: string; items: { key: string; path: string }[] };
            }[]
          ).find((v) => v.name === mount.name);
          const item = volume?.secret?.items.find((i) => i.path === path.slice(mount.mountPath.length + 1));
          assert.ok(item, `${where}: ${path} is not a key of a Secret volume`);
          return { secret: volume!.secret!.secretName, key: item.key };
        };
        assert.equal(value('CRYPTOCAST_KAFKA_TLS'), 'true', where);
        assert.deepEqual(fileFrom('CRYPTOCAST_KAFKA_CA_FILE'), { secret: c.ca, key: 'ca.crt' }, where);
        if (c.client === undefined) {
          assert.equal(value('CRYPTOCAST_KAFKA_CERT_FILE'), undefined, where);
        } else {
          assert.deepEqual(
            fileFrom('CRYPTOCAST_KAFKA_CERT_FILE'),
            { secret: c.client, key: 'user.crt' },
            where,
          );
          assert.deepEqual(
            fileFrom('CRYPTOCAST_KAFKA_KEY_FILE'),
            { secret: c.client, key: 'user.key' },
            where,
          );
        }
        if (c.sasl) {
          assert.equal(value('CRYPTOCAST_KAFKA_SASL_MECHANISM'), 'SCRAM-SHA-512', where);
          assert.equal(value('CRYPTOCAST_KAFKA_SASL_USERNAME'), 'cryptocast', where);
          assert.deepEqual(
            env.find((e) => e.name === 'CRYPTOCAST_KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef,
            { name: 'cryptocast-kafka', key: 'password' },
            where,
          );
        } else for (const e of env) assert.doesNotMatch(e.name, /SASL/, where);
      }
    }
    // Off by default: no setting, no mount (plain Kafka, as before).
    for (const o of rendered.get('default')!.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
      const container = podSpec(o).containers[0];
      for (const e of container.env ?? []) assert.doesNotMatch(e.name, /KAFKA_(TLS|CA|CERT|KEY|SASL)/);
      for (const m of container.volumeMounts ?? []) assert.doesNotMatch(m.name, /^kafka-/);
    }
  });

  test('the store and bus settings point where the values say (no laptop defaults in a cluster)', () => {
    const cm = configMap(rendered.get('production')!)!.data as Record<string, string>;
    assert.equal(
      cm.CRYPTOCAST_BUS,
      'kafka://kafka-0.kafka.data:9094,kafka-1.kafka.data:9094,kafka-2.kafka.data:9094',
    );
    assert.equal(
      cm.CRYPTOCAST_STORE,
      'postgres://cryptocast@cryptocast.postgres.data.svc:5432/cryptocast?sslmode=verify-full',
    );
    assert.equal(cm.CRYPTOCAST_REGISTRY, 'mlflow+https://mlflow.ml.example.com');
  });

  test('TLS peers: the CA of PostgreSQL and of OpenSearch mounted from their Secrets, the variables naming the files', () => {
    type Env = { name: string; value?: string };
    type Mount = { name: string; mountPath: string; readOnly?: boolean };
    type Volume = { name: string; secret?: { secretName: string; items: { key: string; path: string }[] } };
    const expected: Record<string, { variable: string; volume: string; secret: string; file: string }> = {
      postgresql: {
        variable: 'PGSSLROOTCERT',
        volume: 'postgresql-ca',
        secret: 'cryptocast-postgresql-ca',
        file: '/etc/cryptocast-tls/postgresql/ca.crt',
      },
      opensearch: {
        variable: 'CRYPTOCAST_OPENSEARCH_CA',
        volume: 'opensearch-ca',
        secret: 'cryptocast-opensearch-ca',
        file: '/etc/cryptocast-tls/opensearch/ca.pem',
      },
    };
    const users: Record<string, ServiceName[]> = {
      postgresql: ['feature-writer', 'predictor', 'api', 'trainer', 'monitor'],
      opensearch: ['index-sink'],
    };
    for (const [name, objs] of rendered) {
      for (const o of objs) {
        const svc = component(o) as ServiceName;
        if (!(o.kind === 'Deployment' || o.kind === 'CronJob') || !SERVICES.includes(svc)) continue;
        const spec = podSpec(o);
        const c = spec.containers[0];
        for (const [peer, x] of Object.entries(expected)) {
          const env = (c.env as Env[]).find((e) => e.name === x.variable);
          const mount = ((c.volumeMounts ?? []) as Mount[]).find((m) => m.name === x.volume);
          const volume = ((spec.volumes ?? []) as Volume[]).find((v) => v.name === x.volume);
          const where = `${name}: ${svc}, ${peer}`;
          if (name !== 'production' || !users[peer]!.includes(svc)) {
            assert.equal(
              env ?? mount ?? volume,
              undefined,
              `${where}: no CA without a caSecret, nor for a non-user`,
            );
            continue;
          }
          assert.equal(env?.value, x.file, where);
          assert.deepEqual(mount, {
            name: x.volume,
            mountPath: x.file.replace(/\/[^/]+$/, ''),
            readOnly: true,
          });
          const file = x.file.split('/').at(-1)!;
          assert.deepEqual(
            volume?.secret,
            { secretName: x.secret, items: [{ key: file, path: file }] },
            where,
          );
        }
      }
    }
  });

  test('no secret value in plain text: credentials only by secretKeyRef, no Secret objects, none in the ConfigMap', () => {
    const secretNames = new Set(SERVICE_ENV.filter((s) => s.secret).map((s) => s.name));
    // A `…_FILE` variable names a file (the Kafka client key: CRYPTOCAST_KAFKA_KEY_FILE), mounted from a Secret (checked
    // in the managed-Kafka test): the path is no credential.
    const credentialName = /(KEY|TOKEN|PASSWORD|SECRET|WEBHOOK)/;
    const looksSecret = { test: (name: string) => credentialName.test(name) && !name.endsWith('_FILE') };
    for (const [name, objs] of rendered) {
      assert.equal(
        objs.filter((o) => o.kind === 'Secret').length,
        0,
        `${name}: the chart must not carry Secrets`,
      );
      for (const o of objs) {
        const spec = podSpec(o);
        if (spec === undefined) continue;
        for (const c of spec.containers)
          for (const e of c.env ?? []) {
            if (secretNames.has(e.name) || looksSecret.test(e.name)) {
              assert.equal(e.value, undefined, `${name}: ${o.metadata.name} ${e.name} in plain text`);
              assert.ok(e.valueFrom?.secretKeyRef, `${name}: ${o.metadata.name} ${e.name} not from a Secret`);
            }
          }
      }
      for (const [k, v] of Object.entries(configMap(objs)!.data as Record<string, string>)) {
        assert.ok(!looksSecret.test(k), `${name}: ConfigMap key ${k}`);
        assert.doesNotMatch(v, /:\/\/[^/@\s]+:[^/@\s]+@/, `${name}: credentials in a URL (${k})`);
      }
    }
    // production references every Secret it needs
    const refs = new Set<string>();
    for (const o of rendered.get('production')!)
      for (const c of podSpec(o)?.containers ?? [])
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) refs.add(e.name);
    for (const n of [
      'PGPASSWORD',
      'CRYPTOCAST_API_KEYS',
      'CRYPTOCAST_LLM_API_KEY',
      'CRYPTOPANIC_TOKEN',
      'MLFLOW_TRACKING_TOKEN',
      'CRYPTOCAST_OPENSEARCH_PASSWORD',
    ])
      assert.ok(refs.has(n), `production: ${n} not referenced`);
  });

  test('probes: liveness and readiness on the health endpoints, on ports the container declares', () => {
    for (const [name, objs] of rendered)
      for (const o of objs.filter((x) => x.kind === 'Deployment')) {
        const c = podSpec(o).containers[0];
        const ports = new Set((c.ports ?? []).map((p: { name: string }) => p.name));
        for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
          const get = c[probe]?.httpGet;
          assert.ok(get, `${name}: ${o.metadata.name} has no ${probe}`);
          assert.ok(
            ports.has(get.port),
            `${name}: ${o.metadata.name} ${probe} on undeclared port ${get.port}`,
          );
        }
        const isApi = ['api', 'embedded'].includes(component(o)!);
        assert.equal(c.livenessProbe.httpGet.path, isApi ? '/v1/health' : '/health');
        assert.equal(c.readinessProbe.httpGet.path, isApi ? '/v1/ready' : '/ready');
      }
  });

  test('the API keeps serving while its endpoint is withdrawn: a preStop pause before SIGTERM, within the grace', () => {
    // Kubernetes sends SIGTERM as it starts removing a terminating pod from the Service's endpoints, not after
    // (kube-proxy and Ingress controllers follow seconds later), and the API closes its listener on SIGTERM
    // (src/cli/commands/api.ts): without a pause, every rollout, scale-down or drain refused the requests still routed
    // to the pod (connection refused, 502 at the Ingress).
    for (const [name, objs] of rendered)
      for (const o of objs.filter((x) => x.kind === 'Deployment' && component(x) === 'api')) {
        const spec = podSpec(o);
        const pre = spec.containers[0].lifecycle?.preStop;
        assert.ok(pre, `${name}: the API has no preStop`);
        const seconds =
          pre.sleep?.seconds ?? (pre.exec?.command?.[0] === 'sleep' ? Number(pre.exec.command[1]) : 0);
        assert.ok(seconds >= 3, `${name}: preStop pause ${seconds} s`);
        assert.ok(
          seconds + 30 <= spec.terminationGracePeriodSeconds,
          `${name}: ${seconds} s of pause leave too little of the ${spec.terminationGracePeriodSeconds} s grace to stop`,
        );
      }
  });

  test('PodDisruptionBudgets, and HPAs only for consumers (bounded by their partitions) and the API (CPU)', () => {
    const objs = rendered.get('production')!;
    const deployments = objs.filter((o) => o.kind === 'Deployment').map(component);
    const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget').map(component);
    assert.deepEqual(pdbs.sort(), [...deployments].sort());
    const hpas = objs.filter((o) => o.kind === 'HorizontalPodAutoscaler');
    assert.ok(hpas.some((h) => component(h) === 'api'));
    for (const h of hpas) {
      const svc = component(h) as ServiceName;
      assert.ok(!['trades', 'news', 'news-signals', 'monitor'].includes(svc), `${svc} must not autoscale`);
      assert.equal(h.spec.metrics[0].resource.name, 'cpu');
      const input = INPUT_TOPIC[svc];
      if (input)
        assert.ok(
          h.spec.maxReplicas <= topics[input].partitions,
          `${svc}: ${h.spec.maxReplicas} > partitions`,
        );
      // the Deployment leaves its replica count to the HPA
      assert.equal(
        objs.find((o) => o.kind === 'Deployment' && component(o) === svc)!.spec.replicas,
        undefined,
      );
    }
    // every streaming Deployment's replicas stay within its input topic's partitions
    for (const [name, all] of rendered)
      for (const d of all.filter((o) => o.kind === 'Deployment')) {
        const input = INPUT_TOPIC[component(d) as ServiceName];
        if (input && d.spec.replicas !== undefined)
          assert.ok(d.spec.replicas <= topics[input].partitions, `${name}: ${d.metadata.name}`);
      }
  });

  test('topics: the Job runs `cryptocast topics create`; the Strimzi KafkaTopics equal the code’s topics', () => {
    const job = rendered.get('default')!.find((o) => o.kind === 'Job' && component(o) === 'topics')!;
    assert.deepEqual(podSpec(job).containers[0].args, ['topics', 'create']);
    assert.match(job.metadata.annotations['helm.sh/hook'], /pre-install/);
    const kt = rendered.get('strimzi')!.filter((o) => o.kind === 'KafkaTopic');
    const fromChart = Object.fromEntries(kt.map((t) => [t.spec.topicName, t.spec.partitions]));
    const fromCode = Object.fromEntries(Object.values(topics).map((t) => [t.name, t.partitions]));
    assert.deepEqual(fromChart, fromCode);
    // Compacted as the code declares them (`trades.resume`: the latest point per pair, kept however old it is), with
    // their segment.ms (the active segment is never compacted).
    assert.deepEqual(
      kt
        .filter((t) => t.spec.config['cleanup.policy'] === 'compact')
        .map((t) => [t.spec.topicName, Number(t.spec.config['segment.ms'])]),
      Object.values(topics)
        .filter((t) => t.compacted)
        .map((t) => [t.name, t.segmentMs]),
    );
    for (const t of kt) {
      assert.equal(t.apiVersion, 'kafka.strimzi.io/v1beta2');
      assert.equal(t.metadata.labels['strimzi.io/cluster'], 'cryptocast');
      assert.equal(t.spec.replicas, 3);
      assert.match(t.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    assert.equal(rendered.get('strimzi')!.filter((o) => o.kind === 'Job').length, 0);
    // A prefix the values allow (a Kafka topic name may hold "_", "." and upper case) still gives names the API server
    // accepts (a lowercase RFC 1123 subdomain; "prod_trades" is refused at apply), and the topics keep their names.
    const prefix = 'Prod_Stage.';
    const prefixed = parseManifests(
      helmTemplate(join(CHART, 'ci', 'strimzi-values.yaml'), [`kafka.topicPrefix=${prefix}`]),
    ).filter((o) => o.kind === 'KafkaTopic');
    assert.deepEqual(
      prefixed.map((t) => t.spec.topicName).sort(),
      Object.values(topics)
        .map((t) => `${prefix}${t.name}`)
        .sort(),
    );
    for (const t of prefixed)
      assert.match(
        t.metadata.name,
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
        `KafkaTopic ${t.spec.topicName}`,
      );
    assert.equal(new Set(prefixed.map((t) => t.metadata.name)).size, prefixed.length);
  });

  test('topics: the Strimzi KafkaTopics a restarted predictor reads back keep at least the code’s 8 days, whatever retentionMs says', () => {
    // Its ACI warm-up reaches a week and an hour back: a retentionMs of a week (the chart's default) lost the oldest
    // states it restores α_t from. The job gets it from `topics create` (test/integration/topics-retention.test.ts).
    const retention = (set: string[]) =>
      new Map(
        parseManifests(helmTemplate(join(CHART, 'ci', 'strimzi-values.yaml'), set))
          .filter((o) => o.kind === 'KafkaTopic')
          .map((t) => [t.spec.topicName, Number(t.spec.config['retention.ms'])]),
      );
    const restored = Object.values(topics).filter((t) => t.retentionMs !== undefined);
    assert.deepEqual(
      restored.map((t) => [t.name, t.retentionMs]),
      [
        ['predictions', RESTORE_RETENTION_MS],
        ['predictor.aci', RESTORE_RETENTION_MS],
      ],
    );
    const week = 7 * 86_400_000;
    for (const [set, others, restore] of [
      [[`kafka.topics.retentionMs=${week}`], week, RESTORE_RETENTION_MS],
      [[], 14 * 86_400_000, 14 * 86_400_000], // ci/strimzi-values.yaml: 14 days, past it
      [['kafka.topics.retentionMs=-1'], -1, -1], // no time limit
    ] as const) {
      const kept = retention([...set]);
      for (const t of Object.values(topics))
        assert.equal(
          kept.get(t.name),
          t.retentionMs === undefined ? others : restore,
          `${t.name} with ${set}`,
        );
    }
  });

  test('the API: a Service, an optional Ingress to it with TLS, a ServiceMonitor selecting the metrics Services', () => {
    const objs = rendered.get('production')!;
    const ing = objs.find((o) => o.kind === 'Ingress')!;
    const backend = ing.spec.rules[0].http.paths[0].backend.service;
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === backend.name)!;
    assert.ok(svc.spec.ports.some((p: { name: string }) => p.name === backend.port.name));
    assert.equal(ing.spec.tls[0].secretName, 'cryptocast-api-tls');
    // The Ingress publishes the dashboard and /v1, never /metrics (served without a key, for Prometheus in the cluster).
    // Kubernetes' matching: Exact is the whole path; Prefix matches by path elements.
    const reaches = (p: { path: string; pathType: string }, url: string) =>
      p.pathType === 'Exact'
        ? p.path === url
        : p.path === '/' ||
          url === p.path.replace(/\/$/, '') ||
          url.startsWith(`${p.path.replace(/\/$/, '')}/`);
    const paths = ing.spec.rules.flatMap((r: { http: { paths: unknown[] } }) => r.http.paths);
    for (const url of ['/', '/dashboard/app.js', '/v1/predictions/latest', '/v1/ws'])
      assert.ok(
        paths.some((p: { path: string; pathType: string }) => reaches(p, url)),
        `${url} is routed`,
      );
    assert.ok(
      !paths.some((p: { path: string; pathType: string }) => reaches(p, '/metrics')),
      JSON.stringify(paths),
    );
    assert.equal(rendered.get('default')!.filter((o) => o.kind === 'Ingress').length, 0);
    const sm = objs.find((o) => o.kind === 'ServiceMonitor')!;
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    const selected = objs.filter(
      (o) =>
        o.kind === 'Service' &&
        Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels[k] === v),
    );
    assert.equal(selected.length, objs.filter((o) => o.kind === 'Deployment').length);
  });

  // The API serves /metrics on its HTTP port, public for the in-cluster scrape (src/api/routes/metrics.ts); the Ingress
  // routed every path (Prefix "/"), so the process and request metrics were readable from the internet.
  test('the Ingress routes the API’s public routes (the dashboard, /v1) and not /metrics', () => {
    /** Does one Ingress path match a request path (networking.k8s.io/v1 semantics; ImplementationSpecific as Prefix)? */
    const matches = (p: { path: string; pathType: string }, url: string) => {
      if (p.pathType === 'Exact') return url === p.path;
      const prefix = p.path.replace(/\/+$/, '');
      return prefix === '' || url === prefix || url.startsWith(`${prefix}/`);
    };
    const ingresses = [
      ...rendered.get('production')!,
      ...parseManifests(helmTemplate(undefined, ['api.ingress.enabled=true', ...WITH_KEYS])),
      ...parseManifests(
        helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), ['api.ingress.enabled=true', ...WITH_KEYS]),
      ),
    ].filter((o) => o.kind === 'Ingress');
    assert.equal(ingresses.length, 3);
    for (const ing of ingresses)
      for (const rule of ing.spec.rules) {
        const routed = (url: string) => rule.http.paths.some((p: never) => matches(p, url));
        for (const url of [
          '/',
          '/dashboard/app.js',
          '/dashboard/app.css',
          '/v1/predictions/latest',
          '/v1/ws',
        ])
          assert.ok(routed(url), `${rule.host}: ${url} is not routed`);
        assert.ok(!routed('/metrics'), `${rule.host}: /metrics is routed to the internet`);
      }
  });

  // Behind the chart's Ingress every connection to the API came from the controller: the failed-key limit, per client
  // address, was one budget for every client. With the Ingress the API trusts the private ranges' X-Forwarded-For
  // (the controller's pods are there), or the proxies api.trustProxy names; without it, none.
  test('the API trusts X-Forwarded-For from its Ingress controller only when the Ingress is on, or api.trustProxy says', () => {
    const trustOf = (objs: K8sObject[]): string | undefined => {
      const cm = configMap(objs)!.data as Record<string, string>;
      const api = objs.filter(
        (o) =>
          o.kind === 'Deployment' && (component(o) === 'api' || podSpec(o).containers[0].args?.[0] === 'run'),
      );
      assert.equal(api.length, 1);
      const env = podSpec(api[0]!).containers[0].env as {
        name: string;
        valueFrom?: { configMapKeyRef?: { key: string } };
      }[];
      const ref = env.find((e) => e.name === 'CRYPTOCAST_API_TRUST_PROXY')?.valueFrom?.configMapKeyRef;
      return ref === undefined ? undefined : cm[ref.key];
    };
    const embedded = join(CHART, 'ci', 'embedded-values.yaml');
    const check = (what: string, got: string | undefined, expected: string | undefined) => {
      assert.equal(got, expected, what);
      // What the chart sets, the API takes (src/config/env.ts): a value it refused would stop the pod.
      if (got !== undefined)
        assert.ok(setting('CRYPTOCAST_API_TRUST_PROXY', { CRYPTOCAST_API_TRUST_PROXY: got }));
    };
    check('default values', trustOf(rendered.get('default')!), undefined);
    check('embedded values', trustOf(rendered.get('embedded')!), undefined);
    const ingress = ['api.ingress.enabled=true', ...WITH_KEYS];
    check('Ingress', trustOf(parseManifests(helmTemplate(undefined, ingress))), 'uniquelocal');
    check('embedded, Ingress', trustOf(parseManifests(helmTemplate(embedded, ingress))), 'uniquelocal');
    check(
      'api.trustProxy',
      trustOf(
        parseManifests(helmTemplate(undefined, [...ingress, 'api.trustProxy={10.42.0.0/16,fd00::/8}'])),
      ),
      '10.42.0.0/16,fd00::/8',
    );
  });

  // The API served /metrics on its public HTTP port (for the in-cluster scrape): whoever reached the API's Service (a
  // LoadBalancer, a NodePort, any pod, a proxy routing everything) read the process's metrics. The chart now runs it
  // with --metrics-port-only: /metrics on the metrics port alone, as every other service; the probes stay on the API.
  test('the API serves /metrics on its metrics port only: flags, container and Service ports, scrape targets', () => {
    let checked = 0;
    for (const [name, objs] of rendered) {
      const api = objs.find((o) => o.kind === 'Deployment' && component(o) === 'api');
      if (api === undefined) continue;
      checked++;
      const pod = api.spec.template;
      const c = podSpec(api).containers[0];
      assert.ok(c.args.includes('--metrics-port=9464'), `${name}: ${c.args.join(' ')}`);
      assert.ok(c.args.includes('--metrics-port-only'), `${name}: ${c.args.join(' ')}`);
      assert.deepEqual(
        c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
        [
          ['http', 8080],
          ['metrics', 9464],
        ],
        name,
      );
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
        assert.equal(c[probe].httpGet.port, 'http', `${name}: ${probe} stays on the API's port`);
      assert.equal(pod.metadata.annotations['prometheus.io/port'], '9464', name);
      const svc = objs.find((o) => o.kind === 'Service' && component(o) === 'api')!;
      assert.deepEqual(
        svc.spec.ports.map((p: { name: string; targetPort: string }) => [p.name, p.targetPort]),
        [
          ['http', 'http'],
          ['metrics', 'metrics'],
        ],
        name,
      );
    }
    assert.equal(checked, 4, 'every distributed value file has an API');
    // The ServiceMonitor scrapes the metrics port only in the distributed runtime (no endpoint on the API's http).
    const sm = rendered.get('production')!.find((o) => o.kind === 'ServiceMonitor')!;
    assert.deepEqual(
      sm.spec.endpoints.map((e: { port: string }) => e.port),
      ['metrics'],
    );
    // The embedded pod (`cryptocast run --metrics-port … --metrics-port-only`) alike: scraped on its metrics port only.
    const embedded = parseManifests(
      helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), ['metrics.serviceMonitor.enabled=true']),
    );
    assert.deepEqual(
      embedded.find((o) => o.kind === 'ServiceMonitor')!.spec.endpoints.map((e: { port: string }) => e.port),
      ['metrics'],
    );
    const run = embedded.find((o) => o.kind === 'Deployment' && component(o) === 'embedded')!;
    const c = podSpec(run).containers[0];
    assert.equal(c.args[0], 'run');
    assert.ok(c.args.includes('--metrics-port=9464'), c.args.join(' '));
    assert.ok(c.args.includes('--metrics-port-only'), c.args.join(' '));
    assert.deepEqual(
      c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      [
        ['http', 8080],
        ['metrics', 9464],
      ],
    );
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
      assert.equal(c[probe].httpGet.port, 'http', `${probe} stays on the API's port`);
    assert.equal(run.spec.template.metadata.annotations['prometheus.io/port'], '9464');
    const svc = embedded.find((o) => o.kind === 'Service' && component(o) === 'embedded')!;
    assert.deepEqual(
      svc.spec.ports.map((p: { name: string; targetPort: string }) => [p.name, p.targetPort]),
      [
        ['http', 'http'],
        ['metrics', 'metrics'],
      ],
    );
  });

  test('the API run with the chart’s own flags: /metrics is 404 on its HTTP port and served on the metrics port', async () => {
    const [httpPort, metricsPort] = [await freePort(), await freePort()];
    const objs = parseManifests(
      helmTemplate(undefined, [`api.port=${httpPort}`, `metrics.port=${metricsPort}`]),
    );
    const cm = configMap(objs)!.data as Record<string, string>;
    const args = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'api')!).containers[0]
      .args as string[];
    // The chart's args as rendered; a local bus, store and registry in place of Kafka, PostgreSQL and MLflow.
    const dir = join(scratch, 'api-flags');
    mkdirSync(dir, { recursive: true });
    const api = runCli(
      [
        ...args,
        '--bus',
        'memory',
        '--store',
        `duckdb:${join(dir, 'p.duckdb')}`,
        '--registry',
        join(dir, 'models'),
      ],
      { CRYPTOCAST_API_PORT: cm.CRYPTOCAST_API_PORT, CRYPTOCAST_LOG_LEVEL: 'warn' },
    );
    try {
      const http = `http://127.0.0.1:${httpPort}`;
      await waitFor(
        'the API to answer on its HTTP port',
        () =>
          fetch(`${http}/v1/health`).then(
            (r) => r.status,
            () => 0,
          ),
        (status) => status === 200,
        { timeoutMs: 90_000 },
      );
      assert.equal((await fetch(`${http}/metrics`)).status, 404, 'not on the public port');
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^# TYPE cryptocast_http_request_duration_seconds histogram$/m);
    } finally {
      api.child.kill('SIGTERM');
      assert.equal(await api.exited, 0, api.stderr());
    }
  });

  // No NetworkPolicy shipped: any pod in the cluster reached every service's metrics port (/metrics, /ready naming its
  // dependencies) and the API directly. networkPolicy.enabled renders an ingress-only set; checked here by evaluating
  // the rendered policies with the Kubernetes semantics (a pod selected by a policy admits only what one allows).
  describe('networkPolicy.enabled: only the API’s HTTP port from anywhere, metrics ports from the monitoring namespace', () => {
    const NS = 'cryptocast';
    type Labels = Record<string, string>;
    type Peer = { namespaceSelector?: { matchLabels?: Labels }; podSelector?: { matchLabels?: Labels } };
    /** A client: its namespace's labels and its pod's (the API server's automatic kubernetes.io/metadata.name). */
    type Source = { namespace: string; namespaceLabels?: Labels; pod: Labels };
    const selects = (sel: { matchLabels?: Labels } | undefined, labels: Labels) =>
      Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
    const peerAdmits = (peer: Peer, from: Source) => {
      const nsLabels = { 'kubernetes.io/metadata.name': from.namespace, ...from.namespaceLabels };
      if (peer.namespaceSelector === undefined)
        return from.namespace === NS && selects(peer.podSelector, from.pod);
      return selects(peer.namespaceSelector, nsLabels) && selects(peer.podSelector, from.pod);
    };
    /** Is a connection from `from` to `port` of the pod (labels, named container ports) allowed? */
    const allowed = (
      policies: K8sObject[],
      pod: { labels: Labels; ports: Record<string, number> },
      from: Source,
      port: number,
    ) => {
      const selecting = policies.filter(
        (p) =>
          selects(p.spec.podSelector, pod.labels) && (p.spec.policyTypes ?? ['Ingress']).includes('Ingress'),
      );
      if (selecting.length === 0) return true;
      return selecting.some((p) =>
        (p.spec.ingress ?? []).some(
          (rule: { from?: Peer[]; ports?: { port: number | string }[] }) =>
            (rule.ports === undefined ||
              rule.ports.some(
                (rp) => (typeof rp.port === 'string' ? pod.ports[rp.port] : rp.port) === port,
              )) &&
            (rule.from === undefined ||
              rule.from.length === 0 ||
              rule.from.some((peer) => peerAdmits(peer, from))),
        ),
      );
    };
    const pods = (objs: K8sObject[]) =>
      objs
        .filter((o) => podSpec(o) !== undefined)
        .map((o) => {
          const template = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template;
          const ports: Record<string, number> = {};
          for (const c of podSpec(o).containers)
            for (const p of c.ports ?? []) ports[p.name] = p.containerPort;
          return {
            name: `${o.kind} ${component(o)}`,
            component: component(o)!,
            labels: template.metadata.labels,
            ports,
          };
        });
    const outside: Source = {
      namespace: 'ingress-nginx',
      pod: { 'app.kubernetes.io/name': 'ingress-nginx' },
    };
    const neighbour: Source = { namespace: NS, pod: { app: 'something-else' } };
    const prometheus: Source = { namespace: 'monitoring', pod: { 'app.kubernetes.io/name': 'prometheus' } };
    const policiesOf = (objs: K8sObject[]) => objs.filter((o) => o.kind === 'NetworkPolicy');

    test('distributed (production values): the API from anywhere, metrics from monitoring, nothing else', () => {
      const objs = parseManifests(
        helmTemplate(join(CHART, 'ci', 'production-values.yaml'), ['networkPolicy.enabled=true']),
      );
      const policies = policiesOf(objs);
      assert.ok(policies.length > 0, 'no NetworkPolicy rendered');
      const all = pods(objs);
      assert.ok(all.length >= 10, all.map((p) => p.name).join(', '));
      for (const pod of all) {
        const where = pod.name;
        if (pod.component === 'api') {
          for (const from of [outside, neighbour, prometheus])
            assert.ok(allowed(policies, pod, from, 8080), `${where}: HTTP from ${from.namespace}`);
        }
        if (pod.ports.metrics !== undefined) {
          assert.ok(
            allowed(policies, pod, prometheus, pod.ports.metrics),
            `${where}: metrics from Prometheus`,
          );
          assert.ok(
            !allowed(policies, pod, neighbour, pod.ports.metrics),
            `${where}: metrics from a neighbour`,
          );
          assert.ok(!allowed(policies, pod, outside, pod.ports.metrics), `${where}: metrics from outside`);
        }
        // Any other port, from anyone, is closed (8080 on a service that is not the API; a guessed port).
        for (const port of [...(pod.component === 'api' ? [] : [8080]), 5005, 9092])
          for (const from of [outside, neighbour, prometheus])
            assert.ok(!allowed(policies, pod, from, port), `${where}: port ${port} from ${from.namespace}`);
      }
      // Ingress only: the services still reach Kafka, PostgreSQL, MLflow, OpenSearch, the exchanges, DNS.
      for (const p of policies) assert.deepEqual(p.spec.policyTypes, ['Ingress'], p.metadata.name);
      // Only this release's pods are selected (Kafka or PostgreSQL in the namespace are not).
      for (const p of policies)
        assert.equal(p.spec.podSelector.matchLabels['app.kubernetes.io/instance'], 'cc', p.metadata.name);
    });

    test('the API’s sources and the monitoring namespace are values', () => {
      const objs = parseManifests(
        helmTemplate(join(CHART, 'ci', 'production-values.yaml'), [
          'networkPolicy.enabled=true',
          'networkPolicy.metrics.namespace=observability',
          'networkPolicy.api.from[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx',
        ]),
      );
      const policies = policiesOf(objs);
      const api = pods(objs).find((p) => p.component === 'api')!;
      const predictor = pods(objs).find((p) => p.component === 'predictor')!;
      assert.ok(allowed(policies, api, outside, 8080));
      assert.ok(!allowed(policies, api, neighbour, 8080), 'only the Ingress controller’s namespace');
      assert.ok(!allowed(policies, predictor, prometheus, 9464), 'monitoring is no longer the namespace');
      assert.ok(allowed(policies, predictor, { ...prometheus, namespace: 'observability' }, 9464));
    });

    test('embedded: the pod’s HTTP port from anywhere, its metrics port from the monitoring namespace, nothing else', () => {
      const objs = parseManifests(
        helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), ['networkPolicy.enabled=true']),
      );
      const policies = policiesOf(objs);
      const pod = pods(objs).find((p) => p.component === 'embedded')!;
      for (const from of [outside, neighbour, prometheus]) {
        assert.ok(allowed(policies, pod, from, 8080), from.namespace);
        assert.equal(allowed(policies, pod, from, 9464), from === prometheus, from.namespace);
        assert.ok(!allowed(policies, pod, from, 5005), from.namespace);
      }
    });

    test('opt-in (networkPolicy.enabled, false by default); the production values turn it on', () => {
      assert.equal(policiesOf(rendered.get('default')!).length, 0);
      assert.ok(policiesOf(rendered.get('production')!).length > 0);
    });

    // Egress was never restricted: a predictor or API pod could send anything anywhere. networkPolicy.egress (opt-in,
    // apart from the ingress set) gives every pod DNS and the dependencies, and only the components that talk to
    // outside hosts the internet rules. Evaluated with the Kubernetes semantics, as the ingress policies above.
    describe('networkPolicy.egress: DNS and the dependencies for every pod, the internet only where it is needed', () => {
      type Rule = {
        to?: (Peer & { ipBlock?: { cidr: string; except?: string[] } })[];
        ports?: { port: number; protocol?: string }[];
      };
      /** A destination: a pod in a namespace, or an address outside the cluster. */
      type Destination = Source | { ip: string };
      const ipv4 = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
      const inCidr = (ip: string, cidr: string) => {
        const [base, bits] = cidr.split('/');
        const size = 2 ** (32 - Number(bits));
        return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base!) / size);
      };
      const reaches = (peer: Rule['to'] extends (infer P)[] | undefined ? P : never, to: Destination) => {
        if ('ip' in to)
          return (
            peer.ipBlock !== undefined &&
            inCidr(to.ip, peer.ipBlock.cidr) &&
            !(peer.ipBlock.except ?? []).some((c) => inCidr(to.ip, c))
          );
        return peer.ipBlock === undefined && peerAdmits(peer, to);
      };
      const selectsPod = (
        sel: {
          matchLabels?: Labels;
          matchExpressions?: { key: string; operator: string; values: string[] }[];
        },
        labels: Labels,
      ) =>
        selects(sel, labels) &&
        (sel.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values.includes(labels[e.key]!));
      /** May `pod` open a connection to `port`/`protocol` of `to`? */
      const egressAllowed = (
        policies: K8sObject[],
        pod: { labels: Labels },
        to: Destination,
        port: number,
        protocol = 'TCP',
      ) => {
        const selecting = policies.filter(
          (p) => selectsPod(p.spec.podSelector, pod.labels) && (p.spec.policyTypes ?? []).includes('Egress'),
        );
        if (selecting.length === 0) return true;
        return selecting.some((p) =>
          (p.spec.egress ?? []).some(
            (rule: Rule) =>
              (rule.ports === undefined ||
                rule.ports.some((rp) => rp.port === port && (rp.protocol ?? 'TCP') === protocol)) &&
              (rule.to === undefined || rule.to.length === 0 || rule.to.some((peer) => reaches(peer, to))),
          ),
        );
      };
      const values = (file: string, text: string) => {
        const path = join(scratchDir('cc-egress-'), file);
        writeFileSync(path, text);
        return path;
      };
      const dependencies = values(
        'egress.yaml',
        [
          'networkPolicy:',
          '  egress:',
          '    enabled: true',
          '    dependencies:',
          '      - to: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: data } } }]',
          '        ports: [{ port: 9094 }, { port: 5432 }]',
          '      - to: [{ ipBlock: { cidr: 10.20.0.15/32 } }]',
          '        ports: [{ port: 443 }]',
        ].join('\n'),
      );
      const dns: Source = { namespace: 'kube-system', pod: { 'k8s-app': 'kube-dns' } };
      const kafka: Source = { namespace: 'data', pod: { app: 'kafka' } };
      const mlflow = { ip: '10.20.0.15' };
      const exchange = { ip: '104.16.1.1' };
      const privateHost = { ip: '10.1.2.3' };
      const OUTSIDE = new Set(['trades', 'news', 'news-signals', 'monitor', 'embedded']);

      test('distributed: every pod reaches DNS and the dependencies; only trades, news, news-signals and monitor go out', () => {
        const all = parseManifests(helmTemplate([join(CHART, 'ci', 'production-values.yaml'), dependencies]));
        const policies = policiesOf(all);
        const workloads = pods(all);
        assert.ok(workloads.length >= 10, workloads.map((p) => p.name).join(', '));
        for (const pod of workloads) {
          const where = pod.name;
          assert.ok(egressAllowed(policies, pod, dns, 53, 'UDP'), `${where}: DNS over UDP`);
          assert.ok(egressAllowed(policies, pod, dns, 53, 'TCP'), `${where}: DNS over TCP`);
          assert.ok(egressAllowed(policies, pod, kafka, 9094), `${where}: Kafka`);
          assert.ok(egressAllowed(policies, pod, kafka, 5432), `${where}: PostgreSQL`);
          assert.ok(egressAllowed(policies, pod, mlflow, 443), `${where}: MLflow by its address`);
          assert.ok(
            !egressAllowed(policies, pod, kafka, 9092),
            `${where}: a port of the namespace not given`,
          );
          assert.ok(
            !egressAllowed(policies, pod, { namespace: 'other', pod: {} }, 9094),
            `${where}: another namespace`,
          );
          assert.ok(!egressAllowed(policies, pod, privateHost, 443), `${where}: a private address not given`);
          const out = OUTSIDE.has(pod.component);
          assert.equal(egressAllowed(policies, pod, exchange, 443), out, `${where}: an exchange on 443`);
          assert.equal(egressAllowed(policies, pod, exchange, 9443), out, `${where}: Binance's 9443`);
          assert.ok(!egressAllowed(policies, pod, exchange, 25), `${where}: any other port outside`);
        }
        for (const c of ['trades', 'news', 'news-signals', 'monitor', 'predictor', 'api'])
          assert.ok(
            workloads.some((p) => p.component === c),
            `no ${c} pod rendered`,
          );
      });

      test('embedded: the one pod reaches the outside hosts as well', () => {
        const all = parseManifests(helmTemplate([join(CHART, 'ci', 'embedded-values.yaml'), dependencies]));
        const pod = pods(all).find((p) => p.component === 'embedded')!;
        assert.ok(egressAllowed(policiesOf(all), pod, exchange, 443));
        assert.ok(egressAllowed(policiesOf(all), pod, dns, 53, 'UDP'));
        assert.ok(!egressAllowed(policiesOf(all), pod, privateHost, 5432));
      });

      test('the Strimzi values close egress to the in-cluster Kafka, PostgreSQL and MLflow (so lint and kubeconform check it)', () => {
        const all = rendered.get('strimzi')!;
        const policies = policiesOf(all);
        assert.equal(policies.filter((p) => p.spec.policyTypes.includes('Egress')).length, 2);
        for (const pod of pods(all)) {
          assert.ok(egressAllowed(policies, pod, { namespace: 'kafka', pod: {} }, 9093), pod.name);
          assert.ok(egressAllowed(policies, pod, { namespace: 'postgres', pod: {} }, 5432), pod.name);
          assert.ok(egressAllowed(policies, pod, { namespace: 'mlflow', pod: {} }, 5000), pod.name);
          assert.equal(egressAllowed(policies, pod, exchange, 443), OUTSIDE.has(pod.component), pod.name);
        }
      });

      test('off by default and in the other shipped values: egress stays open (no Egress policy)', () => {
        for (const name of ['default', 'production', 'minimal', 'embedded'])
          assert.ok(
            policiesOf(rendered.get(name)!).every((p) => !(p.spec.policyTypes ?? []).includes('Egress')),
            name,
          );
      });

      test('embedded without dependencies: rendered (the pod has no Kafka or PostgreSQL to reach), DNS and the outside', () => {
        const all = parseManifests(
          helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), ['networkPolicy.egress.enabled=true']),
        );
        const pod = pods(all).find((p) => p.component === 'embedded')!;
        assert.ok(egressAllowed(policiesOf(all), pod, dns, 53, 'UDP'));
        assert.ok(egressAllowed(policiesOf(all), pod, exchange, 443));
        assert.ok(!egressAllowed(policiesOf(all), pod, kafka, 9094));
      });

      test('on without dependencies: refused, naming the value (the pods would reach nothing but DNS)', () => {
        assert.throws(
          () => helmTemplate(undefined, ['networkPolicy.egress.enabled=true']),
          /networkPolicy\.egress\.enabled=true with no networkPolicy\.egress\.dependencies/,
        );
      });
    });
  });

  test('embedded: one replica of `cryptocast run` on a volume, no Kafka objects', () => {
    const objs = rendered.get('embedded')!;
    const ds = objs.filter((o) => o.kind === 'Deployment');
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.spec.replicas, 1);
    assert.equal(ds[0]!.spec.strategy.type, 'Recreate');
    assert.equal(podSpec(ds[0]!).containers[0].args[0], 'run');
    assert.ok(objs.some((o) => o.kind === 'PersistentVolumeClaim'));
    assert.equal(objs.filter((o) => ['Job', 'CronJob', 'KafkaTopic'].includes(o.kind)).length, 0);
  });

  test('embedded: `run` gets the sentiment backend and news settings of the values', () => {
    // `run` takes its backend from CRYPTOCAST_SENTIMENT_BACKEND, else `local` (src/cli/options.ts): without it the pod
    // tried the local LLM with no weights and scored with the lexicon, whatever sentiment.backend said.
    const embedded = (set: string[]) => {
      const objs = parseManifests(helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), set));
      const cm = configMap(objs)!.data as Record<string, string>;
      const spec = podSpec(objs.find((o) => o.kind === 'Deployment')!);
      const c = spec.containers[0];
      const env = (n: string) => {
        const e = c.env.find((x: { name: string }) => x.name === n);
        return (
          e?.value ?? (e?.valueFrom?.configMapKeyRef ? cm[e.valueFrom.configMapKeyRef.key] : e?.valueFrom)
        );
      };
      return { env, spec, c };
    };
    assert.equal(embedded([]).env('CRYPTOCAST_SENTIMENT_BACKEND'), 'lexicon');
    const openai = embedded([
      'sentiment.backend=openai',
      'sentiment.openai.baseUrl=http://vllm.llm:8000/v1',
      'sentiment.openai.model=qwen',
      'sentiment.openai.apiKeySecret.name=llm',
      'news.feeds[0]=https://news.example/rss',
      'news.cryptopanicTokenSecret.name=cp',
    ]);
    assert.equal(openai.env('CRYPTOCAST_SENTIMENT_BACKEND'), 'openai');
    assert.equal(openai.env('CRYPTOCAST_LLM_BASE_URL'), 'http://vllm.llm:8000/v1');
    assert.equal(openai.env('CRYPTOCAST_LLM_MODEL_NAME'), 'qwen');
    assert.equal(openai.env('CRYPTOCAST_LLM_API_KEY').secretKeyRef.name, 'llm');
    assert.equal(openai.env('CRYPTOCAST_NEWS_FEEDS'), 'https://news.example/rss');
    assert.equal(openai.env('CRYPTOPANIC_TOKEN').secretKeyRef.name, 'cp');
    const local = embedded(['sentiment.backend=local', 'sentiment.local.modelClaim=weights']);
    assert.equal(local.env('CRYPTOCAST_SENTIMENT_BACKEND'), 'local');
    const model = local.env('CRYPTOCAST_LLM_MODEL') as string;
    const mount = local.c.volumeMounts.find((m: { mountPath: string }) =>
      model.startsWith(`${m.mountPath}/`),
    );
    assert.ok(mount, `${model} is on no volume`);
    const vol = local.spec.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(vol.persistentVolumeClaim.claimName, 'weights');
  });

  test('the local sentiment backend finds its weights and head on a claim filled by scripts/models.sh', () => {
    // scripts/models.sh writes the weights as NAME and the shipped classifier head beside them; the head names the
    // model it was fitted on (the weights' file name), which LocalLlmBackend checks.
    const script = readFileSync(join(CHART, '..', '..', '..', 'scripts', 'models.sh'), 'utf8');
    const name = /^NAME="([^"]+)"/m.exec(script)![1]!;
    const claim = join(scratch, 'models-claim');
    mkdirSync(claim, { recursive: true });
    writeFileSync(join(claim, name), 'weights');
    const headName = name.replace(/\.gguf$/, '.head.json');
    copyFileSync(join(CHART, '..', '..', '..', 'models', 'sentiment', headName), join(claim, headName));
    const objs = parseManifests(
      helmTemplate(undefined, ['sentiment.backend=local', 'sentiment.local.modelClaim=weights']),
    );
    const cm = configMap(objs)!.data as Record<string, string>;
    const spec = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'news-signals')!);
    const mount = spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'models');
    const model = cm.CRYPTOCAST_LLM_MODEL!;
    assert.ok(model.startsWith(`${mount.mountPath}/`), model);
    // The pod's path, read in the claim: the backend's constructor checks the weights and reads the head.
    const inClaim = join(claim, model.slice(mount.mountPath.length + 1));
    assert.doesNotThrow(
      () => new LocalLlmBackend({ modelPath: inClaim, mode: cm.CRYPTOCAST_LLM_MODE as 'classifier' }),
      `sentiment.local.modelFile ${basename(model)}: scripts/models.sh writes ${name}`,
    );
  });

  test('the local model runs as many threads as the news-signals pod’s CPU limit (not the node’s cores)', () => {
    const objs = parseManifests(
      helmTemplate(undefined, [
        'sentiment.backend=local',
        'sentiment.local.modelClaim=weights',
        'services.news-signals.resources.limits.cpu=1500m',
      ]),
    );
    const spec = podSpec(objs.find((o) => o.kind === 'Deployment' && component(o) === 'news-signals')!);
    const threads = spec.containers[0].env.find((e: { name: string }) => e.name === 'CRYPTOCAST_LLM_THREADS');
    assert.ok(threads, 'CRYPTOCAST_LLM_THREADS is not set: llama.cpp counts the node’s cores');
    // The downward API rounds the limit up to whole CPUs with divisor 1 (1500m → 2): a positive integer, as the
    // setting requires, and never 0 for a limit below one CPU.
    assert.deepEqual(threads.valueFrom.resourceFieldRef, {
      containerName: 'news-signals',
      resource: 'limits.cpu',
      divisor: '1',
    });
  });

  describe('impossible values are refused at install', () => {
    const refused: [string, string[], RegExp][] = [
      [
        'several API replicas with the embedded DuckDB store',
        ['runtime=embedded', 'trainer.enabled=false', 'services.api.replicas=2'],
        /services\/api\/replicas': maximum: got 2, want 1/,
      ],
      [
        'API autoscaling with the embedded store',
        ['runtime=embedded', 'trainer.enabled=false', 'services.api.autoscaling.enabled=true'],
        /autoscaling\/enabled/,
      ],
      [
        'a consumer autoscaled past its input partitions',
        ['services.candles.autoscaling.enabled=true', 'services.candles.autoscaling.maxReplicas=8'],
        /candles\/autoscaling\/maxReplicas': maximum: got 8, want 4/,
      ],
      ['two trade services (duplicate trades)', ['services.trades.replicas=2'], /trades\/replicas': maximum/],
      ['the openai backend without an endpoint', ['sentiment.backend=openai'], /openai\/baseUrl': minLength/],
      ['the local backend without its weights', ['sentiment.backend=local'], /local\/modelClaim': minLength/],
      [
        'a password as a value',
        ['postgresql.password=hunter2'],
        /additional properties 'password' not allowed/,
      ],
      [
        'a credential as a plain extra env value',
        [
          'services.api.extraEnv[0].name=ALERT_WEBHOOK',
          'services.api.extraEnv[0].value=https://hooks.example/x',
        ],
        /extraEnv\/0': 'not' failed/,
      ],
      [
        'a directory registry without a shared volume',
        ['registry.url=/var/lib/cryptocast/registry'],
        /persistence/,
      ],
      ['a registry URL of another scheme', ['registry.url=http://mlflow:5000'], /registry\/url/],
      [
        'a bus URL where host:port is expected',
        ['kafka.bootstrapServers=kafka://kafka:9092'],
        /bootstrapServers/,
      ],
      ['the index sink without OpenSearch', ['services.index-sink.enabled=true'], /opensearch/],
      [
        'a Kafka SASL mechanism cryptocast does not speak',
        ['kafka.sasl.mechanism=AWS_MSK_IAM'],
        /sasl\/mechanism/,
      ],
      [
        'Kafka SASL without its user or password Secret',
        ['kafka.sasl.mechanism=SCRAM-SHA-512'],
        /sasl\/(username|passwordSecret\/name)': minLength/,
      ],
      ['a Kafka CA with TLS off', ['kafka.tls.caSecret.name=kafka-ca'], /tls\/enabled': value must be true/],
      ['a malformed schedule', ['trainer.schedule=hourly'], /trainer\/schedule/],
      [
        'a tuning budget the trainer Job’s deadline cuts short (every run stopped before its fit)',
        ['trainer.tuneSeconds=3600'],
        /trainer\.tuneSeconds=3600 is not below trainer\.activeDeadlineSeconds=3600/,
      ],
      [
        'a trainer with the news columns, which the predictor cannot serve (every run refused promotion)',
        ['trainer.withNews=true'],
        /trainer\.withNews=true: the predictor serves technical features only/,
      ],
      [
        // The trades service refuses them at start (CC_ERR_CONFIG: one series per pair): a crash loop after the install.
        'two exchanges following the same pairs (kraken and coinbase)',
        ['market.exchanges={kraken,coinbase}'],
        /market\/exchanges/,
      ],
      [
        // The features service computes on 1-minute candles (TechnicalFeatures(60_000)): it dead-lettered every 5-minute
        // candle, and no prediction came (embedded: `run` refuses it at start, a crash loop).
        'a candle interval the features and the model do not take',
        ['market.interval=5m'],
        /market\/interval/,
      ],
      ['a malformed duration', ['market.grace=5 seconds'], /market\/grace/],
      [
        // `service api --metrics-port N --port N` is refused at start: a crash loop.
        'the API’s HTTP port the same as the metrics port',
        ['api.port=9464'],
        /api\.port=9464 is also metrics\.port/,
      ],
      [
        // `run --metrics-port N --port N` alike (the embedded pod).
        'the embedded pod’s HTTP port the same as the metrics port',
        ['runtime=embedded', 'trainer.enabled=false', 'services.api.replicas=1', 'api.port=9464'],
        /api\.port=9464 is also metrics\.port/,
      ],
      ['Strimzi topics without the cluster name', ['kafka.topics.create=strimzi'], /strimziCluster/],
      [
        'minReplicas above maxReplicas',
        [
          'services.candles.autoscaling.enabled=true',
          'services.candles.autoscaling.minReplicas=4',
          'services.candles.autoscaling.maxReplicas=2',
        ],
        /services\.candles\.autoscaling\.minReplicas=4 is above maxReplicas=2/,
      ],
      [
        // The API serves /metrics without a key (Prometheus scrapes it in the cluster): an Ingress path that reaches it
        // (`/` as a Prefix) published the process's metrics to anyone outside.
        'an Ingress path that reaches /metrics (/ as a Prefix)',
        [
          'api.ingress.enabled=true',
          'api.ingress.hosts[0].host=a.example.com',
          'api.ingress.hosts[0].paths[0].path=/',
          'api.ingress.hosts[0].paths[0].pathType=Prefix',
          ...WITH_KEYS,
        ],
        /api\.ingress\.hosts\[0\]\.paths: "\/" \(Prefix\) reaches \/metrics/,
      ],
      [
        'an Ingress path that reaches /metrics (/metrics itself)',
        [
          'api.ingress.enabled=true',
          'api.ingress.hosts[0].host=a.example.com',
          'api.ingress.hosts[0].paths[0].path=/metrics',
          'api.ingress.hosts[0].paths[0].pathType=Exact',
          ...WITH_KEYS,
        ],
        /"\/metrics" \(Exact\) reaches \/metrics/,
      ],
      [
        'a directory registry outside its volume',
        [
          'registry.url=/data/reg',
          'registry.persistence.enabled=true',
          'registry.persistence.existingClaim=shared',
        ],
        /must lie under registry\.persistence\.mountPath/,
      ],
    ];
    refused.push(
      [
        // The candle service on revise, the monitor on dlq: its restarts scored by another close than it judged by.
        'a late policy for the candle service alone (extraArgs)',
        ['services.candles.extraArgs[0]=--late-policy=revise'],
        /services\.candles\.extraArgs: "--late-policy=revise" gives the late policy to the candles service alone; set market\.latePolicy/,
      ],
      [
        'a late policy for the monitor alone (extraEnv)',
        [
          'services.monitor.extraEnv[0].name=CRYPTOCAST_LATE_POLICY',
          'services.monitor.extraEnv[0].value=revise',
        ],
        /services\.monitor\.extraEnv: CRYPTOCAST_LATE_POLICY gives the late policy to the monitor service alone/,
      ],
    );
    for (const [what, set, message] of refused)
      test(what, () => {
        assert.throws(() => helmTemplate(undefined, set), message);
      });

    // The check of the Ingress paths ran for the distributed runtime only, so `/` as a Prefix published the embedded pod's
    // metrics (then served on its HTTP port; now --metrics-port-only answers 404 there, and the check stays a second guard).
    test('embedded: an Ingress path that reaches /metrics', () => {
      for (const [path, pathType] of [
        ['/', 'Prefix'],
        ['/metrics', 'Exact'],
      ])
        assert.throws(
          () =>
            helmTemplate(join(CHART, 'ci', 'embedded-values.yaml'), [
              'api.ingress.enabled=true',
              'api.ingress.hosts[0].host=a.example.com',
              `api.ingress.hosts[0].paths[0].path=${path}`,
              `api.ingress.hosts[0].paths[0].pathType=${pathType}`,
              ...WITH_KEYS,
            ]),
          new RegExp(`api\\.ingress\\.hosts\\[0\\]\\.paths: "${path}" \\(${pathType}\\) reaches /metrics`),
        );
    });

    // With no API keys every data route is open (src/api/auth.ts): fine on ClusterIP inside the cluster, but an Ingress
    // or a LoadBalancer/NodePort Service published the whole API, keyless, to anyone outside, without a word.
    const keyless: [string, string | undefined, string[], RegExp][] = [
      [
        'an Ingress',
        undefined,
        ['api.ingress.enabled=true'],
        /api\.ingress\.enabled=true with no API keys \(api\.keysSecret\.name is empty\)/,
      ],
      [
        'an Ingress to the embedded pod',
        join(CHART, 'ci', 'embedded-values.yaml'),
        ['api.ingress.enabled=true'],
        /api\.ingress\.enabled=true with no API keys/,
      ],
      [
        'a LoadBalancer Service',
        undefined,
        ['api.service.type=LoadBalancer'],
        /api\.service\.type=LoadBalancer with no API keys/,
      ],
      [
        'a NodePort Service',
        undefined,
        ['api.service.type=NodePort'],
        /api\.service\.type=NodePort with no API keys/,
      ],
    ];
    for (const [where, file, set, message] of keyless)
      test(`a keyless API published by ${where}: refused unless api.allowAnonymous=true`, () => {
        assert.throws(() => helmTemplate(file, set), message);
        assert.throws(() => helmTemplate(file, set), /set api\.allowAnonymous=true/);
        for (const accepted of [
          [...set, ...WITH_KEYS],
          [...set, 'api.allowAnonymous=true'],
        ]) {
          const objs = parseManifests(helmTemplate(file, accepted));
          assert.ok(
            objs.some((o) => o.kind === 'Deployment'),
            accepted.join(' '),
          );
        }
      });

    test('api.allowAnonymous is a boolean, false by default', () => {
      assert.throws(() => helmTemplate(undefined, ['api.allowAnonymous=yes']), /allowAnonymous/);
      const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
      assert.equal(values.api.allowAnonymous, false);
    });
  });
});
