/**
 * Benchmark: the TypeScript XGBoost runtime (src/inference/xgboost-model.ts) against native XGBoost, one thread
 * each, on a model of 300 trees of depth 6 trained here (by the trainer's Python) on a week of real Binance BTC and
 * ETH features: predictions per second for single rows (what the live service does once a minute per pair) and for
 * a batch of 10,000 rows. Native: `inplace_predict` on a 1-row array per call, and on the whole batch.
 * Usage: ./bench/run xgboost-runtime
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XgbModel } from '../src/inference/xgboost-model.ts';
import { trainerPython } from '../src/training/python-trainer.ts';
import { datasetFromCandles } from '../src/training/sources.ts';
import { scratchDir } from '../test/support/scratch.ts';
import { fmt, recordBenchmark } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02');
const DATES = ['01', '02', '03', '04', '05', '06', '07'].map((d) => `2022-06-${d}`);
const ROUNDS = 300;
const BATCH = 10_000;
const SINGLE = 2_000; // native single-row calls timed (each one crosses into C and builds a proxy matrix)

const SCRIPT = `
import json, os, sys, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import xgboost as xgb
mode, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.fromfile(os.path.join(d, "X.f32"), dtype="<f4").reshape(-1, k)
if mode == "train":
    y = np.fromfile(os.path.join(d, "y.f64"), dtype="<f8")
    params = {"objective": "reg:pseudohubererror", "huber_slope": 2.0, "tree_method": "hist", "max_depth": 6,
              "eta": 0.05, "min_child_weight": 5.0, "subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1, "seed": 1}
    xgb.train(params, xgb.DMatrix(X, label=y, nthread=1), num_boost_round=${ROUNDS}).save_model(os.path.join(d, "model.json"))
else:
    b = xgb.Booster(model_file=os.path.join(d, "model.json"))
    b.set_param({"nthread": 1})
    batch = X[:${BATCH}]
    p = b.inplace_predict(batch)
    p.astype("<f4").tofile(os.path.join(d, "native.f32"))
    for i in range(200):
        b.inplace_predict(X[i:i + 1])
    t = time.perf_counter()
    for i in range(${SINGLE}):
        b.inplace_predict(X[i:i + 1])
    single = ${SINGLE} / (time.perf_counter() - t)
    best = 0.0
    for _ in range(7):
        t = time.perf_counter()
        b.inplace_predict(batch)
        best = max(best, len(batch) / (time.perf_counter() - t))
    print(json.dumps({"single": single, "batch": best, "xgboost": xgb.__version__}))
`;

/** Best rate (calls × rows per second) over `reps` timed runs of at least ~0.3 s each. */
function rate(fn: () => number, reps = 5): number {
  fn();
  let best = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 300) n += fn();
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  return best;
}

const py = trainerPython();
const dir = scratchDir('bench-xgb-');
for (const s of ['BTCUSDT', 'ETHUSDT']) {
  mkdirSync(join(dir, 'candles', s), { recursive: true });
  for (const d of DATES)
    symlinkSync(join(DATA, s, `${s}-1m-${d}.zip`), join(dir, 'candles', s, `${s}-1m-${d}.zip`));
}
const { dataset: ds } = await datasetFromCandles(join(dir, 'candles'), { horizonMs: 300_000 });
const k = ds.columns.length;
writeFileSync(join(dir, 'X.f32'), new Uint8Array(ds.X.buffer, ds.X.byteOffset, ds.X.byteLength));
writeFileSync(join(dir, 'y.f64'), new Uint8Array(ds.y.buffer, ds.y.byteOffset, ds.y.byteLength));
writeFileSync(join(dir, 'bench.py'), SCRIPT);
const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
const py_ = (mode: string) =>
  execFileSync(py, [join(dir, 'bench.py'), mode, dir, String(k)], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
process.stdout.write(`training ${ROUNDS} trees of depth 6 on ${fmt(ds.n)} rows × ${k} features…\n`);
py_('train');

const json = readFileSync(join(dir, 'model.json'), 'utf8');
const t0 = performance.now();
const model = XgbModel.fromJson(json);
const loadMs = performance.now() - t0;
const X = ds.X.subarray(0, BATCH * k);

const native = JSON.parse(py_('native').toString()) as { single: number; batch: number; xgboost: string };
const raw = readFileSync(join(dir, 'native.f32'));
const nat = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const ours = model.predictBatch(X, BATCH);
let maxDiff = 0;
for (let i = 0; i < BATCH; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - nat[i]!));

const rows = Array.from({ length: BATCH }, (_, i) => X.subarray(i * k, (i + 1) * k));
const arrays = rows.map((r) => Array.from(r));
let sink = 0;
const tsSingle = rate(() => {
  for (const r of rows) sink += model.predict(r);
  return rows.length;
});
const tsArray = rate(() => {
  for (const r of arrays) sink += model.predict(r);
  return arrays.length;
});
const tsBatch = rate(() => {
  sink += model.predictBatch(X, BATCH)[0]!;
  return BATCH;
});
if (Number.isNaN(sink)) process.stdout.write('');

const lines = [
  `Model: ${model.numTrees} trees, depth 6, ${k} features, reg:pseudohubererror, trained on ${fmt(ds.n)} rows (Binance BTC+ETH, 2022-06-01..07); XGBoost ${native.xgboost}, one thread each side.`,
  `Parsing the JSON (${fmt(json.length / 1024)} KiB) into typed arrays: ${loadMs.toFixed(1)} ms. Max |TS − native| over the ${fmt(BATCH)} rows: ${maxDiff}.`,
  '',
  '| | predictions/s | µs per prediction |',
  '|---|---:|---:|',
  `| TS \`predict(Float32Array row)\` | ${fmt(tsSingle)} | ${(1e6 / tsSingle).toFixed(2)} |`,
  `| TS \`predict(number[] row)\` | ${fmt(tsArray)} | ${(1e6 / tsArray).toFixed(2)} |`,
  `| native \`inplace_predict\`, 1 row per call | ${fmt(native.single)} | ${(1e6 / native.single).toFixed(2)} |`,
  `| TS \`predictBatch\`, ${fmt(BATCH)} rows | ${fmt(tsBatch)} | ${(1e6 / tsBatch).toFixed(2)} |`,
  `| native \`inplace_predict\`, ${fmt(BATCH)} rows | ${fmt(native.batch)} | ${(1e6 / native.batch).toFixed(2)} |`,
  '',
  `Single row: TS is ${(tsSingle / native.single).toFixed(0)}× native (a native call pays the Python → C crossing and a proxy DMatrix per row). ` +
    `Batch: TS runs at ${(tsBatch / native.batch).toFixed(2)}× native's rate.`,
];
process.stdout.write(`${lines.join('\n')}\n`);
recordBenchmark('xgboost-runtime', 'XGBoost runtime: TypeScript vs native', lines.join('\n'));
