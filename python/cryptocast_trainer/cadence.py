"""`python -m cryptocast_trainer.cadence --dataset DIR --spec FILE --out DIR`: retraining cadence, simulated.

The trainer service refits the point model every `every` hours on the latest `days` days (default 6 h on 14 days).
This replays such a schedule over a test span: at each retraining time t_k the model is fitted (default parameters,
early stopping on the last 10 % of its window, purge = horizon) on the rows with windowEnd in [t_k - days, t_k - purge)
and predicts the rows in [t_k, t_k+1). `days` null = all history before t_k.

Spec: {"horizonMs", "from", "to", "schedules": [{"name", "everyHours", "days", "seed"?, "params"?, "model"?}],
"threads", "seed"}
(a schedule's own seed, when given, replaces the spec's: a seed control for combinations of schedules; its `params`
are merged over DEFAULT_PARAMS, e.g. {"num_parallel_tree": 4}: a member of a combination with other settings;
`"model": "linear"` fits the trainer's ridge baseline (`ridge_fit_predict`, the `linear` column of `evaluate`) on
the same window instead of XGBoost: no early-stopping split, every training row)
Output: DIR/<name>.f64, n x 2 float64 (dataset row, prediction) per schedule; DIR/cadence.json (fits, seconds).
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

from .fit import DEFAULT_PARAMS, emit, fit_one, inner_split, load, predict, ridge_fit_predict, spec_threads  # noqa: E402

H = 3_600_000.0
D = 86_400_000.0


def schedule_params(sch: dict) -> dict:
    """DEFAULT_PARAMS with the schedule's own `params` over them; huber_slope only belongs to the pseudo-Huber loss
    (XGBoost warns that it is unused under any other objective)."""
    params = {**DEFAULT_PARAMS, **(sch.get("params") or {})}
    if params["objective"] != "reg:pseudohubererror":
        params.pop("huber_slope", None)
    return params


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
    threads = spec_threads(spec)
    seed = int(spec.get("seed", 42))
    args.out.mkdir(parents=True, exist_ok=True)
    # Schedules of the same span may be fitted by separate runs: keep the timings of the earlier ones.
    report_file = args.out / "cadence.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    for sch in spec["schedules"]:
        started = time.time()
        params = schedule_params(sch)
        every = float(sch["everyHours"]) * H
        preds = []
        fits = 0
        k = float(spec["from"])
        while k < float(spec["to"]):
            nxt = min(k + every, float(spec["to"]))
            test = np.nonzero((t >= k) & (t < nxt))[0]
            if len(test) > 0:
                lo = -np.inf if sch.get("days") is None else k - float(sch["days"]) * D
                train = np.nonzero((t >= lo) & (t < k - horizon))[0]
                if sch.get("model") == "linear":
                    pred = ridge_fit_predict(X, y, train, test)
                else:
                    fit_idx, val_idx = inner_split(train, t, 0.1, horizon)
                    b, _ = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, int(sch.get("seed", seed)))
                    pred = predict(xgb, b, X[test], threads)
                preds.append(np.column_stack([test, pred]))
                fits += 1
            k = nxt
        out = np.concatenate(preds)
        out.astype("<f8").tofile(args.out / f"{sch['name']}.f64")
        report[sch["name"]] = {"fits": fits, "seconds": time.time() - started, **sch}
        emit("log", message=f"{sch['name']}: {fits} fits in {time.time() - started:.0f} s")
        report_file.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
