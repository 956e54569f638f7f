"""Peer of the candle service: Quix Streams, trades topic (JSON) → 1-minute tumbling windows by event time (tradeTs),
grace as ours, `.reduce().final()` → candles topic (JSON). Quix's defaults otherwise (RocksDB state with its
changelog topic, at-least-once, commits every 5 s).

    python quix_candles.py BROKER IN_TOPIC OUT_TOPIC GROUP TRADES GRACE_MS STATE_DIR

Stops once it has processed TRADES input records (a backlog of that size) and its output is flushed; prints one
JSON line: seconds from start to that point, trades/s, candles emitted, peak RSS (MiB).
"""

import json
import math
import resource
import sys
import time

from quixstreams import Application
from quixstreams.models import TopicConfig


def main() -> None:
    broker, src, dst, group, total, grace, state = sys.argv[1:8]
    total, grace = int(total), int(grace)
    app = Application(broker_address=broker, consumer_group=group, auto_offset_reset="earliest",
                      state_dir=state, loglevel="WARNING")
    trades = app.topic(src, value_deserializer="json",
                       timestamp_extractor=lambda v, headers, ts, kind: v["tradeTs"])
    # The candles carry their window's time as the message timestamp (Quix's default): years old for a backlog of
    # recorded trades, so the broker's 7-day retention would delete them within minutes. Kept for the comparison.
    candles = app.topic(dst, value_serializer="json",
                        config=TopicConfig(num_partitions=1, replication_factor=1,
                                           extra_config={"retention.ms": "-1"}))
    seen = [0]
    emitted = [0]

    def count(_v) -> None:
        seen[0] += 1
        if seen[0] == total:
            app.stop()

    def init(t: dict) -> dict:
        # Same accumulation as ours (src/candles/aggregator.ts WindowAcc), in the same order.
        return {"open": t["price"], "high": t["price"], "low": t["price"], "close": t["price"],
                "openTs": t["tradeTs"], "closeTs": t["tradeTs"], "volume": t["qty"], "quote": t["price"] * t["qty"],
                "trades": 1, "pair": t["pair"], "exchange": t["exchange"]}

    def reduce(a: dict, t: dict) -> dict:
        p = t["price"]
        if p > a["high"]:
            a["high"] = p
        if p < a["low"]:
            a["low"] = p
        if t["tradeTs"] < a["openTs"]:
            a["openTs"], a["open"] = t["tradeTs"], p
        if t["tradeTs"] >= a["closeTs"]:
            a["closeTs"], a["close"] = t["tradeTs"], p
        a["volume"] += t["qty"]
        a["quote"] += p * t["qty"]
        a["trades"] += 1
        return a

    def candle(w: dict) -> dict:
        a = w["value"]
        emitted[0] += 1
        vwap = a["quote"] / a["volume"] if a["volume"] > 0 else a["close"]
        return {"exchange": a["exchange"], "pair": a["pair"], "windowStart": w["start"], "windowEnd": w["end"],
                "open": a["open"], "high": a["high"], "low": a["low"], "close": a["close"],
                # Rounded as ours does (Math.round(v × 1e10) / 1e10: sums of decimal sizes pick up binary noise).
                "volume": math.floor(a["volume"] * 1e10 + 0.5) / 1e10,
                "trades": a["trades"], "vwap": min(a["high"], max(a["low"], vwap))}

    sdf = app.dataframe(trades)
    sdf = sdf.update(count)
    sdf = sdf.filter(lambda v: v.get("type") == "trade")
    sdf = sdf.tumbling_window(duration_ms=60_000, grace_ms=grace).reduce(reduce, init).final()
    sdf = sdf.apply(candle)
    sdf.to_topic(candles)
    t0 = time.perf_counter()
    app.run()
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "rate": total / dt, "candles": emitted[0],
                      "rssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
