"""Compares two candle topics (JSON values) candle by candle: same (exchange, pair, windowStart) set, and per candle
open, high, low, close, volume, trades and vwap exactly equal (the same arithmetic in the same order on both sides).

    python compare_candles.py BROKER TOPIC_A TOPIC_B

A side may emit the last window(s) of a pair later than the other (ours closes a window on the pair's own stream
time, Quix on its partition's); such trailing candles are counted apart and not compared. Prints one JSON line.
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition

FIELDS = ["open", "high", "low", "close", "volume", "trades", "vwap"]


def read(broker: str, topic: str) -> dict:
    c = Consumer({"bootstrap.servers": broker, "group.id": "compare", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=30).topics[topic]
    out = {}
    for p in md.partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if hi <= lo:
            continue
        c.assign([TopicPartition(topic, p, lo)])
        pos = lo
        while pos < hi:
            for m in c.consume(10_000, timeout=5):
                if m.error():
                    raise RuntimeError(m.error())
                v = json.loads(m.value())
                out[(v["exchange"], v["pair"], v["windowStart"])] = v
                pos = m.offset() + 1
    c.close()
    return out


def main() -> None:
    broker, ta, tb = sys.argv[1:4]
    a, b = read(broker, ta), read(broker, tb)
    # The last window both sides closed, per pair: later ones are trailing.
    end = {}
    for side in (a, b):
        mx = {}
        for k in side:
            mx[k[:2]] = max(mx.get(k[:2], k[2]), k[2])
        for pk, w in mx.items():
            end[pk] = min(end.get(pk, w), w)
    common = [k for k in a if k in b]
    differ = [k for k in common if any(a[k].get(f) != b[k].get(f) for f in FIELDS)]
    missing = [k for k in list(a) + list(b) if (k not in a or k not in b) and k[2] <= end.get(k[:2], -1)]
    trailing = [k for k in list(a) + list(b) if (k not in a or k not in b) and k[2] > end.get(k[:2], -1)]
    print(json.dumps({"a": len(a), "b": len(b), "compared": len(common), "differ": len(differ),
                      "missing": len(missing), "trailing": len(trailing),
                      "identical": len(differ) == 0 and len(missing) == 0 and len(common) > 0,
                      "example": [a.get(differ[0]), b.get(differ[0])] if differ else None}))


if __name__ == "__main__":
    main()
