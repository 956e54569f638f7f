"""Peers of the TypeScript XGBoost runtime (src/inference/xgboost-model.ts): the same model in onnxruntime (converted
with onnxmltools), XGBoost's own inplace_predict, and tl2cgen (the trees compiled to C by gcc). One thread each.

    python xgboost_peers.py train DIR K ROUNDS     X.f32 (rows × K) and y.f64 in DIR → DIR/model.json
    python xgboost_peers.py prepare DIR K          → DIR/model.onnx, DIR/model.so (conversion and compilation)
    python xgboost_peers.py run DIR K BATCH SECS   rates; predictions of the first BATCH rows → DIR/<peer>.f32

`run` prints one JSON line: per peer, single-row predictions/s (one call per row, as a live service makes) and
batch rows/s (one call per BATCH rows), best of repeated timed runs of at least SECS seconds each.
"""

import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402


def rate(fn, secs: float, reps: int = 3) -> float:
    fn()
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < secs:
            n += fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def load_x(d: str, k: int) -> np.ndarray:
    return np.fromfile(os.path.join(d, "X.f32"), dtype="<f4").reshape(-1, k)


def train(d: str, k: int, rounds: int) -> None:
    import xgboost as xgb

    x = load_x(d, k)
    y = np.fromfile(os.path.join(d, "y.f64"), dtype="<f8")
    params = {"objective": "reg:pseudohubererror", "huber_slope": 2.0, "tree_method": "hist", "max_depth": 6,
              "eta": 0.05, "min_child_weight": 5.0, "subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1,
              "seed": 1}
    b = xgb.train(params, xgb.DMatrix(x, label=y, nthread=1), num_boost_round=rounds)
    b.save_model(os.path.join(d, "model.json"))


def prepare(d: str, k: int) -> None:
    import onnxmltools
    import tl2cgen
    import treelite
    import xgboost as xgb
    from onnxmltools.convert.common.data_types import FloatTensorType

    b = xgb.Booster(model_file=os.path.join(d, "model.json"))
    onx = onnxmltools.convert_xgboost(b, initial_types=[("input", FloatTensorType([None, k]))])
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    tm = treelite.frontend.load_xgboost_model(os.path.join(d, "model.json"))
    tl2cgen.export_lib(tm, toolchain="gcc", libpath=os.path.join(d, "model.so"), params={"parallel_comp": 8},
                       nthread=1)


def run(d: str, k: int, batch: int, secs: float) -> None:
    import onnxruntime as ort
    import tl2cgen
    import xgboost as xgb

    x = load_x(d, k)[:batch].copy()
    rows = [x[i : i + 1] for i in range(len(x))]
    out = {}

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    p = sess.run(None, {name: x})[0].reshape(-1).astype("<f4")
    p.tofile(os.path.join(d, "onnxruntime.f32"))

    def ort_single() -> int:
        for r in rows:
            sess.run(None, {name: r})
        return len(rows)

    out["onnxruntime"] = {
        "single": rate(ort_single, secs),
        "batch": rate(lambda: (sess.run(None, {name: x}), batch)[1], secs),
        "version": ort.__version__,
    }

    b = xgb.Booster(model_file=os.path.join(d, "model.json"))
    b.set_param({"nthread": 1})
    b.inplace_predict(x).astype("<f4").tofile(os.path.join(d, "xgboost.f32"))
    few = rows[:1000]  # each call crosses into C and builds a proxy matrix: slow, fewer rows suffice

    def xgb_single() -> int:
        for r in few:
            b.inplace_predict(r)
        return len(few)

    out["xgboost"] = {
        "single": rate(xgb_single, secs),
        "batch": rate(lambda: (b.inplace_predict(x), batch)[1], secs),
        "version": xgb.__version__,
    }

    pr = tl2cgen.Predictor(os.path.join(d, "model.so"), nthread=1)
    dm = tl2cgen.DMatrix(x)
    pr.predict(dm).reshape(-1).astype("<f4").tofile(os.path.join(d, "tl2cgen.f32"))
    dms = [tl2cgen.DMatrix(r) for r in few]

    def tl_single() -> int:
        for r in few:
            pr.predict(tl2cgen.DMatrix(r))
        return len(few)

    out["tl2cgen"] = {
        "single": rate(tl_single, secs),
        "batch": rate(lambda: (pr.predict(dm), batch)[1], secs),
        "version": tl2cgen.__version__,
    }
    del dms
    print(json.dumps(out))


if __name__ == "__main__":
    mode, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "train":
        train(d, k, int(sys.argv[4]))
    elif mode == "prepare":
        prepare(d, k)
    else:
        run(d, k, int(sys.argv[4]), float(sys.argv[5]))
