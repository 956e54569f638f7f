import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { openErrorsStore } from '../../../../src/monitoring/store/open.ts';
import { errorsStoreContract, otherVersionTableContract } from '../../../support/errors-store-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('DuckDB errors store', () => {
  const file = join(scratchDir('es-'), 'errors.duckdb');
  errorsStoreContract(() => openErrorsStore(`duckdb:${file}`));

  let n = 0;
  otherVersionTableContract(async () => {
    const dir = scratchDir('es-layout-');
    const at = join(dir, `errors-${++n}.duckdb`);
    return {
      // Made and closed here, outside openDuckDb, as another version's run would have left it.
      async sql(statement: string) {
        const db = await DuckDBInstance.create(at);
        const c = await db.connect();
        try {
          return (await c.runAndReadAll(statement)).getRowObjects();
        } finally {
          c.closeSync();
          db.closeSync();
        }
      },
      open: () => openErrorsStore(`duckdb:${at}`),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});
