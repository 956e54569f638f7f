import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBaseScore, XgbModel, XgbModelError } from '../../../src/inference/xgboost-model.ts';

/**
 * Tiny hand-written XGBoost JSON models (the layout `save_model('model.json')` writes in XGBoost 3.x): the split
 * rule, missing values, float32 comparisons at the boundary, the float32 sum, base_score in both string formats,
 * and the models the runtime refuses. Parity with native XGBoost on real data: test/integration/xgboost-parity.
 */

interface TreeSpec {
  left: number[];
  right: number[];
  split: number[];
  cond: number[];
  defaultLeft?: number[];
  baseWeights?: number[];
}

function tree(s: TreeSpec, id = 0) {
  const n = s.left.length;
  return {
    base_weights: s.baseWeights ?? s.cond,
    categories: [],
    categories_nodes: [],
    categories_segments: [],
    categories_sizes: [],
    default_left: s.defaultLeft ?? new Array(n).fill(0),
    id,
    left_children: s.left,
    loss_changes: new Array(n).fill(0),
    parents: s.left.map(() => 2147483647),
    right_children: s.right,
    split_conditions: s.cond,
    split_indices: s.split,
    split_type: new Array(n).fill(0),
    sum_hessian: new Array(n).fill(1),
    tree_param: { num_deleted: '0', num_feature: '2', num_nodes: String(n), size_leaf_vector: '1' },
  };
}

/** One split on feature `f` at `c`: left leaf `a`, right leaf `b`. */
const stump = (f: number, c: number, a: number, b: number, defaultLeft = 0) =>
  tree({
    left: [1, -1, -1],
    right: [2, -1, -1],
    split: [f, 0, 0],
    cond: [c, a, b],
    defaultLeft: [defaultLeft, 0, 0],
  });

// biome-ignore lint/suspicious/noExplicitAny: hand-built JSON documents, edited freely by the tests
type Doc = any;

function model(trees: object[], o: { base?: unknown; objective?: string; numFeature?: number } = {}): Doc {
  return {
    learner: {
      attributes: {},
      feature_names: [],
      feature_types: [],
      gradient_booster: {
        model: {
          cats: { enc: [], feature_segments: [], sorted_idx: [] },
          gbtree_model_param: { num_parallel_tree: '1', num_trees: String(trees.length) },
          iteration_indptr: trees.map((_, i) => i).concat(trees.length),
          tree_info: trees.map(() => 0),
          trees,
        },
        name: 'gbtree',
      },
      learner_model_param: {
        base_score: o.base ?? '[0E0]',
        boost_from_average: '1',
        num_class: '0',
        num_feature: String(o.numFeature ?? 2),
        num_target: '1',
      },
      objective: { name: o.objective ?? 'reg:squarederror', reg_loss_param: { scale_pos_weight: '1' } },
    },
    version: [3, 2, 0],
  };
}

const refuses = (doc: Doc, pattern: RegExp) =>
  assert.throws(
    () => XgbModel.fromJson(doc),
    (e: unknown) => e instanceof XgbModelError && pattern.test(e.message),
  );

describe('XgbModel: the split rule', () => {
  it('goes left when x < condition, right when x ≥ condition (equal goes right)', () => {
    const m = XgbModel.fromJson(JSON.stringify(model([stump(1, 0.5, -1, 2)])));
    assert.equal(m.numFeatures, 2);
    assert.equal(m.predict([100, 0.25]), -1);
    assert.equal(m.predict([100, 0.5]), 2);
    assert.equal(m.predict([-100, 0.75]), 2);
    assert.equal(m.predict([0, -Infinity]), -1);
    assert.equal(m.predict([0, Infinity]), 2);
  });

  it('follows right_children as written, not left + 1, through a deeper tree', () => {
    // Node 0: f0 < 0 → node 3 else node 1; node 3: f1 < 10 → node 4 (leaf 1) else node 2 (leaf 2); node 1 leaf 3.
    const t = tree({
      left: [3, -1, -1, 4, -1],
      right: [1, -1, -1, 2, -1],
      split: [0, 0, 0, 1, 0],
      cond: [0, 3, 2, 10, 1],
    });
    const m = XgbModel.fromJson(model([t]));
    assert.equal(m.predict([-1, 5]), 1);
    assert.equal(m.predict([-1, 10]), 2);
    assert.equal(m.predict([0, 5]), 3);
  });

  it('takes a leaf from split_conditions (what XGBoost predicts), not from base_weights', () => {
    // reg:absoluteerror and reg:quantileerror refit their leaves; only split_conditions holds the refitted value.
    const t = tree({ left: [1, -1, -1], right: [2, -1, -1], split: [0, 0, 0], cond: [0, -1.5, 2.5] });
    t.base_weights = [0, -9, 9];
    const m = XgbModel.fromJson(model([t], { objective: 'reg:absoluteerror' }));
    assert.equal(m.predict([-1, 0]), -1.5);
    assert.equal(m.predict([1, 0]), 2.5);
  });
});

