import { join } from 'node:path';
import { describe } from 'node:test';
import { DuckDbFeatureStore } from '../../../../src/features/store/duckdb.ts';
import { featureStoreContract } from '../../../support/feature-store-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('DuckDB feature store (a real DuckDB file)', () => {
  const file = join(scratchDir('fs-'), 'features.duckdb');
  featureStoreContract(() => DuckDbFeatureStore.open(file));
});
