"""Peer of `cryptocast features --store`: Binance daily kline zips → the 32 columns of the feature set `technical` v1
(src/features/technical.ts, docs/features.md) → a DuckDB file or PostgreSQL, the way a pandas user would write it.

    python features_pandas.py talib|ta ZIP_DIR duckdb:FILE|postgres://URL [DUCKDB_PATH]

`talib`: TA-Lib (the C library, through its Python wheel) for every indicator TA-Lib has, pandas for the rest.
`ta`: the `ta` package (pandas-based) for the same indicators.
Each definition follows ours exactly, including warm-up (which rows are empty) and seeding, so the outputs can be
compared value by value (compare_features.py). Where a library's default differs from our definition, the
adjustment is written next to it. Prints one JSON line: seconds for read, compute, write, total.
DUCKDB_PATH: a folder with another DuckDB version to write with (the bench's same-engine comparison).
"""

import glob
import io
import json
import os
import sys
import time
import zipfile

import numpy as np
import pandas as pd

COLUMNS = [
    "ret_1m", "ret_5m", "ret_15m", "ret_60m", "rv_15m", "rv_60m", "sma_20", "ema_12", "ema_26", "macd",
    "macd_signal", "macd_hist", "rsi_14", "bb_pctb_20", "bb_width_20", "atr_14", "stoch_k_14", "stoch_d_3", "obv",
    "vwap_dev_15m", "volume_z_60m", "trades_z_60m", "minute_of_day_sin", "minute_of_day_cos", "day_of_week",
    "sma_20_rel", "ema_12_rel", "ema_26_rel", "macd_rel", "macd_signal_rel", "macd_hist_rel", "atr_14_rel",
]
KLINE = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
         "taker_base", "taker_quote", "ignore"]


def read_klines(folder: str) -> pd.DataFrame:
    frames = []
    for path in sorted(glob.glob(os.path.join(folder, "*.zip"))):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(".csv"))
            with z.open(name) as f:
                frames.append(pd.read_csv(f, header=None, names=KLINE, usecols=range(9)))
    df = pd.concat(frames, ignore_index=True)
    # The pair from the file name, as ours does (BTCUSDT → BTC/USDT).
    symbol = os.path.basename(sorted(glob.glob(os.path.join(folder, "*.zip")))[0]).split("-")[0]
    df["pair"] = symbol[:-4] + "/" + symbol[-4:] if symbol.endswith("USDT") else symbol
    return df


def rolling_std(x: pd.Series, n: int) -> pd.Series:
    return x.rolling(n).std(ddof=0)


def features_talib(d: pd.DataFrame) -> dict:
    import talib

    c, h, lo = d["close"].to_numpy(), d["high"].to_numpy(), d["low"].to_numpy()
    out = {}
    # EMAs seeded with the first value, as ours (trading-signals) does; TA-Lib seeds with the mean of the first n
    # (its Metastock mode, which seeds with the first value, is not reachable from this wrapper:
    # set_compatibility does not stick). n − 1 copies of the first value in front make TA-Lib's seed that value.
    ema12 = _talib_ema_from_first(c, 12)
    ema26 = _talib_ema_from_first(c, 26)
    macd = ema12 - ema26  # ours: from the 26th close on
    signal = np.full(len(c), np.nan)
    if len(c) >= 26:
        signal[25:] = _talib_ema_from_first(macd[25:], 9)  # the signal line starts with the first MACD value
    out["sma_20"] = talib.SMA(c, 20)
    out["ema_12"], out["ema_26"] = ema12, ema26
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal
    rsi = talib.RSI(c, 14)  # Wilder, seeded with the mean of the first 14 changes (as ours)
    out["rsi_14"] = rsi
    up, mid, low_band = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    out["_bb"] = (up, mid, low_band)
    # ATR: ours counts the first candle's true range as high − low (no previous close) and seeds Wilder's average
    # with the mean of the first 14 ranges; TA-Lib starts at the second candle. A candle prepended with the first
    # close gives TA-Lib the same first range.
    h1 = np.concatenate(([h[0]], h)) if len(h) else h
    l1 = np.concatenate(([lo[0]], lo)) if len(lo) else lo
    c1 = np.concatenate(([c[0]], c)) if len(c) else c
    out["atr_14"] = talib.ATR(h1, l1, c1, 14)[1:]
    k, dd = talib.STOCH(h, lo, c, fastk_period=14, slowk_period=1, slowk_matype=0, slowd_period=3, slowd_matype=0)
    out["stoch_k_14"], out["stoch_d_3"] = k, dd
    return out


def _talib_ema_from_first(x: np.ndarray, n: int) -> np.ndarray:
    import talib

    if len(x) == 0:
        return x.copy()
    return talib.EMA(np.concatenate((np.full(n - 1, x[0]), x)), n)[n - 1 :]