describe('XgbModel: missing values', () => {
  it('sends NaN along default_left, in both directions', () => {
    const left = XgbModel.fromJson(model([stump(0, 0.5, 1, 2, 1)]));
    const right = XgbModel.fromJson(model([stump(0, 0.5, 1, 2, 0)]));
    assert.equal(left.predict([Number.NaN, 0]), 1);
    assert.equal(right.predict([Number.NaN, 0]), 2);
    assert.equal(left.predict(new Float32Array([Number.NaN, 0])), 1);
    assert.equal(right.predict(new Float32Array([Number.NaN, 0])), 2);
    // A missing value on a feature the tree does not test changes nothing.
    assert.equal(right.predict([0, Number.NaN]), 1);
    const X = new Float32Array([Number.NaN, 0, 0, Number.NaN, 1, 1]);
    assert.deepEqual(Array.from(left.predictBatch(X, 3)), [1, 1, 2]);
    assert.deepEqual(Array.from(right.predictBatch(X, 3)), [2, 1, 2]);
  });
});

describe('XgbModel: float32 arithmetic', () => {
  it('compares the input and the condition as float32 at the boundary', () => {
    // JSON 0.1 is the float32 0.100000001490116…; the double 0.1 is below it, but as float32 it is equal: right.
    const m = XgbModel.fromJson(model([stump(0, 0.1, -1, 1)]));
    const c = Math.fround(0.1);
    assert.ok(0.1 < c);
    assert.equal(m.predict([0.1, 0]), 1);
    assert.equal(m.predict(new Float32Array([0.1, 0])), 1);
    assert.equal(m.predict([c, 0]), 1);
    // A double strictly between the float32 below c and c rounds up to c: right.
    const below = new Float32Array([c]);
    new Uint32Array(below.buffer)[0]! -= 1;
    assert.equal(m.predict([below[0]!, 0]), -1);
    assert.equal(m.predict([(below[0]! + c) / 2 + 1e-12, 0]), 1);
    // A condition written with more digits than a float32 holds is rounded to float32 too.
    const wide = XgbModel.fromJson(model([stump(0, 0.30000000000000004, -1, 1)]));
    assert.equal(wide.predict([0.3, 0]), 1);
    assert.equal(wide.predict([Math.fround(0.3), 0]), 1);
  });

  it('sums the trees in float32, starting from the base margin', () => {
    // 1 + 1e-8 is 1 in float32 (XGBoost's prediction buffer is float): the second tree is lost, as in XGBoost.
    const m = XgbModel.fromJson(model([stump(0, 0, 1, 1), stump(0, 0, 1e-8, 1e-8)]));
    assert.equal(m.predict([0, 0]), 1);
    const b = XgbModel.fromJson(model([stump(0, 0, 0.1, 0.1), stump(0, 0, 0.2, 0.2)], { base: '[3E-1]' }));
    assert.equal(
      b.predict([0, 0]),
      Math.fround(Math.fround(Math.fround(0.3) + Math.fround(0.1)) + Math.fround(0.2)),
    );
    assert.notEqual(b.predict([0, 0]), 0.3 + 0.1 + 0.2);
  });
});

