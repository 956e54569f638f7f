import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FEATURE_COLUMNS, FEATURE_SET } from '../../../src/features/technical.ts';
import {
  type ColumnStats,
  columnStats,
  fillMatrix,
  fillRow,
  imputationPlan,
} from '../../../src/inference/imputation.ts';
import { servingModel } from '../../../src/inference/model-holder.ts';
import type { ModelCard } from '../../../src/training/registry/registry.ts';
import { stumpModel } from '../../support/champion.ts';
import { featureVector } from '../../support/factories.ts';

const NaN_ = Number.NaN;

describe('imputation: a value the model never saw missing is filled with its training mean', () => {
  it('plans a fill only for columns never missing in training, with a finite mean', () => {
    const stats: ColumnStats = {
      a: { mean: 2, missing: 0 },
      b: { mean: 5, missing: 0.1 }, // missing in training: XGBoost learnt where to send it
      c: { mean: null, missing: 1 },
    };
    const plan = imputationPlan({ columns: ['a', 'b', 'c', 'd'], columnStats: stats });
    assert.deepEqual(plan.columns, ['a']);
    assert.deepEqual(
      [...plan.fill].map((v) => (Number.isNaN(v) ? null : v)),
      [2, null, null, null],
    );
    assert.deepEqual(imputationPlan({ columns: ['a'] }).columns, [], 'a card without stats: nothing filled');
  });

  it('fills a row in place and counts per input; present values are left alone', () => {
    const plan = imputationPlan({ columns: ['a', 'b'], columnStats: { a: { mean: 2, missing: 0 } } });
    const counts = new Int32Array(2);
    const row = Float32Array.of(NaN_, NaN_);
    fillRow(plan, row, counts);
    assert.equal(row[0], 2);
    assert.ok(Number.isNaN(row[1]!));
    const present = Float32Array.of(7, 1);
    fillRow(plan, present, counts);
    assert.deepEqual([...present], [7, 1]);
    assert.deepEqual([...counts], [1, 0]);
  });

  it('fills a matrix in a copy (the input is untouched) and counts the rows per column', () => {
    const plan = imputationPlan({ columns: ['a', 'b'], columnStats: { a: { mean: 2, missing: 0 } } });
    const X = Float32Array.of(NaN_, 1, 3, NaN_, NaN_, 2);
    const { X: out, filled } = fillMatrix(plan, X, 3);
    assert.notEqual(out, X);
    assert.deepEqual(
      [...out].map((v) => (Number.isNaN(v) ? null : v)),
      [2, 1, 3, null, 2, 2],
    );
    assert.ok(Number.isNaN(X[0]!), 'the input keeps its missing values');
    assert.deepEqual(filled, { a: 2 });
    const full = Float32Array.of(1, 1);
    assert.equal(fillMatrix(plan, full, 1).X, full, 'nothing to fill: no copy');
  });

  it('records the mean of the present values and the share missing, per column', () => {
    const X = Float32Array.of(1, NaN_, 3, NaN_, 5, 4);
    assert.deepEqual(columnStats(['a', 'b'], X, 3), {
      a: { mean: 3, missing: 0 },
      b: { mean: 4, missing: 2 / 3 },
    });
    assert.deepEqual(columnStats(['a'], Float32Array.of(NaN_), 1), { a: { mean: null, missing: 1 } });
  });

  it('the serving model predicts a missing never-missing column as if it had its training mean', () => {
    // One stump on trades_z_60m: < 0.5 → -3, else +5; XGBoost sends a missing value left (-3).
    const doc = stumpModel(1, [{ f: 0, c: 0.5, a: -3, b: 5 }], { base: 0 });
    const docs = { 'model.json': doc, 'p10.json': doc, 'p90.json': doc };
    const card = (columnStats?: ColumnStats) =>
      ({
        name: 'm',
        version: 1,
        target: 'log_return_bps',
        columns: ['trades_z_60m'],
        featureSets: [{ name: FEATURE_SET.name, version: FEATURE_SET.version }],
        ...(columnStats ? { columnStats } : {}),
      }) as unknown as ModelCard;
    const values = FEATURE_COLUMNS.map((c) => (c === 'trades_z_60m' ? null : 0));
    const missing = featureVector({ windowEnd: 60_000, values });
    const atMean = featureVector({ windowEnd: 60_000, values: values.map((v) => (v === null ? 2 : v)) });

    const filled = servingModel(card({ trades_z_60m: { mean: 2, missing: 0 } }), docs);
    assert.deepEqual(filled.predict(missing), filled.predict(atMean));
    assert.equal(filled.predict(missing).returnBps, 5);

    const sawMissing = servingModel(card({ trades_z_60m: { mean: 2, missing: 0.2 } }), docs);
    assert.equal(
      sawMissing.predict(missing).returnBps,
      -3,
      'missing in training: XGBoost’s learnt default branch',
    );
    assert.equal(servingModel(card(), docs).predict(missing).returnBps, -3, 'an older card: unchanged');
  });
});
