import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Agg, dashboardObjects } from '../../../src/sinks/dashboards.ts';
import {
  ERROR_MAPPINGS,
  errorsIndexPattern,
  PREDICTION_MAPPINGS,
  predictionsIndexPattern,
} from '../../../src/sinks/predictions-index.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
type Fields = Record<string, { type: string }>;
/** The mapped fields behind each index pattern, by its title. */
const FIELDS: Record<string, Fields> = {
  [predictionsIndexPattern('cryptocast-')]: PREDICTION_MAPPINGS.properties,
  [errorsIndexPattern('cryptocast-')]: ERROR_MAPPINGS.properties,
};
const NUMERIC = new Set(['byte', 'integer', 'long', 'double']);

test('deploy/opensearch/ files are what scripts/deploy/dashboards.ts writes', () => {
  const r = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', join(ROOT, 'scripts/deploy/dashboards.ts'), '--check'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
});

test('saved objects: references resolve, the index pattern matches the sink, every field is mapped and fits its use', () => {
  const objs = dashboardObjects();
  const ids = new Set(objs.map((o) => `${o.type}:${o.id}`));
  assert.equal(ids.size, objs.length);
  for (const o of objs)
    for (const r of o.references) assert.ok(ids.has(`${r.type}:${r.id}`), `${o.id} → ${r.id}`);
  const patterns = objs.filter((o) => o.type === 'index-pattern');
  assert.deepEqual(patterns.map((p) => p.attributes.title).sort(), Object.keys(FIELDS).sort());
  for (const p of patterns)
    assert.equal(FIELDS[p.attributes.title as string]![p.attributes.timeFieldName as string]!.type, 'date');
  for (const v of objs.filter((o) => o.type === 'visualization')) {
    const state = JSON.parse(v.attributes.visState as string) as { aggs: Agg[] };
    const pattern = patterns.find((p) => p.id === v.references[0]!.id)!;
    const types = FIELDS[pattern.attributes.title as string]!;
    for (const a of state.aggs) {
      const field = a.params.field as string | undefined;
      if (a.type === 'count') continue;
      assert.ok(field && types[field], `${v.id}: agg ${a.id} on unmapped field ${field}`);
      const t = types[field]!.type;
      if (a.type === 'date_histogram') assert.equal(t, 'date', `${v.id}: ${field}`);
      else if (a.type === 'terms')
        assert.ok(t === 'keyword' || t === 'boolean' || NUMERIC.has(t), `${v.id}: ${field} ${t}`);
      else assert.ok(NUMERIC.has(t), `${v.id}: ${a.type} on ${field} (${t})`);
    }
    const search = JSON.parse(
      (v.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON,
    );
    assert.ok(v.references.some((r) => r.name === search.indexRefName));
  }
  const dash = objs.find((o) => o.type === 'dashboard')!;
  const panels = JSON.parse(dash.attributes.panelsJSON as string) as { panelRefName: string }[];
  assert.equal(panels.length, objs.filter((o) => o.type === 'visualization').length);
  for (const p of panels) assert.ok(dash.references.some((r) => r.name === p.panelRefName));
});
