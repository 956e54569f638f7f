import { before, describe } from 'node:test';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { errorsStoreContract } from '../support/errors-store-contract.ts';
import { ensurePostgres, PG_URL } from '../support/postgres.ts';

/** The same contract as the DuckDB errors store, against a real PostgreSQL server (scripts/postgres.sh). */

describe('PostgreSQL errors store (a real server)', () => {
  before(ensurePostgres);
  errorsStoreContract(() => openErrorsStore(PG_URL));
});
