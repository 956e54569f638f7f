import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { DuckDbFeatureStore } from '../../../../src/features/store/duckdb.ts';
import { featureStoreContract } from '../../../support/feature-store-contract.ts';

describe('DuckDB feature store (a real DuckDB file)', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'fs-')), 'features.duckdb');
  featureStoreContract(() => DuckDbFeatureStore.open(file));
});
