import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { XgbModel } from '../../src/inference/xgboost-model.ts';
import { trainerPython } from '../../src/training/python-trainer.ts';
import { datasetFromCandles } from '../../src/training/sources.ts';
import { SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The TypeScript XGBoost runtime against native XGBoost (the trainer's Python) on 10,000 rows of real features
 * (a week of Binance BTC and ETH minutes, through the training pipeline's own feature code), with a few hundred
 * cells made missing: models of each objective the trainer can choose (pseudo-Huber, absolute, squared error,
 * quantile 0.1) are trained by XGBoost, saved as JSON, loaded back by XGBoost to predict, and by `XgbModel`.
 * The rows also include copies whose value sits exactly on a split condition and one float32 step either side. And
 * the trainer's point model, two models averaged into one (python/cryptocast_trainer/fit.py `average_boosters`).
 * Everything is created in a temp dir; without the trainer's Python the test fails (it cannot check anything).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const BINANCE = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const DATES = ['01', '02', '03', '04', '05', '06', '07'].map((d) => `2022-06-${d}`);
const ROWS = 10_000;
const MISSING = 400;
const TOLERANCE = 1e-5;

/** Trains (mode `train`) or predicts with the saved models, loaded from their JSON (mode `predict`). */
const SCRIPT = `
import json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import xgboost as xgb

mode, d = sys.argv[1], sys.argv[2]
k = json.load(open(os.path.join(d, "shape.json")))["k"]
MODELS = {
    "pseudohuber": {"objective": "reg:pseudohubererror", "huber_slope": 2.0},
    "absolute": {"objective": "reg:absoluteerror"},
    "squared": {"objective": "reg:squarederror"},
    "p10": {"objective": "reg:quantileerror", "quantile_alpha": 0.1},
}
NAMES = list(MODELS) + ["averaged"]
if mode == "train":
    X = np.fromfile(os.path.join(d, "train.f32"), dtype="<f4").reshape(-1, k)
    y = np.fromfile(os.path.join(d, "y.f64"), dtype="<f8")
    dtrain = xgb.DMatrix(X, label=y, nthread=1)
    for name, obj in MODELS.items():
        params = {**obj, "tree_method": "hist", "max_depth": 6, "eta": 0.1, "min_child_weight": 5.0,
                  "subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1, "seed": 7}
        b = xgb.train(params, dtrain, num_boost_round=110)
        # As the trainer saves its models: trimmed to a best iteration (here 100 rounds).
        b[:100].save_model(os.path.join(d, name + ".json"))
    # The trainer's point model: the mean of models fitted on different windows, merged into one (fit.py).
    from cryptocast_trainer.fit import average_boosters
    parts = [xgb.Booster(model_file=os.path.join(d, n + ".json")) for n in ("pseudohuber", "absolute")]
    average_boosters(xgb, parts).save_model(os.path.join(d, "averaged.json"))
    print(json.dumps({"xgboost": xgb.__version__}))
else:
    X = np.fromfile(os.path.join(d, "eval.f32"), dtype="<f4").reshape(-1, k)
    out = {}
    for name in NAMES:
        b = xgb.Booster(model_file=os.path.join(d, name + ".json"))
        b.set_param({"nthread": 1})
        p = b.predict(xgb.DMatrix(X, nthread=1))
        q = b.inplace_predict(X)
        out[name] = float(np.max(np.abs(p.astype(np.float64) - q.astype(np.float64))))
        p.astype("<f4").tofile(os.path.join(d, name + ".pred.f32"))
    print(json.dumps(out))
`;

/** A deterministic generator (mulberry32), so the missing cells are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The float32 next to `x` towards +∞ (up) or -∞. */
function nextFloat32(x: number, up: boolean): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (x === 0) {
    u[0] = 1;
    return up ? f[0]! : -f[0]!;
  }
  u[0] = u[0]! + (x > 0 === up ? 1 : -1);
  return f[0]!;
}

const MODELS = ['pseudohuber', 'absolute', 'squared', 'p10', 'averaged'] as const;

describe('XgbModel: parity with native XGBoost on real features', () => {
  const dir = scratchDir('cc-xgb-parity-');
  let py: string;
  let k = 0;
  let X: Float32Array;
  let evalX: Float32Array;
  let evalRows = 0;
  let missingCells = 0;
  const models = new Map<string, XgbModel>();
  const native = new Map<string, Float32Array>();
  let inplaceVsDmatrix: Record<string, number> = {};

  before(async () => {
    py = trainerPython(); // throws, failing the test, when the trainer's Python is not installed
    const candles = join(dir, 'candles');
    for (const s of ['BTCUSDT', 'ETHUSDT']) {
      mkdirSync(join(candles, s), { recursive: true });
      for (const d of DATES)
        symlinkSync(join(BINANCE, s, `${s}-1m-${d}.zip`), join(candles, s, `${s}-1m-${d}.zip`));
    }
    const { dataset: ds } = await datasetFromCandles(candles, { horizonMs: 300_000 });
    assert.ok(ds.n >= ROWS, `only ${ds.n} rows`);
    k = ds.columns.length;
    // 10,000 rows spread over the week (both pairs), in time order.
    const step = ds.n / ROWS;
    X = new Float32Array(ROWS * k);
    const y = new Float64Array(ROWS);
    for (let i = 0; i < ROWS; i++) {
      const r = Math.floor(i * step);
      X.set(ds.X.subarray(r * k, (r + 1) * k), i * k);
      y[i] = ds.y[r]!;
    }
    // Missing cells: half of them already in the training rows (the trees learn a default direction from them),
    // the other half only when predicting (the default direction of a split that never saw a missing value).
    const rand = rng(20220601);
    const train = X.slice();
    for (let m = 0; m < MISSING; m++) {
      const cell = Math.floor(rand() * X.length);
      if (!Number.isNaN(X[cell]!)) missingCells++;
      X[cell] = Number.NaN;
      if (m % 2 === 0) train[cell] = Number.NaN;
    }
    writeFileSync(join(dir, 'shape.json'), JSON.stringify({ k }));
    writeFileSync(join(dir, 'train.f32'), new Uint8Array(train.buffer));
    writeFileSync(join(dir, 'y.f64'), new Uint8Array(y.buffer));
    writeFileSync(join(dir, 'parity.py'), SCRIPT);
    const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONPATH: join(ROOT, 'python') };
    execFileSync(py, [join(dir, 'parity.py'), 'train', dir], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    for (const name of MODELS)
      models.set(name, XgbModel.fromJson(readFileSync(join(dir, `${name}.json`), 'utf8')));

    // Boundary rows: a row whose value on a split's feature is the split condition itself, and the float32 just
    // below and just above it, for 100 splits of the squared-error model's trees.
    const doc = JSON.parse(readFileSync(join(dir, 'squared.json'), 'utf8'));
    const splits: [number, number][] = [];
    for (const t of doc.learner.gradient_booster.model.trees)
      for (let n = 0; n < t.left_children.length && splits.length < 100; n++)
        if (t.left_children[n] !== -1) splits.push([t.split_indices[n], t.split_conditions[n]]);
    const extra: number[] = [];
    for (const [i, [f, c]] of splits.entries())
      for (const v of [c, nextFloat32(c, false), nextFloat32(c, true)]) {
        const row = Array.from(X.subarray(i * 37 * k, (i * 37 + 1) * k));
        row[f] = v;
        extra.push(...row);
      }
    evalRows = ROWS + extra.length / k;
    evalX = new Float32Array(evalRows * k);
    evalX.set(X);
    evalX.set(extra, X.length);
    writeFileSync(join(dir, 'eval.f32'), new Uint8Array(evalX.buffer));
    const out = execFileSync(py, [join(dir, 'parity.py'), 'predict', dir], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    inplaceVsDmatrix = JSON.parse(out.toString());
    for (const name of MODELS) {
      const raw = readFileSync(join(dir, `${name}.pred.f32`));
      native.set(name, new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
    }
  });

  it('the rows exercise missing values and both default directions', () => {
    assert.ok(missingCells >= MISSING * 0.9, `${missingCells} missing cells`);
    assert.equal(evalRows, ROWS + 300);
    const doc = JSON.parse(readFileSync(join(dir, 'pseudohuber.json'), 'utf8'));
    let left = 0;
    let right = 0;
    for (const t of doc.learner.gradient_booster.model.trees)
      for (let n = 0; n < t.left_children.length; n++)
        if (t.left_children[n] !== -1) t.default_left[n] ? left++ : right++;
    assert.ok(left > 0 && right > 0, `default_left: ${left} left, ${right} right`);
  });

  for (const name of MODELS)
    it(`${name}: max |TS − native| ≤ ${TOLERANCE} on ${ROWS} rows + boundary rows`, () => {
      const m = models.get(name)!;
      assert.equal(m.numFeatures, k);
      assert.equal(m.numIterations, name === 'averaged' ? 200 : 100); // two parts' trees, each its own round
      const ts = m.predictBatch(evalX, evalRows);
      const nat = native.get(name)!;
      assert.equal(nat.length, evalRows);
      let max = 0;
      let exact = 0;
      for (let i = 0; i < evalRows; i++) {
        const d = Math.abs(ts[i]! - nat[i]!);
        if (d > max) max = d;
        if (d === 0) exact++;
      }
      // Single rows (number[] as well as Float32Array) take the same path as the batch.
      for (const i of [0, 1, 4_999, ROWS - 1, evalRows - 1]) {
        const row = evalX.subarray(i * k, (i + 1) * k);
        assert.equal(m.predict(row), ts[i]);
        assert.equal(m.predict(Array.from(row)), ts[i]);
      }
      process.stdout.write(
        `# ${name} (${m.objective}, ${m.numTrees} trees): max |TS − native| = ${max}, ${exact}/${evalRows} identical; ` +
          `native DMatrix vs inplace_predict: ${inplaceVsDmatrix[name]}\n`,
      );
      assert.ok(max <= TOLERANCE, `${name}: max difference ${max}`);
    });

  it("averaged (the trainer's point model across windows): the mean of its two parts, natively and here", () => {
    const [a, b, mean] = [native.get('pseudohuber')!, native.get('absolute')!, native.get('averaged')!];
    const ts = models.get('averaged')!.predictBatch(evalX, evalRows);
    let max = 0;
    for (let i = 0; i < evalRows; i++) {
      const want = (a[i]! + b[i]!) / 2;
      max = Math.max(max, Math.abs(mean[i]! - want), Math.abs(ts[i]! - want));
    }
    assert.ok(max <= 1e-4, `max |averaged − mean of parts| = ${max}`);
  });
});
