import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** Helpers of the deployment tests: the offline tools (scripts/deploy-tools.sh) and the chart's rendered output. */

export const ROOT = join(import.meta.dirname, '..', '..');
export const CHART = join(ROOT, 'deploy', 'helm', 'cryptocast');
export const VALUES_DIR = join(CHART, 'ci');

export interface DeployTools {
  helm: string;
  kubeconform: string;
  k8sSchemas: string;
  k8sVersions: string[];
  hadolint: string;
}

let tools: DeployTools | undefined;

/** Installs the tools if missing (idempotent, a few seconds once cached) and returns their paths. */
export function deployTools(): DeployTools {
  if (tools !== undefined) return tools;
  const script = join(ROOT, 'scripts', 'deploy-tools.sh');
  execFileSync('bash', [script, 'install'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const kv = Object.fromEntries(
    execFileSync('bash', [script, 'paths'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  tools = {
    helm: kv.HELM!,
    kubeconform: kv.KUBECONFORM!,
    k8sSchemas: kv.K8S_SCHEMAS!,
    k8sVersions: kv.K8S_VERSIONS!.split(' '),
    hadolint: kv.HADOLINT!,
  };
  for (const p of [tools.helm, tools.kubeconform, tools.hadolint, tools.k8sSchemas])
    if (!existsSync(p)) throw new Error(`deploy tool missing after install: ${p}`);
  return tools;
}

/** The value files the chart is tested with: the chart's defaults plus every file under ci/. */
export function valueFiles(): { name: string; file?: string }[] {
  return [
    { name: 'default' },
    ...readdirSync(VALUES_DIR)
      .filter((f) => f.endsWith('-values.yaml'))
      .sort()
      .map((f) => ({ name: f.replace(/-values\.yaml$/, ''), file: join(VALUES_DIR, f) })),
  ];
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string; env?: Record<string, string> } = {},
): Run {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: {
      ...process.env,
      // helm keeps no state between tests and reads no user configuration
      HELM_CACHE_HOME: join(tmpdir(), 'cryptocast-helm', 'cache'),
      HELM_CONFIG_HOME: join(tmpdir(), 'cryptocast-helm', 'config'),
      HELM_DATA_HOME: join(tmpdir(), 'cryptocast-helm', 'data'),
      ...opts.env,
    },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `helm template` with a values file or several (later ones override earlier ones) and `--set` pairs; throws with
 * helm's message when it refuses.
 */
export function helmTemplate(file?: string | readonly string[], set: string[] = []): string {
  const args = ['template', 'cc', CHART, '--namespace', 'cryptocast'];
  for (const f of file === undefined ? [] : typeof file === 'string' ? [file] : file) args.push('-f', f);
  for (const s of set) args.push('--set', s);
  const r = run(deployTools().helm, args);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return r.stdout;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are checked field by field
type Loose = any;
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: Loose };
  [k: string]: Loose;
};

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** The pod spec of a workload (Deployment, Job, CronJob), or undefined. */
export function podSpec(o: K8sObject): Loose {
  if (o.kind === 'CronJob') return o.spec.jobTemplate.spec.template.spec;
  if (['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)) return o.spec.template.spec;
  return undefined;
}

const serviceHelp = new Map<string, string>();

/** The long flags `cryptocast service <stage> --help` lists: each stage has only its own. */
export function serviceFlags(stage: string): Set<string> {
  let help = serviceHelp.get(stage);
  if (help === undefined) {
    help = run(process.execPath, [
      '--disable-warning=ExperimentalWarning',
      join(ROOT, 'src/cli/main.ts'),
      'service',
      stage,
      '--help',
    ]).stdout;
    serviceHelp.set(stage, help);
  }
  return new Set([...help.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
}

/** The defaults `cryptocast service <stage> --help` states, by long flag (`--days` → `365`). */
export function serviceDefaults(stage: string): Map<string, string> {
  serviceFlags(stage); // fills the help cache
  const help = serviceHelp.get(stage)!;
  const out = new Map<string, string>();
  // One block per option: from its flag at the start of a line to the next one (the description wraps).
  for (const block of help.split(/\n(?=\s+(?:-\w, )?--)/)) {
    const flag = /^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/.exec(block)?.[1];
    const value = /\(default: "([^"]*)"/.exec(block.replace(/\s+/g, ' '))?.[1];
    if (flag !== undefined && value !== undefined) out.set(flag, value);
  }
  return out;
}

/** The flags of a `service <name> …` argument list that stage of the CLI does not know. */
export function unknownServiceFlags(args: readonly string[]): string[] {
  const known = serviceFlags(args[1] ?? '');
  return args
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0]!)
    .filter((f) => !known.has(f));
}

const commandHelp = new Map<string, Run>();

/**
 * The flags of any `cryptocast …` argument list (`run --source=live`, `topics create`) that its command does not
 * know, or the command itself when the CLI has none of that name: its path is the arguments before the first flag.
 */
export function unknownCliFlags(args: readonly string[]): string[] {
  const firstFlag = args.findIndex((a) => a.startsWith('-'));
  const words = firstFlag < 0 ? [...args] : args.slice(0, firstFlag);
  const key = words.join(' ');
  let help = commandHelp.get(key);
  if (help === undefined) {
    help = run(process.execPath, [
      '--disable-warning=ExperimentalWarning',
      join(ROOT, 'src/cli/main.ts'),
      ...words,
      '--help',
    ]);
    commandHelp.set(key, help);
  }
  // commander answers an unknown command with the parent's help, which lists it nowhere as "Usage: cryptocast <path>".
  if (help.status !== 0 || !help.stdout.includes(`Usage: cryptocast ${key} `))
    return [`(no command "${key}")`];
  const known = new Set([...help.stdout.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
  return args
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0]!)
    .filter((f) => !known.has(f));
}
