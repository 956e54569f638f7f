"""The report's figures (PNG), drawn from the out-of-sample predictions and the final model."""

from __future__ import annotations

import numpy as np


def draw(out, info, X, meta, oos, result, booster, threads):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = info["pairs"]
    rows = oos[:, 0].astype(np.int64)
    t, pair, close, y = meta[rows, 0], meta[rows, 1].astype(np.int64), meta[rows, 2], meta[rows, 3]
    pred, lo, hi = oos[:, 2], oos[:, 3], oos[:, 4]

    # 1. Predicted vs actual close over the last 6 hours of the last test fold, per pair, with the p10-p90 band.
    fig, axes = plt.subplots(len(pairs), 1, figsize=(10, 3.2 * len(pairs)), squeeze=False)
    for p, name in enumerate(pairs):
        m = np.nonzero(pair == p)[0][-360:]
        ax = axes[p][0]
        ts = (t[m] + info["horizonMs"]).astype("datetime64[ms]")
        actual = close[m] * np.exp(y[m] / 1e4)
        ax.fill_between(ts, close[m] * np.exp(lo[m] / 1e4), close[m] * np.exp(hi[m] / 1e4), alpha=0.25, label="p10-p90")
        ax.plot(ts, actual, lw=1.0, color="black", label="actual close")
        ax.plot(ts, close[m] * np.exp(pred[m] / 1e4), lw=1.0, label="predicted")
        ax.plot(ts, close[m], lw=0.8, ls="--", label="persistence")
        ax.set_title(f"{name}: close at target time, last 6 hours of the last test fold")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_actual.png", dpi=90)
    plt.close(fig)

    # 2. Error distribution (return errors in basis points), model vs persistence.
    fig, ax = plt.subplots(figsize=(8, 3.5))
    lim = np.percentile(np.abs(y), 99)
    bins = np.linspace(-lim, lim, 121)
    ax.hist(y, bins=bins, histtype="step", label="persistence (error = actual return)")
    ax.hist(y - pred, bins=bins, histtype="step", label="model")
    ax.set_xlabel("error of the 5-minute return, bps")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "errors.png", dpi=90)
    plt.close(fig)

    # 3. Feature importance: gain and mean |SHAP|.
    imp = result["importance"]
    cols = sorted(imp["shap_mean_abs"], key=lambda c: imp["shap_mean_abs"][c])[-15:]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].barh(cols, [imp["total_gain"].get(c, 0.0) for c in cols])
    axes[0].set_title("total gain")
    axes[1].barh(cols, [imp["shap_mean_abs"][c] for c in cols])
    axes[1].set_title("mean |SHAP contribution|, bps")
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=90)
    plt.close(fig)
    result["figures"] = ["predicted_vs_actual.png", "errors.png", "importance.png"]


def draw_evaluation(inp, out):
    """`python -m cryptocast_trainer figures --input DIR --out DIR`: the figures of `evaluate` / `backtest`.

    Input (written by src/training/python-trainer.ts drawEvaluationFigures): figures-input.f64 (n x 8 float64:
    windowEnd, pair index, close, actual return bps, predicted return, p10, p90, fold or day) and figures-input.json
    (pairs, horizonMs, per_day, per_pair_vol_decile). Prints the file names written, one a line.
    """
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = json.loads((inp / "figures-input.json").read_text())
    a = np.fromfile(inp / "figures-input.f64", dtype="<f8").reshape(-1, 8)
    t, pair, close, y, pred, lo, hi = a[:, 0], a[:, 1].astype(np.int64), a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6]
    pairs = info["pairs"]
    present = [p for p in range(len(pairs)) if (pair == p).any()]
    written = []

    fig, axes = plt.subplots(len(present), 1, figsize=(10, 3.2 * len(present)), squeeze=False)
    for row, p in enumerate(present):
        m = np.nonzero(pair == p)[0][-360:]
        ax = axes[row][0]
        ts = (t[m] + info["horizonMs"]).astype("datetime64[ms]")
        ax.fill_between(ts, close[m] * np.exp(lo[m] / 1e4), close[m] * np.exp(hi[m] / 1e4), alpha=0.25, label="p10-p90")
        ax.plot(ts, close[m] * np.exp(y[m] / 1e4), lw=1.0, color="black", label="actual close")
        ax.plot(ts, close[m] * np.exp(pred[m] / 1e4), lw=1.0, label="predicted")
        ax.plot(ts, close[m], lw=0.8, ls="--", label="persistence")
        ax.set_title(f"{pairs[p]}: close at target time, last 6 hours")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_actual.png", dpi=90)
    plt.close(fig)
    written.append("predicted_vs_actual.png")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    lim = np.percentile(np.abs(y), 99) or 1.0
    bins = np.linspace(-lim, lim, 121)
    ax.hist(y, bins=bins, histtype="step", label="persistence (error = actual return)")
    ax.hist(y - pred, bins=bins, histtype="step", label="model")
    ax.set_xlabel("error of the return, bps")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "errors.png", dpi=90)
    plt.close(fig)
    written.append("errors.png")

    days = info["per_day"]
    if days:
        fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        x = np.arange(len(days))
        skill = np.array([d["skill"] * 100 for d in days])
        axes[0].bar(x, skill, color=np.where(skill >= 0, "tab:green", "tab:red"))
        axes[0].axhline(0, color="black", lw=0.8)
        axes[0].set_ylabel("skill vs persistence, %")
        cov = np.array([d["coverage"] * 100 for d in days])
        axes[1].axhspan(77, 83, color="tab:green", alpha=0.15, label="80 ± 3 %")
        axes[1].plot(x, cov, marker="o", ms=3, label="p10-p90 coverage")
        axes[1].set_ylabel("coverage, %")
        axes[1].legend(fontsize=8)
        step = max(1, len(days) // 15)
        axes[1].set_xticks(x[::step], [d["day"][5:] for d in days][::step], rotation=45, fontsize=8)
        fig.suptitle("per UTC day")
        fig.tight_layout()
        fig.savefig(out / "daily.png", dpi=90)
        plt.close(fig)
        written.append("daily.png")

    # Each pair in deciles of its own rv_60m (pooled deciles would put BTC at the calm end and ETH at the other).
    per_pair = {p: d for p, d in info["per_pair_vol_decile"].items() if d}
    if per_pair:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.axhspan(77, 83, color="tab:green", alpha=0.15, label="80 ± 3 %")
        for pair, dec in per_pair.items():
            x = np.array([d["decile"] for d in dec])
            ax.plot(x, [d["coverage"] * 100 for d in dec], marker="o", label=f"{pair} p10-p90 coverage")
        ax.set_xlabel("decile of the pair's rv_60m at the close (1 = calmest)")
        ax.set_ylabel("coverage, %")
        ax.set_xticks(range(1, 11))
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "coverage_by_volatility.png", dpi=90)
        plt.close(fig)
        written.append("coverage_by_volatility.png")
    print("\n".join(written))
    return 0
