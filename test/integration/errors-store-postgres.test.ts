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

  // A database whose collation is not bytewise (ICU en-US, as many servers' defaults: 'a' < 'B'), made once.
  describe('in a database with a language collation', () => {
    const url = new URL(PG_URL);
    const icuDb = `${url.pathname.slice(1)}_icu_en_us`;
    url.pathname = `/${icuDb}`;
    before(async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        const there = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [icuDb]);
        if (there.rows.length === 0)
          await c.query(
            `CREATE DATABASE ${icuDb} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`,
          );
      } finally {
        await c.end();
      }
    });
    errorsStoreContract(() => openErrorsStore(url.toString()));
  });

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
