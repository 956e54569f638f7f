import { before, describe } from 'node:test';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { featureStoreContract } from '../support/feature-store-contract.ts';
import { ensurePostgres, PG_URL } from '../support/postgres.ts';

/** The same contract as the DuckDB store, against a real PostgreSQL server (scripts/postgres.sh). */

describe('PostgreSQL feature store (a real server)', () => {
  before(ensurePostgres);
  featureStoreContract(() => PostgresFeatureStore.open(PG_URL));
});