def _ema_all(x: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(x).ewm(span=n, adjust=False).mean().to_numpy()


def features_ta(d: pd.DataFrame) -> dict:
    import ta

    c, h, lo = d["close"], d["high"], d["low"]
    out = {}
    out["sma_20"] = ta.trend.sma_indicator(c, 20).to_numpy()
    ema12 = ta.trend.ema_indicator(c, 12).to_numpy()  # ewm(adjust=False): seeded with the first close, as ours
    ema26 = ta.trend.ema_indicator(c, 26).to_numpy()
    m = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    macd = m.macd().to_numpy()
    # ta's signal line waits for 9 MACD values (min_periods); ours starts at the first: same recurrence, earlier.
    signal = np.full(len(c), np.nan)
    if len(c) >= 26:
        signal[25:] = _ema_all(macd[25:], 9)
    out["ema_12"], out["ema_26"] = ema12, ema26
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal
    # ta's RSI seeds Wilder's average with the first change (ewm); ours with the mean of the first 14: not the same
    # series for a long while, so the RSI is Wilder's own recurrence here, on ta's gains and losses.
    diff = c.diff().to_numpy()
    out["rsi_14"] = _wilder_rsi(diff, 14)
    bb = ta.volatility.BollingerBands(c, 20, 2)
    out["_bb"] = (bb.bollinger_hband().to_numpy(), bb.bollinger_mavg().to_numpy(), bb.bollinger_lband().to_numpy())
    atr = ta.volatility.AverageTrueRange(h, lo, c, 14).average_true_range().to_numpy().copy()
    atr[:13] = np.nan  # ta writes 0 during the warm-up
    out["atr_14"] = atr
    st = ta.momentum.StochasticOscillator(h, lo, c, 14, 3)
    k = st.stoch().to_numpy().copy()
    dd = st.stoch_signal().to_numpy().copy()
    k[: 15] = np.nan  # ours gives %K and %D together, once %D has its 3 values
    out["stoch_k_14"], out["stoch_d_3"] = k, dd
    return out


def _wilder_rsi(diff: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI seeded with the mean of the first n changes: pandas' ewm (alpha 1/n) started from that mean."""
    out = np.full(len(diff), np.nan)
    if len(diff) <= n:
        return out
    gains = np.where(diff > 0, diff, 0.0)
    losses = np.where(diff > 0, 0.0, -diff)
    g, l = gains[n:].copy(), losses[n:].copy()
    g[0], l[0] = gains[1 : n + 1].mean(), losses[1 : n + 1].mean()
    ag = pd.Series(g).ewm(alpha=1 / n, adjust=False).mean().to_numpy()
    al = pd.Series(l).ewm(alpha=1 / n, adjust=False).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n:] = np.where(al == 0, 100.0, 100 - 100 / (ag / al + 1))
    return out


def segment_features(d: pd.DataFrame, lib: str) -> pd.DataFrame:
    """One contiguous run of minutes of one pair (ours restarts every indicator at a gap)."""
    c = d["close"]
    n = len(d)
    out = pd.DataFrame(index=d.index)
    logc = np.log(c)
    r = logc.diff()
    out["ret_1m"] = r
    for k, col in ((5, "ret_5m"), (15, "ret_15m"), (60, "ret_60m")):
        out[col] = logc - logc.shift(k)
    r2 = r * r
    out["rv_15m"] = np.sqrt(r2.rolling(15).sum())
    out["rv_60m"] = np.sqrt(r2.rolling(60).sum())
    ind = features_talib(d) if lib == "talib" else features_ta(d)
    up, mid, lowb = ind.pop("_bb")
    for k, v in ind.items():
        out[k] = v
    width = up - lowb
    out["bb_pctb_20"] = np.where(width > 0, (c - lowb) / np.where(width > 0, width, 1), 0.5)
    out.loc[np.isnan(mid), "bb_pctb_20"] = np.nan
    out["bb_width_20"] = width / mid
    # RSI: ours says 100 when the average loss is 0 (TA-Lib says 0 when gains are 0 as well).
    # OBV over the last 60 minutes: Σ sign(Δclose)·volume.
    obv_step = np.sign(c.diff()) * d["volume"]
    out["obv"] = obv_step.rolling(60).sum()
    vwap = np.where(d["volume"] > 0, d["quote_volume"] / d["volume"].where(d["volume"] > 0, 1), c)
    pv = pd.Series(vwap * d["volume"].to_numpy(), index=d.index).rolling(15).sum()
    v15 = d["volume"].rolling(15).sum()
    out["vwap_dev_15m"] = np.where(v15 > 0, c / (pv / v15.where(v15 > 0, 1)) - 1, 0.0)
    out.loc[v15.isna(), "vwap_dev_15m"] = np.nan
    for src, col in (("volume", "volume_z_60m"), ("trades", "trades_z_60m")):
        x = d[src].astype("float64")
        sd = rolling_std(x, 60)
        z = np.where(sd > 0, (x - x.rolling(60).mean()) / sd.where(sd > 0, 1), 0.0)
        out[col] = np.where(sd.isna(), np.nan, z)
    t = pd.to_datetime(d["open_time"], unit="ms", utc=True)
    minute = t.dt.hour * 60 + t.dt.minute
    out["minute_of_day_sin"] = np.sin(2 * np.pi * minute / 1440)
    out["minute_of_day_cos"] = np.cos(2 * np.pi * minute / 1440)
    out["day_of_week"] = (t.dt.day_of_week + 1) % 7  # JavaScript's getUTCDay: Sunday = 0
    for col in ("sma_20", "ema_12", "ema_26"):
        out[col + "_rel"] = out[col] / c - 1
    for col in ("macd", "macd_signal", "macd_hist", "atr_14"):
        out[col + "_rel"] = out[col] / c
    # Ours gives the EMAs once they have their n inputs (trading-signals' isStable), MACD and its signal from the
    # 26th close.
    out.iloc[: min(n, 11), out.columns.get_loc("ema_12")] = np.nan
    out.iloc[: min(n, 11), out.columns.get_loc("ema_12_rel")] = np.nan
    for col in ("ema_26", "ema_26_rel", "macd", "macd_signal", "macd_hist", "macd_rel", "macd_signal_rel",
                "macd_hist_rel"):
        out.iloc[: min(n, 25), out.columns.get_loc(col)] = np.nan
    return out[COLUMNS]


def compute(df: pd.DataFrame, lib: str) -> pd.DataFrame:
    # Candles ours refuses (check()) never touch the state; none in this data, but keep the rule.
    ok = (df[["open", "high", "low", "close"]] > 0).all(axis=1) & (df["volume"] >= 0) & (df["high"] >= df["low"])
    df = df[ok].reset_index(drop=True)
    # A gap (a missing minute) restarts every indicator.
    seg = ((df["open_time"].diff() != 60_000) | (df["pair"] != df["pair"].shift())).cumsum()
    feats = pd.concat([segment_features(g, lib) for _, g in df.groupby(seg, sort=False)])
    out = pd.DataFrame({
        "pair": df["pair"],
        "window_end": df["open_time"] + 60_000,
        "window_start": df["open_time"],
        "exchange": "binance",
        "close": df["close"],
    })
    out["ready"] = feats.drop(columns=[]).notna().all(axis=1)
    return pd.concat([out, feats], axis=1)


def ddl(t: str) -> str:
    cols = ", ".join(f'"{c}" DOUBLE PRECISION' for c in COLUMNS)
    return (f"CREATE TABLE {t} (pair VARCHAR NOT NULL, window_end BIGINT NOT NULL, window_start BIGINT NOT NULL, "
            f"exchange VARCHAR NOT NULL, close DOUBLE PRECISION NOT NULL, ready BOOLEAN NOT NULL, {cols}, "
            f"PRIMARY KEY (pair, window_end))")


def write(out: pd.DataFrame, target: str) -> None:
    t = "fs_technical_v1"
    if target.startswith("duckdb:"):
        import duckdb

        path = target[len("duckdb:"):]
        if os.path.exists(path):
            os.remove(path)
        con = duckdb.connect(path)
        con.execute(ddl(t))
        con.execute(f"INSERT INTO {t} SELECT * FROM out")  # DuckDB scans the DataFrame in place
        con.close()
    else:
        import psycopg

        with psycopg.connect(target) as con:
            con.execute(f"DROP TABLE IF EXISTS {t}")
            con.execute(ddl(t))
            # pandas' documented fast path into PostgreSQL: to_csv into COPY … FROM STDIN.
            buf = io.StringIO()
            out.to_csv(buf, index=False, header=False, float_format=None)
            with con.cursor().copy(f"COPY {t} FROM STDIN (FORMAT csv)") as cp:
                cp.write(buf.getvalue())


def main() -> None:
    lib, folder, target = sys.argv[1], sys.argv[2], sys.argv[3]
    if len(sys.argv) > 4:
        sys.path.insert(0, sys.argv[4])
    import duckdb
    t0 = time.perf_counter()
    df = read_klines(folder)
    t1 = time.perf_counter()
    out = compute(df, lib)
    t2 = time.perf_counter()
    write(out, target)
    t3 = time.perf_counter()
    print(json.dumps({"rows": len(out), "read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "seconds": t3 - t0,
                      "duckdb": duckdb.__version__}))


if __name__ == "__main__":
    main()
