"""`python -m cryptocast_trainer.study --dataset DIR --spec FILE --out DIR`: the calibration / robustness study.

The same folds, data and default parameters as `fit`, but several interval (and point) variants fitted side by side
on each fold, so they are compared on identical test rows (docs/training.md, "Intervals that stay calibrated"):

  model                the default point model (pseudo-Huber on the return, bps)
  point_vol            the point model on the volatility-normalised target y / s, scaled back (s = vol_scale)
  lo_raw, hi_raw       p10 / p90 quantile models on the return (today's default)
  lo_vol, hi_vol       p10 / p90 on y / s, scaled back
  *_cqr                the same after split-conformal calibration (CQR, Romano et al. 2019) on the fold's most
                       recent training data (the inner validation window, the last 10 % of the training window):
                       each side is moved by the 90th percentile of its conformity score (additive in bps for raw,
                       in units of s for vol)

Output: oos.f64 (m x 12 float64: row, fold, model, point_vol, lo_raw, hi_raw, lo_vol, hi_vol, lo_raw_cqr,
hi_raw_cqr, lo_vol_cqr, hi_vol_cqr) and study.json (per-fold offsets and fit times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .fit import DEFAULT_PARAMS, emit, fit_one, inner_split, load, predict, spec_threads, vol_scale  # noqa: E402


def cqr_offset(score: np.ndarray, level: float = 0.9) -> float:
    """The finite-sample conformal quantile: the ceil((n + 1) * level)-th smallest score."""
    n = len(score)
    k = min(n - 1, int(np.ceil((n + 1) * level)) - 1)
    return float(np.partition(score, k)[k])


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--spec", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    import xgboost as xgb

    spec = json.loads(args.spec.read_text())
    info, X, meta = load(args.dataset)
    t, y = meta[:, 0], meta[:, 3]
    horizon = float(spec["horizonMs"])
    vol = X[:, info["columns"].index("rv_60m")].astype(np.float64)
    s = vol_scale(vol, horizon)
    z = y / s
    threads = spec_threads(spec)
    seed = int(spec.get("seed", 42))
    params = dict(DEFAULT_PARAMS)
    params.update(spec.get("params") or {})
    # On y / s (s ~ 10-40 bps) the pseudo-Huber slope of 2 bps is about 0.1.
    params_vol = {**params, "huber_slope": float(spec.get("volHuberSlope", 0.1))}
    variants = set(spec.get("variants", ["point_vol"]))
    args.out.mkdir(parents=True, exist_ok=True)
    out = []
    folds_info = []
    for f in spec["folds"]:
        started = time.time()
        train_idx = np.nonzero((t >= f["trainFrom"]) & (t < f["trainTo"]))[0]
        test_idx = np.nonzero((t >= f["testFrom"]) & (t < f["testTo"]))[0]
        fit_idx, val_idx = inner_split(train_idx, t, 0.1, horizon)
        emit("log", message=f"fold {f['fold']}: {len(fit_idx)} fit, {len(val_idx)} validation, {len(test_idx)} test rows")
        b, _ = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed)
        pred = predict(xgb, b, X[test_idx], threads)
        if "point_vol" in variants:
            bv, _ = fit_one(xgb, params_vol, X, z, fit_idx, val_idx, threads, seed)
            pred_vol = predict(xgb, bv, X[test_idx], threads) * s[test_idx]
        else:
            pred_vol = np.full(len(test_idx), np.nan)
        cols = {}
        offsets = {}
        for name, target, scale in (("raw", y, np.ones_like(s)), ("vol", z, s)):
            qs_test, qs_val = [], []
            for q in (0.1, 0.9):
                bq, _ = fit_one(xgb, params, X, target, fit_idx, val_idx, threads, seed, quantile=q)
                qs_test.append(predict(xgb, bq, X[test_idx], threads))
                qs_val.append(predict(xgb, bq, X[val_idx], threads))
            lo_t, hi_t = np.minimum(*qs_test), np.maximum(*qs_test)
            lo_v, hi_v = np.minimum(*qs_val), np.maximum(*qs_val)
            # Conformity scores on the calibration window, in the target's units (bps for raw, s for vol).
            zt = target[val_idx]
            c_lo = cqr_offset(lo_v - zt)
            c_hi = cqr_offset(zt - hi_v)
            offsets[name] = {"lo": c_lo, "hi": c_hi}
            sc = scale[test_idx]
            cols[f"lo_{name}"] = lo_t * sc
            cols[f"hi_{name}"] = hi_t * sc
            cols[f"lo_{name}_cqr"] = (lo_t - c_lo) * sc
            cols[f"hi_{name}_cqr"] = (hi_t + c_hi) * sc
        out.append(
            np.column_stack(
                [
                    test_idx,
                    np.full(len(test_idx), f["fold"]),
                    pred,
                    pred_vol,
                    cols["lo_raw"],
                    cols["hi_raw"],
                    cols["lo_vol"],
                    cols["hi_vol"],
                    cols["lo_raw_cqr"],
                    cols["hi_raw_cqr"],
                    cols["lo_vol_cqr"],
                    cols["hi_vol_cqr"],
                ]
            )
        )
        folds_info.append({"fold": f["fold"], "offsets": offsets, "seconds": time.time() - started})
        emit("log", message=f"fold {f['fold']}: done in {time.time() - started:.0f} s, offsets {offsets}")
    np.concatenate(out).astype("<f8").tofile(args.out / "oos.f64")
    (args.out / "study.json").write_text(json.dumps({"folds": folds_info, "params": params, "params_vol": params_vol}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
