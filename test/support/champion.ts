import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainerPython } from '../../src/training/python-trainer.ts';
import type { ModelCard, ModelRegistry, NewModelCard } from '../../src/training/registry/registry.ts';
import { scratchDir } from './scratch.ts';

/**
 * Models for predictor tests: tiny hand-written XGBoost JSON documents (the layout XGBoost 3.x's `save_model`
 * writes; evaluated by XgbModel like any other), real ones trained by the trainer's Python, and registering a
 * version (optionally as champion) in a registry.
 */

/** One split on input `f` at `c`: left leaf `a` (x < c or missing), right leaf `b`. */
export interface Stump {
  f: number;
  c: number;
  a: number;
  b: number;
}

export function stumpModel(
  numFeature: number,
  stumps: readonly Stump[],
  o: { base?: number; objective?: string } = {},
): string {
  const trees = stumps.map((s, id) => ({
    base_weights: [s.c, s.a, s.b],
    categories: [],
    categories_nodes: [],
    categories_segments: [],
    categories_sizes: [],
    default_left: [1, 0, 0],
    id,
    left_children: [1, -1, -1],
    loss_changes: [0, 0, 0],
    parents: [2147483647, 0, 0],
    right_children: [2, -1, -1],
    split_conditions: [s.c, s.a, s.b],
    split_indices: [s.f, 0, 0],
    split_type: [0, 0, 0],
    sum_hessian: [1, 1, 1],
    tree_param: { num_deleted: '0', num_feature: String(numFeature), num_nodes: '3', size_leaf_vector: '1' },
  }));
  return JSON.stringify({
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
        base_score: `[${o.base ?? 0}]`,
        boost_from_average: '1',
        num_class: '0',
        num_feature: String(numFeature),
        num_target: '1',
      },
      objective: { name: o.objective ?? 'reg:squarederror', reg_loss_param: { scale_pos_weight: '1' } },
    },
    version: [3, 2, 0],
  });
}

export interface ModelFiles {
  model: string;
  p10: string;
  p90: string;
}

/** Registers a version with the three model files (JSON text) and, if `champion`, points the alias at it. */
export async function registerModel(
  registry: ModelRegistry,
  name: string,
  columns: readonly string[],
  files: ModelFiles,
  o: { champion?: boolean; horizonMs?: number } = {},
): Promise<ModelCard> {
  const dir = scratchDir('cc-champion-');
  writeFileSync(join(dir, 'model.json'), files.model);
  writeFileSync(join(dir, 'p10.json'), files.p10);
  writeFileSync(join(dir, 'p90.json'), files.p90);
  const card: NewModelCard = {
    name,
    codeVersion: 'test',
    horizonMs: o.horizonMs ?? 300_000,
    target: 'log_return_bps',
    featureSets: [{ name: 'technical', version: 1 }],
    columns: [...columns],
    pairs: ['BTC/USDT', 'ETH/USDT'],
    trainingWindow: { from: 1, to: 2 },
    datasetFingerprint: 'sha256:test',
    params: {},
    folds: [],
    summary: {},
    artifacts: ['model.json', 'p10.json', 'p90.json'],
  };
  const registered = await registry.register(card, dir);
  if (o.champion ?? true) await registry.setAlias(name, 'champion', registered.version, 'test');
  return registered;
}

/**
 * Trains the point model (pseudo-Huber) and the p10 / p90 quantile models with the trainer's XGBoost on rows `X`
 * (null = missing) and targets `y`; returns the three JSON documents.
 */
export function trainModels(
  X: readonly (readonly (number | null)[])[],
  y: readonly number[],
  rounds = 40,
): ModelFiles {
  const dir = scratchDir('cc-train-');
  const k = X[0]!.length;
  const flat = new Float32Array(X.length * k);
  X.forEach((row, i) => {
    row.forEach((v, j) => {
      flat[i * k + j] = v ?? Number.NaN;
    });
  });
  writeFileSync(join(dir, 'X.f32'), Buffer.from(flat.buffer));
  writeFileSync(join(dir, 'y.f64'), Buffer.from(new Float64Array(y).buffer));
  const script = `
import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import xgboost as xgb
d, k, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X = np.fromfile(os.path.join(d, "X.f32"), dtype="<f4").reshape(-1, k)
y = np.fromfile(os.path.join(d, "y.f64"), dtype="<f8")
dtrain = xgb.DMatrix(X, label=y, nthread=1)
base = {"tree_method": "hist", "max_depth": 4, "eta": 0.1, "nthread": 1, "seed": 7}
for name, obj in {
    "model": {"objective": "reg:pseudohubererror", "huber_slope": 2.0},
    "p10": {"objective": "reg:quantileerror", "quantile_alpha": 0.1},
    "p90": {"objective": "reg:quantileerror", "quantile_alpha": 0.9},
}.items():
    xgb.train({**base, **obj}, dtrain, num_boost_round=rounds).save_model(os.path.join(d, name + ".json"))
`;
  execFileSync(trainerPython(), ['-c', script, dir, String(k), String(rounds)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  const read = (f: string) => readFileSync(join(dir, `${f}.json`), 'utf8');
  return { model: read('model'), p10: read('p10'), p90: read('p90') };
}

/** Native XGBoost's predictions (the trainer's Python) of the three models on rows `X` (null = missing). */
export function nativePredict(
  files: ModelFiles,
  X: readonly (readonly (number | null)[])[],
): { model: Float32Array; p10: Float32Array; p90: Float32Array } {
  const dir = scratchDir('cc-native-');
  const k = X[0]!.length;
  const flat = new Float32Array(X.length * k);
  X.forEach((row, i) => {
    row.forEach((v, j) => {
      flat[i * k + j] = v ?? Number.NaN;
    });
  });
  writeFileSync(join(dir, 'X.f32'), Buffer.from(flat.buffer));
  for (const f of ['model', 'p10', 'p90'] as const) writeFileSync(join(dir, `${f}.json`), files[f]);
  const script = `
import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import xgboost as xgb
d, k = sys.argv[1], int(sys.argv[2])
X = np.fromfile(os.path.join(d, "X.f32"), dtype="<f4").reshape(-1, k)
for name in ("model", "p10", "p90"):
    b = xgb.Booster(model_file=os.path.join(d, name + ".json"))
    b.set_param({"nthread": 1})
    b.predict(xgb.DMatrix(X, nthread=1)).astype("<f4").tofile(os.path.join(d, name + ".pred.f32"))
`;
  execFileSync(trainerPython(), ['-c', script, dir, String(k)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  const read = (f: string) => {
    const b = readFileSync(join(dir, `${f}.pred.f32`));
    return new Float32Array(Uint8Array.from(b).buffer);
  };
  return { model: read('model'), p10: read('p10'), p90: read('p90') };
}
