import { before, describe } from 'node:test';
import pg from 'pg';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../src/candles/store/candles-table.ts';
import { candlesTableContract } from '../support/candles-table-contract.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { ensurePostgres, testSchema } from '../support/postgres.ts';

/** The same contract as the DuckDB candles table, against a real PostgreSQL server (scripts/postgres.sh). */
describe('PostgreSQL candles table (a real server)', () => {
  before(ensurePostgres);
  // Each test in a schema of its own, where an earlier version's table can be made.
  const fresh = (open: typeof openCandlesTable) => async () => {
    const schema = testSchema(uniquePrefix('ct'));
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
      open: () => open(schema.url),
      drop: schema.drop,
    };
  };
  candlesTableContract(fresh(openCandlesTable));
  describe('the first emissions (the same columns)', () => {
    candlesTableContract(fresh(openCandleFirstEmissionsTable), 'candle_first_emissions_v1');
  });
});
