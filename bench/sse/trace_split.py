#!/usr/bin/env python3
"""Split the SSE delivery delay of a kafka-bus cluster run at the broker.

    TRACE_DIR=/tmp/t bench/sse/run_cluster.sh --bus kafka ...
    bench/sse/trace_split.py /tmp/t

Reads DIR/trace-kafka.csv (bench_sse --trace: every event as the first client
of each instance read it, with the event's publish `timestamp`) and
DIR/events-kafka.txt (the events topic, made with
message.timestamp.type=LogAppendTime, dumped by the console consumer with
print.timestamp and print.offset). Event id = offset + 1. For every event it
prints percentiles of

    publish -> append   the publishing instance's producer and the broker's
                        write (LogAppendTime has 1 ms resolution)
    append -> read      the broker's fetch, this instance's bus reader, its
                        SseHub and io thread, the kernel and the client

per instance, and the same for the events whose end-to-end delay was over
--slow-ms (default 100) at any instance: which side the slow ones lost
their time on.
"""
import argparse
import csv
import json
import os
import re
import sys


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(-(-p * len(s) // 1)) - 1))
    return s[k]


def line(name, values):
    if not values:
        return f"  {name:<46} no samples"
    return (f"  {name:<46} p50 {pct(values, 0.5):7.1f}  p90 {pct(values, 0.9):7.1f}  "
            f"p99 {pct(values, 0.99):7.1f}  max {max(values):7.1f} ms  (n {len(values)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--slow-ms", type=float, default=100.0)
    a = ap.parse_args()

    appended = {}  # id -> append time (Unix s)
    pat = re.compile(r"LogAppendTime:(\d+)\s+Offset:(\d+)\s+(\{.*\})\s*$")
    create_time = False
    with open(os.path.join(a.dir, "events-kafka.txt")) as f:
        for raw in f:
            m = pat.search(raw)
            if m:
                appended[int(m.group(2)) + 1] = int(m.group(1)) / 1000.0
            elif raw.startswith("CreateTime:"):
                create_time = True
    if not appended:
        sys.exit("no LogAppendTime records in events-kafka.txt"
                 + (" (the topic has CreateTime: was it made by run_cluster.sh with TRACE_DIR?)"
                    if create_time else ""))

    events = {}  # id -> {endpoint: (publish, read)}
    with open(os.path.join(a.dir, "trace-kafka.csv")) as f:
        for r in csv.DictReader(f):
            events.setdefault(int(r["id"]), {})[r["endpoint"]] = (float(r["timestamp"]), float(r["read"]))
    endpoints = sorted({e for v in events.values() for e in v})
    ids = sorted(i for i in events if i in appended)
    print(f"{len(events)} events traced, {len(appended)} on the topic, {len(ids)} matched; "
          f"instances {', '.join(endpoints)}")

    def split(selected, title):
        print(title)
        w = [(appended[i] - next(iter(events[i].values()))[0]) * 1000 for i in selected]
        print(line("publish -> append (producer)", w))
        for e in endpoints:
            r = [(events[i][e][1] - appended[i]) * 1000 for i in selected if e in events[i]]
            t = [(events[i][e][1] - events[i][e][0]) * 1000 for i in selected if e in events[i]]
            print(line(f"append -> read, clients of {e}", r))
            print(line(f"publish -> read (end to end), {e}", t))

    split(ids, "all events:")
    slow = [i for i in ids if any((rd - pub) * 1000 > a.slow_ms for pub, rd in events[i].values())]
    split(slow, f"events over {a.slow_ms:.0f} ms end to end at some instance ({len(slow)}):")


if __name__ == "__main__":
    main()
