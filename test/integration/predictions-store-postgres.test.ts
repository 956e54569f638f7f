import { before, describe } from 'node:test';
import { openPredictionsStore } from '../../src/inference/store/open.ts';
import { ensurePostgres, PG_URL } from '../support/postgres.ts';
import { predictionsStoreContract } from '../support/predictions-store-contract.ts';

/** The same contract as the DuckDB predictions store, against a real PostgreSQL server (scripts/postgres.sh). */

describe('PostgreSQL predictions store (a real server)', () => {
  before(ensurePostgres);
  predictionsStoreContract(() => openPredictionsStore(PG_URL));
});