describe('XgbModel: base_score', () => {
  it('reads the 3.1+ vector format and the older scalar format', () => {
    assert.deepEqual(parseBaseScore('[-2.137993E-2]'), [Math.fround(-2.137993e-2)]);
    assert.deepEqual(parseBaseScore('5E-1'), [0.5]);
    assert.deepEqual(parseBaseScore(' [1.2E-1] '), [Math.fround(0.12)]);
    assert.deepEqual(parseBaseScore(0.25), [0.25]);
    assert.deepEqual(parseBaseScore('[1E0,2E0]'), [1, 2]);
    for (const bad of ['abc', '[]', '', '[1E0,]', null, 'NaN'])
      assert.throws(() => parseBaseScore(bad), XgbModelError, String(bad));
  });

  it('starts every prediction at base_score (identity link: the margin is base_score)', () => {
    for (const base of ['[1.2E-1]', '1.2E-1', 0.12]) {
      const m = XgbModel.fromJson(model([stump(0, 0.5, -1, 2)], { base }));
      assert.equal(m.baseScore, Math.fround(0.12));
      assert.equal(m.predict([0, 0]), Math.fround(Math.fround(0.12) - 1));
    }
    const none = XgbModel.fromJson(model([], { base: '[-2.5E0]', objective: 'reg:pseudohubererror' }));
    assert.equal(none.predict([1, 1]), -2.5);
    assert.equal(none.numTrees, 0);
  });
});

describe('XgbModel: shapes', () => {
  it('exposes the feature count and the rounds, and throws on a row of the wrong length', () => {
    const m = XgbModel.fromJson(model([stump(0, 0, 1, 2), stump(1, 0, 1, 2)], { numFeature: 3 }));
    assert.equal(m.numFeatures, 3);
    assert.equal(m.numIterations, 2);
    assert.equal(m.objective, 'reg:squarederror');
    assert.throws(() => m.predict([1, 2]), /3 features, got a row of 2/);
    assert.throws(() => m.predict(new Float32Array(4)), /3 features/);
    assert.throws(() => m.predictBatch(new Float32Array(7), 2), /3 features/);
    assert.deepEqual(Array.from(m.predictBatch(new Float32Array(0), 0)), []);
  });
});

describe('XgbModel: unsupported or malformed models are refused by name', () => {
  it('refuses boosters other than gbtree', () => {
    const dart = model([stump(0, 0, 1, 2)]);
    dart.learner.gradient_booster = { name: 'dart', gbtree: dart.learner.gradient_booster, weight_drop: [1] };
    refuses(dart, /dart/);
    const linear = model([]);
    linear.learner.gradient_booster = { name: 'gblinear', model: { weights: [0, 0, 0] } };
    refuses(linear, /gblinear/);
  });

  it('refuses multi-class and multi-output models', () => {
    const mc = model([stump(0, 0, 1, 2)]);
    mc.learner.learner_model_param.num_class = '3';
    refuses(mc, /multi-class/);
    const mt = model([stump(0, 0, 1, 2)]);
    mt.learner.learner_model_param.num_target = '2';
    refuses(mt, /multi-output/);
    refuses(model([stump(0, 0, 1, 2)], { base: '[1E-1,9E-1]' }), /multi-output/);
    const groups = model([stump(0, 0, 1, 2), stump(0, 0, 1, 2)]);
    groups.learner.gradient_booster.model.tree_info = [0, 1];
    refuses(groups, /output groups/);
    const vec = model([stump(0, 0, 1, 2)]);
    vec.learner.gradient_booster.model.trees[0].tree_param.size_leaf_vector = '2';
    refuses(vec, /multi-output trees/);
  });

  it('refuses categorical splits', () => {
    const st = model([stump(0, 0, 1, 2)]);
    st.learner.gradient_booster.model.trees[0].split_type = [1, 0, 0];
    refuses(st, /categorical splits/);
    const cats = model([stump(0, 0, 1, 2)]);
    Object.assign(cats.learner.gradient_booster.model.trees[0], {
      categories: [1, 3],
      categories_nodes: [0],
      categories_segments: [0],
      categories_sizes: [2],
    });
    refuses(cats, /categorical splits/);
    const types = model([stump(0, 0, 1, 2)]);
    types.learner.feature_types = ['q', 'c'];
    refuses(types, /categorical features/);
    const enc = model([stump(0, 0, 1, 2)]);
    enc.learner.gradient_booster.model.cats.enc = [['a', 'b']];
    refuses(enc, /categorical features/);
  });

  it('refuses objectives whose prediction is not the margin', () => {
    refuses(model([stump(0, 0, 1, 2)], { objective: 'binary:logistic' }), /objective "binary:logistic"/);
    refuses(model([stump(0, 0, 1, 2)], { objective: 'count:poisson' }), /objective "count:poisson"/);
  });

  it('refuses documents that are not well-formed models', () => {
    assert.throws(() => XgbModel.fromJson('{not json'), XgbModelError);
    assert.throws(() => XgbModel.fromJson({}), /learner is missing/);
    refuses(model([stump(2, 0, 1, 2)]), /splits on feature 2 of 2/);
    refuses(
      model([tree({ left: [1, -1], right: [0, -1], split: [0, 0], cond: [0, 1] })]),
      /children 1 and 0/,
    );
    refuses(
      model([tree({ left: [1, 2, -1], right: [2, 2, -1], split: [0, 0, 0], cond: [0, 0, 1] })]),
      /reached twice|children 2 and 2/,
    );
    const count = model([stump(0, 0, 1, 2)]);
    count.learner.gradient_booster.model.gbtree_model_param.num_trees = '2';
    refuses(count, /num_trees is 2/);
    const indptr = model([stump(0, 0, 1, 2)]);
    indptr.learner.gradient_booster.model.iteration_indptr = [0, 2];
    refuses(indptr, /iteration_indptr/);
    const short = model([stump(0, 0, 1, 2)]);
    short.learner.gradient_booster.model.trees[0].default_left = [0];
    refuses(short, /3 nodes but 1 dleft/);
  });
});

