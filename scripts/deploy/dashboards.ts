/**
 * Writes deploy/opensearch/dashboards.ndjson (OpenSearch Dashboards saved objects) from src/sinks/dashboards.ts, and
 * the index templates and ISM policies (predictions, errors) beside it for operators who install them by hand:
 *
 *   node scripts/deploy/dashboards.ts [--check]
 *
 * --check: exit 1 if the files differ from what would be written (the test suite runs it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardsNdjson } from '../../src/sinks/dashboards.ts';
import {
  errorsIndexTemplate,
  errorsIsmPolicy,
  predictionsIndexTemplate,
  predictionsIsmPolicy,
} from '../../src/sinks/predictions-index.ts';

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'opensearch');
const files: Record<string, string> = {
  'dashboards.ndjson': dashboardsNdjson(),
  'predictions-index-template.json': `${JSON.stringify(predictionsIndexTemplate('cryptocast-'), null, 2)}\n`,
  'predictions-ism-policy.json': `${JSON.stringify(predictionsIsmPolicy('cryptocast-'), null, 2)}\n`,
  'errors-index-template.json': `${JSON.stringify(errorsIndexTemplate('cryptocast-'), null, 2)}\n`,
  'errors-ism-policy.json': `${JSON.stringify(errorsIsmPolicy('cryptocast-'), null, 2)}\n`,
};
let stale = 0;
for (const [name, text] of Object.entries(files)) {
  const path = join(DIR, name);
  if (process.argv.includes('--check')) {
    let old = '';
    try {
      old = readFileSync(path, 'utf8');
    } catch {}
    if (old !== text) {
      process.stderr.write(`${path} is stale: run node scripts/deploy/dashboards.ts\n`);
      stale++;
    }
  } else writeFileSync(path, text);
}
process.exit(stale > 0 ? 1 : 0);
