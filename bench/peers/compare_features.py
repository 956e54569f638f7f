"""Compares two feature tables value by value: every row of one is in the other (same pair and window_end), every
column is empty in both or within the tolerance in both: |a − b| ≤ tol · max(1, |a|).

    python compare_features.py TOL A B     (A, B: duckdb:FILE or postgres://URL, table fs_technical_v1)

Prints one JSON line: rows on each side, rows missing on either side, and per column the count of rows that differ
(an empty value on one side only counts as a difference) with the largest difference seen.
"""

import json
import sys

import numpy as np

from features_pandas import COLUMNS

TABLE = "fs_technical_v1"


def load(target: str):
    if target.startswith("duckdb:"):
        import duckdb

        con = duckdb.connect(target[len("duckdb:"):], read_only=True)
        df = con.execute(f"SELECT * FROM {TABLE} ORDER BY pair, window_end").df()
        con.close()
        return df
    import pandas as pd
    import psycopg

    with psycopg.connect(target) as con:
        cur = con.execute(f"SELECT * FROM {TABLE} ORDER BY pair, window_end")
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


def main() -> None:
    tol = float(sys.argv[1])
    a, b = load(sys.argv[2]), load(sys.argv[3])
    m = a.merge(b, on=["pair", "window_end"], how="outer", suffixes=("_a", "_b"), indicator=True)
    both = m[m["_merge"] == "both"]
    report = {
        "rows_a": len(a), "rows_b": len(b),
        "only_a": int((m["_merge"] == "left_only").sum()), "only_b": int((m["_merge"] == "right_only").sum()),
        "tolerance": tol, "columns": {},
    }
    bad = report["only_a"] + report["only_b"]
    for col in ["window_start", "close", "ready", *COLUMNS]:
        x = both[col + "_a"].to_numpy(dtype="float64", na_value=np.nan)
        y = both[col + "_b"].to_numpy(dtype="float64", na_value=np.nan)
        nx, ny = np.isnan(x), np.isnan(y)
        diff = np.abs(np.where(nx | ny, 0.0, x - y))
        limit = tol * np.maximum(1.0, np.abs(np.where(nx, 0.0, x)))
        wrong = (nx != ny) | (diff > limit)
        n = int(wrong.sum())
        bad += n
        report["columns"][col] = {"differ": n, "max_abs_diff": float(diff.max()) if len(diff) else 0.0}
    report["agree"] = bad == 0
    print(json.dumps(report))


if __name__ == "__main__":
    main()
