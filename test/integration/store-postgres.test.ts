import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe } from 'node:test';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { featureStoreContract } from '../support/feature-store-contract.ts';

/** The same contract as the DuckDB store, against a real PostgreSQL server (scripts/postgres.sh). */
const ROOT = join(import.meta.dirname, '..', '..');
const URL = process.env.CRYPTOCAST_TEST_PG ?? 'postgres://cryptocast@127.0.0.1:55432/cryptocast';

describe('PostgreSQL feature store (a real server)', () => {
  before(() => {
    if (!process.env.CRYPTOCAST_TEST_PG)
      execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'start'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
  });
  featureStoreContract(() => PostgresFeatureStore.open(URL));
});
