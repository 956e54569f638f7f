import { join } from 'node:path';
import { describe } from 'node:test';
import { openErrorsStore } from '../../../../src/monitoring/store/open.ts';
import { errorsStoreContract } from '../../../support/errors-store-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('DuckDB errors store', () => {
  const file = join(scratchDir('es-'), 'errors.duckdb');
  errorsStoreContract(() => openErrorsStore(`duckdb:${file}`));
});
