import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe } from 'node:test';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { predictionsStoreContract } from '../support/predictions-store-contract.ts';

/** The same contract as the DuckDB predictions store, against a real PostgreSQL server (scripts/postgres.sh). */
const ROOT = join(import.meta.dirname, '..', '..');
const URL = process.env.CRYPTOCAST_TEST_PG ?? 'postgres://cryptocast@127.0.0.1:55432/cryptocast';

describe('PostgreSQL predictions store (a real server)', () => {
  before(() => {
    if (!process.env.CRYPTOCAST_TEST_PG)
      execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'start'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
  });
  predictionsStoreContract(() => openPredictionsStore(URL));
});
