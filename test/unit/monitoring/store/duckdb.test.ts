import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openErrorsStore } from '../../../../src/monitoring/store/open.ts';
import { sqlOutsideTheStore } from '../../../support/duckdb-file.ts';
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
      sql: (statement: string) => sqlOutsideTheStore(at, statement),
      open: () => openErrorsStore(`duckdb:${at}`),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});
