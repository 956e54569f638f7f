import { before, describe } from 'node:test';
import pg from 'pg';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { errorsStoreContract, otherVersionTableContract } from '../support/errors-store-contract.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { ensurePostgres, PG_URL, testSchema } from '../support/postgres.ts';

/** The same contract as the DuckDB errors store, against a real PostgreSQL server (scripts/postgres.sh). */

describe('PostgreSQL errors store (a real server)', () => {
  before(ensurePostgres);
  errorsStoreContract(() => openErrorsStore(PG_URL));

  // Each test in a schema of its own, where the other version's table is made.
  otherVersionTableContract(async () => {
    const schema = testSchema(uniquePrefix('es-layout'));
    await schema.create();
    return {
      async sql(statement: string) {
        const c = new pg.Client({ connectionString: schema.url });
        await c.connect();
        try {
          return (await c.query(statement)).rows;
        } finally {
          await c.end();
        }
      },
      open: () => openErrorsStore(schema.url),
      drop: schema.drop,
    };
  });
});
