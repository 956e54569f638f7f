"""`python -m cryptocast_trainer fit --dataset DIR --spec FILE --out DIR`

Input (written by the TypeScript dataset builder, see src/training/dataset.ts):
  DIR/dataset.json   columns, pairs, n, horizonMs
  DIR/X.f32          n x columns float32, row-major, NaN = missing
  DIR/meta.f64       n x 4 float64: windowEnd (epoch ms), pair index, close, target (log return, basis points)
  FILE               the spec: folds, params or a tuning budget, quantiles, threads, seed, champion config

Output in --out:
  oos.f64            m x 7 float64, one row per out-of-sample prediction:
                     dataset row, fold, model, p10, p90, linear, champion (NaN when there is no champion config)
  model.json, p10.json, p90.json   the final models (XGBoost JSON), fitted on every row
  result.json        chosen params, tuning trials, best iterations, fit times, feature importance (gain, SHAP)
  *.png              the report's figures (when the spec asks for them)
Progress: one JSON object per line on stdout ({"event": "progress" | "log", ...}); errors: a message on stderr
and exit code 2 for bad input, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

# OpenMP threads spin while they wait for work; on a machine whose cores are shared (2 cores, another process busy)
# the spinning threads starve each other: a 0.5 s fit took 16 s. Passive waiting avoids it at no cost here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Chosen by a walk-forward study over the 14 months of Binance BTCUSDT/ETHUSDT (docs/training.md): the pseudo-Huber
# loss (slope 2 bps) behaves like L1 on the fat tails of 5-minute returns, so the trees learn the typical move rather
# than chase crashes, and it trains ~5x faster than reg:absoluteerror. Optuna starts from here.
DEFAULT_PARAMS = {
    "objective": "reg:pseudohubererror",
    "huber_slope": 2.0,
    "max_depth": 6,
    "eta": 0.05,
    "min_child_weight": 100.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "alpha": 0.001,
}
# The point model is the mean of models fitted on these training windows (days; None = the whole training window):
# a forecast combination across estimation windows (Pesaran & Pick 2011), which under regime changes beats any one
# window. All history + the latest 60 days, refitted weekly over the 14 months: skill +0.354 % / +0.261 % (BTC / ETH)
# against +0.299 % / +0.229 % for all history alone (docs/training.md, "Point forecast"). A cryptocast parameter, not
# an XGBoost one: it travels in `params` (and the model card) so that a champion is refitted as it was trained.
POINT_WINDOWS = [None, 60]
DAY_MS = 86_400_000.0
MAX_ROUNDS = 2000
EARLY_STOP = 50
# The interval models (p10, p90) only need to be calibrated, not sharp to the last basis point: the pinball loss
# keeps improving by crumbs for thousands of rounds, so they get a faster learning rate, a round cap, and at most
# the latest QUANTILE_ROWS rows of the window (volatility is local in time anyway).
QUANTILE_ROUNDS = 300
QUANTILE_ETA = 0.1
QUANTILE_ROWS = 200_000
# The volatility-normalised interval target (spec "quantileTarget": "vol"): the quantile models learn
# y / scale, scale = rv_60m over the horizon in bps, at least this much.
VOL_FLOOR_BPS = 1.0


class InputError(Exception):
    pass


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity (taskset, a container's cpuset), at most its cgroup's CPU quota
    (a pod's CPU limit), rounded up: what Node's os.availableParallelism() counts when the trainer writes `threads`
    into the spec. os.cpu_count() is every CPU of the node: a pod limited to 2 CPUs on a 64-core node ran 64 threads,
    throttled by the quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = None
    try:  # cgroup v2: "max 100000" (no limit) or "200000 100000" (2 CPUs)
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if limit != "max":
            quota = int(limit) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1: a quota of -1 is no limit
            limit = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if limit > 0 and period > 0:
                quota = limit / period
        except (OSError, ValueError):
            pass
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def spec_threads(spec: dict) -> int:
    """XGBoost's threads: the spec's `threads` (the trainer always writes it), else the usable CPUs (a study or
    cadence spec written by hand)."""
    return int(spec.get("threads") or usable_cpus())


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def load(dataset: Path):
    info = json.loads((dataset / "dataset.json").read_text())
    n, k = info["n"], len(info["columns"])
    X = np.fromfile(dataset / info["X"], dtype="<f4")
    meta = np.fromfile(dataset / info["meta"], dtype="<f8")
    if X.size != n * k or meta.size != n * 4:
        raise InputError(f"dataset files do not match dataset.json (n={n}, columns={k})")
    return info, X.reshape(n, k), meta.reshape(n, 4)


MIN_FIT_ROWS = 100
MIN_VALIDATION_ROWS = 50


def inner_split(
    idx: np.ndarray,
    t: np.ndarray,
    fraction: float,
    purge_ms: float,
    min_fit: int = MIN_FIT_ROWS,
    min_val: int = MIN_VALIDATION_ROWS,
):
    """The last `fraction` of a training window (by time) validates early stopping; a purge gap precedes it."""
    t_idx = t[idx]
    lo, hi = t_idx.min(), t_idx.max()
    cut = hi - (hi - lo) * fraction
    fit = idx[t_idx < cut - purge_ms]
    val = idx[t_idx >= cut]
    if len(fit) < min_fit or len(val) < min_val:
        raise InputError(f"training window too small for an inner validation split ({len(idx)} rows)")
    return fit, val


def booster_params(params: dict, threads: int, seed: int, quantile: float | None = None) -> dict:
    p = {k: v for k, v in params.items() if k not in ("rounds", "point_windows_days")}
    p.update({"tree_method": "hist", "nthread": threads, "seed": seed, "eval_metric": "mae"})
    if quantile is not None:
        p["objective"] = "reg:quantileerror"
        p["quantile_alpha"] = quantile
        # Early stopping must watch the pinball loss of this quantile: MAE is minimised by the median, so it would
        # stop a p10 model at its first tree.
        p["eval_metric"] = "quantile"
        p.pop("huber_slope", None)
    return p


def vol_scale(vol, horizon_ms):
    """The volatility scale of each row (bps): rv_60m over the horizon, sqrt(h / 60 min) * rv_60m * 1e4, floored at
    VOL_FLOOR_BPS (a dead market has rv 0; prices move in whole ticks). NaN (unknown) becomes the floor too."""
    s = np.sqrt(horizon_ms / 3_600_000.0) * vol * 1e4
    return np.where(np.isfinite(s), np.maximum(s, VOL_FLOOR_BPS), VOL_FLOOR_BPS)


def fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed, quantile=None):
    rounds = int(params.get("rounds", MAX_ROUNDS))
    if quantile is not None:
        params = {**params, "eta": max(float(params.get("eta", QUANTILE_ETA)), QUANTILE_ETA)}
        rounds = min(rounds, QUANTILE_ROUNDS)
        fit_idx = fit_idx[-QUANTILE_ROWS:]
    dfit = xgb.DMatrix(X[fit_idx], label=y[fit_idx], nthread=threads)
    dval = xgb.DMatrix(X[val_idx], label=y[val_idx], nthread=threads)
    b = xgb.train(
        booster_params(params, threads, seed, quantile),
        dfit,
        num_boost_round=rounds,
        evals=[(dval, "val")],
        early_stopping_rounds=EARLY_STOP if quantile is None else 20,
        verbose_eval=False,
    )
    best = int(b.best_iteration)
    # Keep only the trees up to the best iteration: the saved model is then exactly what was validated, and a
    # runtime that evaluates every tree (our TypeScript one) predicts the same.
    return b[: best + 1], best


def fit_point(xgb, params, X, y, t, train_idx, vf, horizon, min_fit, min_val, threads, seed):
    """The point model on `train_idx`: one booster per window of `params["point_windows_days"]` (the latest N days of
    the training rows, or all of them), each with its own early-stopping split, averaged into one booster
    (`average_boosters`). A window that holds every training row (a short history) is fitted once."""
    windows = params.get("point_windows_days") or [None]
    end = t[train_idx].max()
    boosters, bests, seen = [], [], set()
    for w in windows:
        idx = train_idx if w is None else train_idx[t[train_idx] >= end - float(w) * DAY_MS]
        if len(idx) in seen:
            continue
        seen.add(len(idx))
        fit_idx, val_idx = inner_split(idx, t, vf, horizon, min_fit, min_val)
        b, best = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed)
        boosters.append(b)
        bests.append(best)
    if len(boosters) == 1:
        return boosters[0], bests[0]
    merged = average_boosters(xgb, boosters)
    # The merge must predict the mean exactly (float32 leaves: to a few 1e-6 bps), or the model shipped is not the
    # model evaluated.
    probe = X[train_idx[-min(len(train_idx), 2000):]]
    want = np.mean([predict(xgb, b, probe, threads) for b in boosters], axis=0)
    got = predict(xgb, merged, probe, threads)
    if not np.allclose(got, want, atol=1e-4, rtol=1e-5):
        raise RuntimeError(f"averaged booster differs from the mean of its parts by {np.abs(got - want).max()}")
    return merged, bests[0]


def average_boosters(xgb, boosters):
    """One booster whose prediction is the mean of `boosters`' (regression, identity link): every tree of every
    part, its leaf values divided by the number of parts, after a base score that is the mean of theirs. It is an
    ordinary XGBoost model, so the registry, the predictor and every tool read it as any other."""
    docs = [json.loads(b.save_raw(raw_format="json")) for b in boosters]
    k = float(len(docs))
    trees = []
    for d in docs:
        for tree in d["learner"]["gradient_booster"]["model"]["trees"]:
            leaf = [i for i, left in enumerate(tree["left_children"]) if left == -1]
            for i in leaf:
                tree["split_conditions"][i] /= k
                tree["base_weights"][i] /= k
            tree["id"] = len(trees)
            trees.append(tree)
    out = docs[0]
    model = out["learner"]["gradient_booster"]["model"]
    model["trees"] = trees
    model["tree_info"] = [0] * len(trees)
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    model["iteration_indptr"] = list(range(len(trees) + 1))
    bases = [float(str(d["learner"]["learner_model_param"]["base_score"]).strip("[]")) for d in docs]
    out["learner"]["learner_model_param"]["base_score"] = f"[{np.mean(bases):.9E}]"
    for key in ("best_iteration", "best_score", "best_ntree_limit"):
        out["learner"].get("attributes", {}).pop(key, None)
    merged = xgb.Booster()
    merged.load_model(bytearray(json.dumps(out).encode()))
    return merged


def predict(xgb, booster, X, threads):
    return booster.predict(xgb.DMatrix(X, nthread=threads))


def ridge_fit_predict(X, y, fit_idx, test_idx, lam=1.0):
    """The linear baseline: ridge regression on standardised features, missing values imputed with the mean."""
    Xf = X[fit_idx].astype(np.float64)
    mu = np.nanmean(Xf, axis=0)
    mu = np.where(np.isnan(mu), 0.0, mu)
    sd = np.nanstd(Xf, axis=0)
    sd = np.where((sd > 0) & ~np.isnan(sd), sd, 1.0)

    def z(A):
        Z = (A.astype(np.float64) - mu) / sd
        return np.where(np.isnan(Z), 0.0, Z)

    Zf = z(X[fit_idx])
    ym = y[fit_idx].mean()
    A = Zf.T @ Zf + lam * len(fit_idx) * 1e-4 * np.eye(Zf.shape[1])
    w = np.linalg.solve(A, Zf.T @ (y[fit_idx] - ym))
    return z(X[test_idx]) @ w + ym


def per_pair_skill(y, pred, pairs):
    """Mean over pairs of 1 - MAE(pred)/MAE(0) on returns: the tuning objective (pairs weigh the same)."""
    skills = []
    for p in np.unique(pairs):
        m = pairs == p
        base = np.abs(y[m]).mean()
        if base > 0:
            skills.append(1 - np.abs(y[m] - pred[m]).mean() / base)
    return float(np.mean(skills))


def tune(xgb, X, y, pair, fit_idx, val_idx, budget, threads, seed, start):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seconds = float(budget.get("seconds", 60))
    trials = int(budget.get("trials", 100))

    def objective(trial):
        params = {
            "objective": trial.suggest_categorical(
                "objective", ["reg:absoluteerror", "reg:pseudohubererror", "reg:squarederror"]
            ),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "eta": trial.suggest_float("eta", 0.01, 0.3, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 2000.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "lambda": trial.suggest_float("lambda", 1e-3, 100.0, log=True),
            "alpha": trial.suggest_float("alpha", 1e-3, 100.0, log=True),
        }
        if params["objective"] == "reg:pseudohubererror":
            params["huber_slope"] = trial.suggest_float("huber_slope", 1.0, 30.0, log=True)
        b, best = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed)
        trial.set_user_attr("best_iteration", best)
        score = per_pair_skill(y[val_idx], predict(xgb, b, X[val_idx], threads), pair[val_idx])
        emit("progress", stage="tune", done=len(study.trials), total=trials, detail=f"trial {trial.number}: skill {score:.4f}")
        return score

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    # The default parameters are the first trial: tuning can only keep or improve on them.
    study.enqueue_trial({k: v for k, v in DEFAULT_PARAMS.items()})
    optimize_start = time.time()
    study.optimize(objective, n_trials=trials, timeout=seconds)
    best = dict(study.best_params)
    return best, {
        "trials": len(study.trials),
        "best_value": study.best_value,
        "seconds": time.time() - start,
        # The budget's own check: no trial starts once `seconds` have passed (the one running then finishes).
        "last_trial_started_after": max(t.datetime_start.timestamp() for t in study.trials) - optimize_start,
        "history": [
            {"number": t.number, "value": t.value, "params": t.params} for t in study.trials if t.value is not None
        ],
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m cryptocast_trainer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--dataset", required=True, type=Path)
    f.add_argument("--spec", required=True, type=Path)
    f.add_argument("--out", required=True, type=Path)
    g = sub.add_parser("figures")
    g.add_argument("--input", required=True, type=Path)
    g.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "figures":
        from .figures import draw_evaluation

        return draw_evaluation(args.input, args.out)
    try:
        return fit(args.dataset, json.loads(args.spec.read_text()), args.out)
    except InputError as e:
        print(f"cryptocast_trainer: {e}", file=sys.stderr)
        return 2


def fit(dataset: Path, spec: dict, out: Path) -> int:
    import xgboost as xgb

    t0 = time.time()
    info, X, meta = load(dataset)
    out.mkdir(parents=True, exist_ok=True)
    t, pair, y = meta[:, 0], meta[:, 1].astype(np.int64), meta[:, 3]
    columns = info["columns"]
    horizon = float(spec["horizonMs"])
    threads = spec_threads(spec)
    seed = int(spec.get("seed", 42))
    vf = float(spec.get("validationFraction", 0.1))
    min_fit = int(spec.get("minFitRows", MIN_FIT_ROWS))
    min_val = int(spec.get("minValidationRows", MIN_VALIDATION_ROWS))
    quantiles = spec.get("quantiles", [0.1, 0.9])
    folds = spec["folds"]
    if not np.isfinite(y).all():
        raise InputError("the target has non-finite values")

    def rows(lo, hi):
        return np.nonzero((t >= lo) & (t < hi))[0]

    # Hyperparameters: given, or tuned on the data before the first test block only (never on a test fold).
    params = dict(DEFAULT_PARAMS)
    tuning = None
    if spec.get("params"):
        params.update(spec["params"])
    elif spec.get("tune"):
        f0 = folds[0]
        fit_idx, val_idx = inner_split(rows(f0["trainFrom"], f0["trainTo"]), t, vf, horizon, min_fit, min_val)
        best, tuning = tune(xgb, X, y, pair, fit_idx, val_idx, spec["tune"], threads, seed, time.time())
        params = best
        emit("log", message=f"tuning: {tuning['trials']} trials, best validation skill {tuning['best_value']:.4f}")

    params.setdefault("point_windows_days", spec.get("pointWindowsDays") or POINT_WINDOWS)

    champion = spec.get("champion")
    champion_cols = None
    if champion and champion["params"] == params and champion["columns"] == columns:
        # The champion's own configuration: its refit would repeat the candidate's fits exactly (same data, seed).
        emit("log", message="champion config is this run's: not refitted")
        champion = None
    if champion:
        missing = [c for c in champion["columns"] if c not in columns]
        if missing:
            emit("log", message=f"champion config not comparable: columns {missing} not in this dataset")
            champion = None
        else:
            champion_cols = [columns.index(c) for c in champion["columns"]]

    oos = []
    fold_info = []
    for f in folds:
        train_idx = rows(f["trainFrom"], f["trainTo"])
        test_idx = rows(f["testFrom"], f["testTo"])
        if len(train_idx) == 0 or len(test_idx) == 0:
            raise InputError(f"fold {f['fold']} has {len(train_idx)} training and {len(test_idx)} test rows")
        fit_idx, val_idx = inner_split(train_idx, t, vf, horizon, min_fit, min_val)
        started = time.time()
        emit("progress", stage="folds", done=f["fold"], total=len(folds), detail=f"fold {f['fold'] + 1}: model")
        b, best = fit_point(xgb, params, X, y, t, train_idx, vf, horizon, min_fit, min_val, threads, seed)
        pred = predict(xgb, b, X[test_idx], threads)
        qs = []
        for q in quantiles:
            emit("progress", stage="folds", done=f["fold"], total=len(folds), detail=f"fold {f['fold'] + 1}: p{round(q * 100)}")
            bq, _ = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed, quantile=q)
            qs.append(predict(xgb, bq, X[test_idx], threads))
        lo, hi = np.minimum(qs[0], qs[1]), np.maximum(qs[0], qs[1])  # quantile models fitted apart may cross
        lin = ridge_fit_predict(X, y, train_idx, test_idx)
        champ = np.full(len(test_idx), np.nan)
        if champion:
            Xc = X[:, champion_cols]
            # As the champion was trained: a card without windows predates them (one window, all history).
            cp = {"point_windows_days": [None], **champion["params"]}
            bc, _ = fit_point(xgb, cp, Xc, y, t, train_idx, vf, horizon, min_fit, min_val, threads, seed)
            champ = predict(xgb, bc, Xc[test_idx], threads)
        oos.append(np.column_stack([test_idx, np.full(len(test_idx), f["fold"]), pred, lo, hi, lin, champ]))
        fold_info.append({"fold": f["fold"], "bestIteration": best, "trainRows": int(len(fit_idx)), "validationRows": int(len(val_idx)), "testRows": int(len(test_idx)), "seconds": time.time() - started})
        emit("progress", stage="folds", done=f["fold"] + 1, total=len(folds), detail=f"fold {f['fold'] + 1}: done")
    np.concatenate(oos).astype("<f8").tofile(out / "oos.f64")

    result = {"params": params, "tuning": tuning, "folds": fold_info, "columns": columns, "xgboost": xgb.__version__}
    if spec.get("final", True):
        emit("progress", stage="final", done=0, total=1 + len(quantiles), detail="final model")
        all_idx = np.arange(len(y))
        fit_idx, val_idx = inner_split(all_idx, t, vf, horizon, min_fit, min_val)
        b, best = fit_point(xgb, params, X, y, t, all_idx, vf, horizon, min_fit, min_val, threads, seed)
        b.save_model(out / "model.json")
        for i, q in enumerate(quantiles):
            emit("progress", stage="final", done=1 + i, total=1 + len(quantiles), detail=f"final p{round(q * 100)}")
            bq, _ = fit_one(xgb, params, X, y, fit_idx, val_idx, threads, seed, quantile=q)
            bq.save_model(out / f"p{round(q * 100)}.json")
        emit("progress", stage="final", done=1 + len(quantiles), total=1 + len(quantiles), detail="importance")
        result["final"] = {"bestIteration": best, "trainRows": int(len(fit_idx)), "validationRows": int(len(val_idx))}
        result["importance"] = importance(xgb, b, X, columns, threads)
        if spec.get("figures"):
            from .figures import draw

            draw(out, info, X, meta, np.concatenate(oos), result, b, threads)
    result["seconds"] = time.time() - t0
    (out / "result.json").write_text(json.dumps(result, indent=2, default=float))
    return 0


def importance(xgb, booster, X, columns, threads, sample=20000):
    """Gain per column (XGBoost's own) and mean |SHAP contribution| on the latest rows (pred_contribs)."""
    total = booster.get_score(importance_type="total_gain")
    gain = booster.get_score(importance_type="gain")
    names = {f"f{i}": c for i, c in enumerate(columns)}
    rows = X[-sample:]
    contrib = booster.predict(xgb.DMatrix(rows, nthread=threads), pred_contribs=True)
    shap = np.abs(contrib[:, :-1]).mean(axis=0)
    return {
        "total_gain": {names.get(k, k): v for k, v in total.items()},
        "gain": {names.get(k, k): v for k, v in gain.items()},
        "shap_mean_abs": {c: float(shap[i]) for i, c in enumerate(columns)},
        "shap_rows": int(len(rows)),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
