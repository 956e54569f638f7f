import { before, describe } from 'node:test';
import pg from 'pg';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { featureStoreContract, otherLayoutFeatureTableContract } from '../support/feature-store-contract.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { ensurePostgres, PG_URL, testSchema } from '../support/postgres.ts';

/** The same contract as the DuckDB store, against a real PostgreSQL server (scripts/postgres.sh). */

describe('PostgreSQL feature store (a real server)', () => {
  before(ensurePostgres);
  featureStoreContract(() => PostgresFeatureStore.open(PG_URL));

  otherLayoutFeatureTableContract(async () => {
    const schema = testSchema(uniquePrefix('fs-layout'));
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
      types: { text: 'TEXT', double: 'DOUBLE PRECISION' },
      open: () => PostgresFeatureStore.open(schema.url),
      drop: schema.drop,
    };
  });
});
