"""`python -m cryptocast_trainer.venue_study --train DIR --test DIR --spec FILE`: a column a venue lacks.

Bitstamp's candles have no trade count, so `trades_z_60m` is missing in every Bitstamp row while the training venue
(Binance) always has it: the trees then send those rows down default branches they never learnt. This fits the point
model (default parameters, early stopping on the last 10 %) with and without the columns of `spec["drop"]`, on the
5 walk-forward folds of the training dataset (skill per pair) and on all of it (skill on the test dataset, another
venue). Prints one JSON line per variant. Skill = 1 - MAE(price) / MAE(persistence).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .fit import DEFAULT_PARAMS, fit_one, inner_split, load, predict, spec_threads  # noqa: E402


def skill(close, y, pred):
    target = close * np.exp(y / 1e4)
    model = np.abs(close * np.exp(pred / 1e4) - target).mean()
    return 1 - model / np.abs(close - target).mean()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--test", required=True, type=Path)
    ap.add_argument("--spec", required=True, type=Path)
    args = ap.parse_args(argv)
    import xgboost as xgb

    spec = json.loads(args.spec.read_text())
    info, X, meta = load(args.train)
    tinfo, TX, tmeta = load(args.test)
    assert info["columns"] == tinfo["columns"]
    t, pair, close, y = meta[:, 0], meta[:, 1].astype(int), meta[:, 2], meta[:, 3]
    horizon = float(spec["horizonMs"])
    threads = spec_threads(spec)
    for variant in spec["variants"]:
        keep = [i for i, c in enumerate(info["columns"]) if c not in variant["drop"]]
        Xk, TXk = X[:, keep], TX[:, keep]
        preds = np.full(len(y), np.nan)
        for f in spec["folds"]:
            train = np.nonzero((t >= f["trainFrom"]) & (t < f["trainTo"]))[0]
            test = np.nonzero((t >= f["testFrom"]) & (t < f["testTo"]))[0]
            fi, vi = inner_split(train, t, 0.1, horizon)
            b, _ = fit_one(xgb, DEFAULT_PARAMS, Xk, y, fi, vi, threads, 42)
            preds[test] = predict(xgb, b, Xk[test], threads)
        tested = ~np.isnan(preds)
        per_pair = {
            info["pairs"][p]: float(skill(close[tested & (pair == p)], y[tested & (pair == p)], preds[tested & (pair == p)]))
            for p in np.unique(pair)
        }
        fi, vi = inner_split(np.arange(len(y)), t, 0.1, horizon)
        b, _ = fit_one(xgb, DEFAULT_PARAMS, Xk, y, fi, vi, threads, 42)
        other = float(skill(tmeta[:, 2], tmeta[:, 3], predict(xgb, b, TXk, threads)))
        print(json.dumps({"drop": variant["drop"], "walk_forward": per_pair, "other_venue": other}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
