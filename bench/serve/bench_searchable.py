#!/usr/bin/env python3
"""POST /messages -> searchable latency of `embedstream serve` (embedded default).

Starts the built binary on a fresh store, follows GET /events, and POSTs short
messages at a low, steady rate from one connection. For each message:
  ack        POST sent -> 202 received (the commit + fsync: "durable")
  searchable POST sent -> message_completed seen on the SSE stream (vector
             stored and indexed: a search finds it from then on)
and, from the events' own timestamps, where the time went: waiting for the
encoder (message_received -> message_processing), the encoder's Embed call
(message_processing -> stage 2/3), the sinks (stage 2/3 -> 3/3). A sample of messages is then searched by its
own text to check it really is searchable. Prints p50/p99 of each, and the
ratio of searchable latency to the encoder's own time for the message (issue
13's target: p99 searchable <= 1.3x the encoder's time; the encoder's time is
message_processing -> stage_completed 2/3, which the runtime publishes right
before and after Embedder::Embed of the message's batch).

Then (--burst N, default 2000) a full-load phase: N messages POSTed from 8
connections at once; prints the 202 rate (group commit: concurrent POSTs share
an fsync) and the embedding throughput until all are searchable, beside
`embedstream embed` on the same texts in the same run (the encoder alone).

Usage: bench/serve/bench_searchable.py [--rate 20] [--seconds 20] [--sync full|normal]
                                       [--burst 2000]
"""
import concurrent.futures
import subprocess
import argparse
import http.client
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
from service import Service  # noqa: E402
sys.path.insert(0, str(REPO / "bench"))
import benchlib  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def follow(port, sink, stop):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", "/events")
    resp = conn.getresponse()
    frame = {}
    for raw in resp:
        if stop.is_set():
            break
        line = raw.decode().rstrip("\r\n")
        if not line:
            if "data" in frame:
                d = json.loads(frame["data"])
                sink.append((time.time(), d))
            frame = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            frame[k] = v.lstrip(" ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sync", choices=["full", "normal"], default="full")
    ap.add_argument("--burst", type=int, default=2000, help="messages in the full-load phase")
    ap.add_argument("--binary", default=os.environ.get("EMBEDSTREAM_BIN",
                                                        REPO / "build/release/embedstream"))
    ap.add_argument("--model-dir", default=os.environ.get("EMBEDSTREAM_MODEL_DIR",
                                                           REPO / "models/all-MiniLM-L6-v2"))
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-searchable-"))
    cfg = tmp / "serve.yaml"
    cfg.write_text(f"store:\n  sync: {args.sync}\n")
    svc = Service(args.binary, args.model_dir, ["--config", str(cfg), "--data-dir",
                                                str(tmp / "data")], tmp / "serve.log")
    events, stop = [], threading.Event()
    try:
        svc.wait_ready()
        t = threading.Thread(target=follow, args=(svc.port, events, stop), daemon=True)
        t.start()
        time.sleep(0.5)
        load0 = benchlib.loadavg()
        conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
        n = int(args.rate * args.seconds)
        sent, acked, texts = {}, {}, {}
        start = time.time()
        for i in range(n):
            due = start + i / args.rate
            time.sleep(max(0.0, due - time.time()))
            mid = f"lat-{i}"
            texts[mid] = f"Latency probe {i}: the quick brown fox jumps over the lazy dog."
            body = json.dumps({"id": mid, "message": texts[mid]})
            sent[mid] = time.time()
            conn.request("POST", "/messages", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 202, r.status
            acked[mid] = time.time()
        deadline = time.time() + 60
        while time.time() < deadline:
            done = {d["message_id"] for _, d in list(events) if d["type"] == "message_completed"}
            if len(done & set(sent)) == n:
                break
            time.sleep(0.1)
        stop.set()
        load1 = benchlib.loadavg()
        by = {}
        for seen, d in list(events):
            by.setdefault(d["message_id"], []).append((seen, d))
        ack_ms, search_ms, wait_ms, embed_ms, store_ms, ratio = [], [], [], [], [], []
        for mid in sent:
            evs = by.get(mid, [])
            ts = {}
            for seen, d in evs:
                key = d["type"] if d["type"] != "stage_completed" else f"stage{d['stage']}"
                ts[key] = (seen, d["timestamp"])
            if "message_completed" not in ts:
                continue
            ack_ms.append((acked[mid] - sent[mid]) * 1e3)
            search_ms.append((ts["message_completed"][0] - sent[mid]) * 1e3)
            wait_ms.append((ts["message_processing"][1] - ts["message_received"][1]) * 1e3)
            embed_ms.append((ts["stage2"][1] - ts["message_processing"][1]) * 1e3)
            store_ms.append((ts["stage3"][1] - ts["stage2"][1]) * 1e3)
            ratio.append(search_ms[-1] / max(1e-6, embed_ms[-1]))
        # Really searchable: a sample found by its own text.
        sample = list(sent)[:: max(1, n // 20)]
        found = 0
        for mid in sample:
            conn.request("POST", "/embeddings/search",
                         json.dumps({"query": texts[mid], "limit": 1}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            res = json.loads(r.read())
            found += res["results"] and res["results"][0]["id"] == mid
        burst = run_burst(svc, args) if args.burst > 0 else None
        rss = 0
        with open(f"/proc/{svc.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) // 1024
    finally:
        stop.set()
        svc.stop()

    print(f"embedstream serve, POST -> searchable, {n} messages at {args.rate:g}/s, "
          f"store.sync={args.sync}, {os.cpu_count()} cores; load average {load0} at the "
          f"start, {load1} at the end")
    print(f"completed: {len(search_ms)}/{n}; sample searched by its own text, found first: "
          f"{found}/{len(sample)}; server RSS {rss} MiB")
    print(f"{'':24}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, xs in [("POST -> 202 (durable)", ack_ms), ("POST -> searchable", search_ms),
                     ("  queued for worker", wait_ms), ("  embed (encoder)", embed_ms),
                     ("  store + index", store_ms)]:
        print(f"{name:24}{pct(xs, 50):10.1f}{pct(xs, 99):10.1f}{max(xs) if xs else 0:10.1f}")
    if embed_ms:
        r99 = pct(search_ms, 99) / pct(embed_ms, 99)
        print(f"ratio: searchable p99 / embed p99 = {r99:.2f}x (target <= 1.3x: "
              f"{'met' if r99 <= 1.3 else 'NOT met'}); searchable p50 / embed p50 = "
              f"{pct(search_ms, 50) / pct(embed_ms, 50):.2f}x; per message searchable / its "
              f"own embed: p50 {pct(ratio, 50):.2f}x, p99 {pct(ratio, 99):.2f}x "
              f"(1.0 would be the encoder alone)")
    if burst:
        print(f"full load: {args.burst} messages from 8 connections: 202s at "
              f"{burst['post_rate']:.0f}/s ({burst['commits']} commits, "
              f"{args.burst / max(1, burst['commits']):.1f} messages per fsync); "
              f"all searchable after {burst['total_s']:.2f} s")
        print(f"embedding throughput {burst['embed_rate']:.0f} msg/s vs `embedstream embed` on the "
              f"same texts {burst['encoder_rate']:.0f} msg/s: "
              f"{burst['embed_rate'] / burst['encoder_rate']:.0%} of the encoder alone")
    return 0 if len(search_ms) == n and found == len(sample) else 1


def run_burst(svc, args):
    texts = [f"Burst message {i}: {w} sentences about topic {i % 37} and more words to embed."
             for i, w in zip(range(args.burst), ["short", "medium-length", "slightly longer"] * args.burst)]
    before = json.loads(svc.get("/stats")[1])

    def post(i):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=60)
        conn.request("POST", "/messages", json.dumps({"id": f"burst-{i}", "message": texts[i]}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 202, r.status

    local = threading.local()
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(args.burst)))
    t_posted = time.time()
    target = before["embedded"] + args.burst
    while json.loads(svc.get("/stats")[1])["embedded"] < target:
        time.sleep(0.05)
    t_done = time.time()
    after = json.loads(svc.get("/stats")[1])
    # The encoder alone, same texts, same machine, same run (model load excluded
    # by timing a 1-line run and subtracting it).
    env = dict(os.environ, EMBEDSTREAM_MODEL_DIR=str(args.model_dir))
    lines = "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts))

    def embed_time(data):
        t = time.time()
        subprocess.run([str(args.binary), "embed"], input=data.encode(), env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.time() - t
    overhead = embed_time(lines.split("\n")[0] + "\n")
    enc_s = max(1e-3, embed_time(lines) - overhead)
    return {"post_rate": args.burst / (t_posted - t0), "commits": after["commits"] - before["commits"],
            "total_s": t_done - t0, "embed_rate": args.burst / (t_done - t0),
            "encoder_rate": args.burst / enc_s}


if __name__ == "__main__":
    sys.exit(main())
