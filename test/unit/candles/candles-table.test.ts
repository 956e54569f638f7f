import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../../src/candles/store/candles-table.ts';
import { candlesTableContract } from '../../support/candles-table-contract.ts';
import { sqlOutsideTheStore } from '../../support/duckdb-file.ts';
import { scratchDir } from '../../support/scratch.ts';

/** The candles table on DuckDB (the embedded default); the same contract runs on PostgreSQL in the integration tests. */
describe('DuckDB candles table', () => {
  let n = 0;
  const fresh = (open: typeof openCandlesTable) => async () => {
    const dir = scratchDir('ct-');
    const at = join(dir, `candles-${++n}.duckdb`);
    return {
      sql: (statement: string) => sqlOutsideTheStore(at, statement),
      open: () => open(`duckdb:${at}`),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  };
  candlesTableContract(fresh(openCandlesTable));
  describe('the first emissions (the same columns)', () => {
    candlesTableContract(fresh(openCandleFirstEmissionsTable), 'candle_first_emissions_v1');
  });
});