describe('XgbModel: the compiled trees = the node-table walk', () => {
  /** A random tree (breadth-first node ids, as XGBoost numbers them) over `k` features, conditions from `pool`. */
  const randomTree = (rnd: () => number, k: number, pool: number[], depth: number) => {
    const left: number[] = [];
    const right: number[] = [];
    const split: number[] = [];
    const cond: number[] = [];
    const dl: number[] = [];
    const queue: number[] = [0];
    left.push(-1);
    right.push(-1);
    split.push(0);
    cond.push(0);
    dl.push(0);
    const level = [0];
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (level[n]! < depth && rnd() < 0.8) {
        const l = left.length;
        for (let c = 0; c < 2; c++) {
          left.push(-1);
          right.push(-1);
          split.push(0);
          cond.push(0);
          dl.push(0);
          level.push(level[n]! + 1);
          queue.push(l + c);
        }
        left[n] = l;
        right[n] = l + 1;
        split[n] = Math.floor(rnd() * k);
        cond[n] = pool[Math.floor(rnd() * pool.length)]!;
        dl[n] = rnd() < 0.5 ? 1 : 0;
      } else cond[n] = Math.fround((rnd() - 0.5) * 10);
    }
    return tree({ left, right, split, cond, defaultLeft: dl });
  };

  it('gives the same float32 sums, bit for bit, NaN and boundary values included (random models)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pool = [-0, 0, 1, -1, 0.1, Math.fround(0.1), 1e-30, -3.5, 1e30, 2.5, Math.fround(1 / 3)];
    for (let m = 0; m < 30; m++) {
      const k = 1 + Math.floor(rnd() * 5);
      const trees = Array.from({ length: 1 + Math.floor(rnd() * 25) }, (_, i) => ({
        ...randomTree(rnd, k, pool, 1 + Math.floor(rnd() * 6)),
        id: i,
      }));
      const doc = model(trees, { numFeature: k, base: `[${Math.fround(rnd() - 0.5)}]` });
      for (const t of doc.learner.gradient_booster.model.trees) t.tree_param.num_feature = String(k);
      const xgb = XgbModel.fromJson(doc);
      const rows = 200;
      const X = new Float32Array(rows * k);
      for (let i = 0; i < X.length; i++) {
        const u = rnd();
        X[i] = u < 0.15 ? Number.NaN : u < 0.5 ? pool[Math.floor(rnd() * pool.length)]! : (rnd() - 0.5) * 8;
      }
      const batch = xgb.predictBatch(X, rows);
      for (let r = 0; r < rows; r++) {
        const want = xgb.evaluateTable(X, r * k);
        assert.ok(Object.is(batch[r], want), `model ${m} row ${r}: ${batch[r]} ≠ ${want}`);
        assert.ok(Object.is(xgb.predict(X.subarray(r * k, (r + 1) * k)), want));
      }
    }
  });
});
