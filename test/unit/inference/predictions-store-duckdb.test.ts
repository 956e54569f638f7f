import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openPredictionsStore } from '../../../src/inference/store/open.ts';
import { predictionsStoreContract } from '../../support/predictions-store-contract.ts';

describe('DuckDB predictions store', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ps-')), 'predictions.duckdb');
  predictionsStoreContract(() => openPredictionsStore(`duckdb:${file}`));
});
