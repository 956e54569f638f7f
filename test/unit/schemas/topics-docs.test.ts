import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { topics } from '../../../src/schemas/topics.ts';

/**
 * The topic tables of the docs an operator sets a cluster up from (docs/architecture.md, docs/operations.md) list
 * every topic of src/schemas/topics.ts with its partitions: a topic added to the code and left out of a table (as
 * `predictor.aci` was in docs/operations.md) is one an operator sizes no retention, ACL or quota for.
 */

const DOCS = join(import.meta.dirname, '..', '..', '..', 'docs');

/** name → partitions of the first Markdown table in `text` whose header starts `| topic |`. */
function topicTable(text: string): Map<string, number> {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\|\s*topic\s*\|/.test(l));
  assert.ok(start >= 0, 'no table headed "| topic |"');
  const header = lines[start]!.split('|').map((c) => c.trim());
  const col = header.indexOf('partitions');
  assert.ok(col > 0, `no partitions column in ${lines[start]}`);
  const out = new Map<string, number>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    // A cell may hold an escaped pipe (rule\|series): split on the others only.
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const name = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    assert.ok(name, `a row without a topic name: ${line}`);
    out.set(name, Number(cells[col]));
  }
  return out;
}

describe('the docs’ topic tables', () => {
  const fromCode = new Map(Object.values(topics).map((t) => [t.name, t.partitions]));
  for (const doc of ['architecture.md', 'operations.md'])
    it(`docs/${doc} lists every topic of src/schemas/topics.ts with its partitions`, () => {
      const table = topicTable(readFileSync(join(DOCS, doc), 'utf8'));
      assert.deepEqual(
        [...table].sort(([a], [b]) => a.localeCompare(b)),
        [...fromCode].sort(([a], [b]) => a.localeCompare(b)),
      );
    });
});
