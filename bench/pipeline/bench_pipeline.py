#!/usr/bin/env python3
"""bench_pipeline: Kafka -> embedstream serve -> embeddings topic (+ the embedded
store, + pgvector with --pg-sink embeddings), against a real broker (and a real
PostgreSQL 16 + pgvector), printed beside the standalone encoder on the same
texts, in one run.

  python3 bench/pipeline/bench_pipeline.py [--messages 20000] [--seconds 30]
  python3 bench/pipeline/bench_pipeline.py --pg-sink embeddings --no-store   # issue 13
  python3 bench/pipeline/bench_pipeline.py --precision int8 --no-half         # issue 15

Full load: the input topic is filled first, then the service drains it.
Throughput: messages over the span from the start of the first batch (the first
output record's broker timestamp minus one average batch's encoder time) to the
moment every sink had every message (/stats sources.kafka.acked = N, polled every
0.25 s), so that it covers every batch as the standalone encoder's figure does.
The rate over the span of the output records' timestamps alone is printed too
(what older runs reported: it leaves out the first batch and can end before a
slower sink does). 50% load (skip: --no-half): messages are
produced at half the full-load rate while the service runs; latency is the
output record's timestamp minus the input's `timestamp` field (set by the
producer when it sent the message).

--pg-sink embeddings: a throwaway PostgreSQL (tests/e2e/pg_server.PgServer,
scripts/pg.sh) is started, serve gets its DATABASE_* env and `--pg-sink
embeddings`, so every record is also written as a text + vector row with the
HNSW index maintained (the index is checked to exist after the drain). The
server's CPU time over the drain (postmaster + backends, /proc) is printed, and
so is each sink's write time from /metrics (embedstream_sink_write_seconds).
"""
import argparse
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
sys.path.insert(0, str(REPO / "bench"))
import benchlib  # noqa: E402
from kafka_broker import KafkaBroker  # noqa: E402
from service import Service  # noqa: E402

WORDS = ("stream vector search kafka message event order customer product price latency "
         "throughput model embedding sentence database index query result user session "
         "machine learning network server replica partition offset consumer producer "
         "weather football music travel kitchen garden coffee mountain river city").split()
PG_TEXT_TABLE, PG_EMBEDDINGS_TABLE = "text_messages", "message_embeddings"  # serve's defaults


def corpus(n, seed=3):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))).capitalize() + "."
        out.append((str(uuid.UUID(int=rng.getrandbits(128))), text))
    return out


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run(binary, args, **kw):
    return subprocess.run([str(binary), *args], capture_output=True, **kw)


def consume_all(binary, broker, topic, expect, timeout):
    """The output records, the first one per key (at-least-once may repeat some)."""
    deadline = time.time() + timeout
    recs = []
    while time.time() < deadline:
        p = run(binary, ["consume", topic, "--from-beginning", "--format", "json",
                         "--idle-timeout-ms", "2000", "-b", broker.bootstrap])
        recs = [json.loads(l) for l in p.stdout.decode().split("\n") if l.strip()]
        if len({r["key"] for r in recs}) >= expect:
            break
        time.sleep(1)
    first = {}
    for r in sorted(recs, key=lambda r: r["timestamp_ms"]):
        first.setdefault(r["key"], r)
    return list(first.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=30, help="duration of the 50%% load run")
    ap.add_argument("--batch-max-wait-ms", type=int, default=50)
    ap.add_argument("--pg-sink", choices=["off", "embeddings"], default="off",
                    help="embeddings: also write pgvector (a throwaway PostgreSQL is started)")
    ap.add_argument("--no-store", action="store_true",
                    help="no embedded store (sinks: the output topic, + pgvector with --pg-sink)")
    ap.add_argument("--no-half", action="store_true", help="skip the 50%% load run")
    ap.add_argument("--timeout", type=float, default=1800, help="bound on the full-load drain (s)")
    ap.add_argument("--precision", default=None,
                    help="the encoder's precision for both the service and the standalone "
                         "encoder (EMBEDSTREAM_PRECISION: f32, bf16, int8, auto)")
    ap.add_argument("--binary", default=os.environ.get("EMBEDSTREAM_BIN",
                                                       str(REPO / "build/release/embedstream")))
    args = ap.parse_args()
    if args.precision:
        os.environ["EMBEDSTREAM_PRECISION"] = args.precision  # inherited by every run below
    binary = pathlib.Path(args.binary)
    model_dir = os.environ.get("EMBEDSTREAM_MODEL_DIR", str(REPO / "models/all-MiniLM-L6-v2"))
    os.environ["EMBEDSTREAM_MODEL_DIR"] = model_dir
    work = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-pipeline-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    log = lambda *a: print("[bench]", *a, file=sys.stderr, flush=True)  # noqa: E731
    texts = corpus(args.messages)
    lines = [json.dumps({"id": i, "text": t}) for i, t in texts]
    (work / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    sinks = ["kafka"] + ([] if args.no_store else ["store"]) + (
        ["postgres"] if args.pg_sink == "embeddings" else [])
    sink_args = (["--no-store"] if args.no_store else []) + (
        ["--pg-sink", "embeddings"] if args.pg_sink == "embeddings" else [])

    # 1. The standalone encoder on the same texts (time inside the encoder only): now
    # and again at the end; the better of the two is the peer (the harder bar).
    def standalone_encoder(when):
        r = benchlib.standalone_encoder(binary, work / "corpus.jsonl", when)
        log(f"standalone encoder ({when}): {r['rate']:.0f} msg/s ({r['s']:.1f} s; load average "
            f"{r['load']})")
        return r

    encoders = [standalone_encoder("at start")]

    pg = None
    env_extra = {}
    full = {}
    half = None
    broker = KafkaBroker()
    try:
        if args.pg_sink == "embeddings":
            from pg_server import PgServer
            pg = PgServer()
            pg.start()
            env_extra = pg.env()
            version = pg.psql("SELECT version()").split(",")[0]
            vector = pg.psql("SELECT default_version FROM pg_available_extensions "
                             "WHERE name = 'vector'")
            log(f"PostgreSQL: {version}, pgvector {vector}, on {pg.host}:{pg.port}")
        broker.start()
        # 2. Full load: a full input topic, drained.
        tag = uuid.uuid4().hex[:6]
        tin, tout = f"bench-in-{tag}", f"bench-out-{tag}"
        for t in (tin, tout, tin + "-dlq"):
            broker.create_topic(t, 3)
        run(binary, ["produce", tin, "--raw", "--file", str(work / "corpus.jsonl"),
                     "-b", broker.bootstrap], check=True)
        common = ["--kafka-brokers", broker.bootstrap, "--input-topic", tin, "--output-topic",
                  tout, "--batch-max-wait-ms", str(args.batch_max_wait_ms), *sink_args]
        svc = Service(binary, model_dir, common + ["--group", f"bench-{tag}"], work / "full.log",
                      env_extra=env_extra)
        try:
            svc.wait_ready()
            full["load_start"] = benchlib.loadavg()
            pm = benchlib.postmaster_pid(pg.data_dir) if pg else None
            pg_cpu0 = benchlib.tree_cpu_seconds(pm) if pm else None
            s_cpu0, t_ready = benchlib.cpu_seconds(svc.proc.pid), time.time()
            t_acked = benchlib.wait_acked(svc, len(texts), "kafka", args.timeout)
            if t_acked is None:
                sys.exit(f"not every record acked after {args.timeout} s: {svc.stats()}")
            full["serve_cpu_s"] = benchlib.cpu_seconds(svc.proc.pid) - s_cpu0
            full["pg_cpu_s"] = benchlib.tree_cpu_seconds(pm) - pg_cpu0 if pm else None
            full["load_end"] = benchlib.loadavg()
            full["ready_to_acked_s"] = t_acked - t_ready
            metrics = benchlib.parse_metrics(svc.get("/metrics")[1])
            out = consume_all(binary, broker, tout, len(texts), timeout=300)
        finally:
            svc.stop()
        ts = sorted(r["timestamp_ms"] / 1000.0 for r in out)
        full["outputs"] = len(out)
        full["out_span_s"] = ts[-1] - ts[0]
        full["out_rate"] = (len(ts) - 1) / full["out_span_s"]
        full["embed_s"] = benchlib.metric_sum(metrics, "embedstream_stage_latency_seconds_sum",
                                              source="kafka", stage="embed")
        full["batches"] = benchlib.metric_sum(metrics, "embedstream_batch_size_records_count",
                                              source="kafka")
        full["rate"], full["span_s"] = benchlib.drain_rate(
            len(texts), ts[0], max(t_acked, ts[-1]), full["embed_s"], full["batches"])
        full["sinks"] = benchlib.sink_writes(metrics, "kafka")
        if pg:
            full["pg_rows"] = int(pg.psql(f"SELECT count(*) FROM {PG_EMBEDDINGS_TABLE} "
                                          "WHERE embedding IS NOT NULL"))
            full["pg_index"] = pg.psql("SELECT indexname || ': ' || indexdef FROM pg_indexes "
                                       f"WHERE tablename = '{PG_EMBEDDINGS_TABLE}' "
                                       "AND indexdef ILIKE '%hnsw%'")
        log(f"full load: {full}")

        # 3. 50% load: produced at half the full-load rate while serving.
        if not args.no_half:
            tag = uuid.uuid4().hex[:6]
            tin, tout = f"bench-in-{tag}", f"bench-out-{tag}"
            for t in (tin, tout, tin + "-dlq"):
                broker.create_topic(t, 3)
            common = ["--kafka-brokers", broker.bootstrap, "--input-topic", tin,
                      "--output-topic", tout, "--batch-max-wait-ms", str(args.batch_max_wait_ms),
                      *sink_args]
            svc = Service(binary, model_dir, common + ["--group", f"bench-{tag}"],
                          work / "half.log", env_extra=env_extra)
            try:
                svc.wait_ready()
                time.sleep(3)  # group join
                load0 = benchlib.loadavg()
                rate = full["rate"] * 0.5
                n = min(len(texts), int(rate * args.seconds))
                plain = work / "half.txt"
                plain.write_text("\n".join(t for _, t in texts[:n]) + "\n")
                run(binary, ["produce", tin, "--file", str(plain), "--rate", f"{rate:.1f}",
                             "-b", broker.bootstrap], check=True, timeout=args.seconds * 3 + 60)
                out = consume_all(binary, broker, tout, n, timeout=300)
            finally:
                svc.stop()
            lat = [r["timestamp_ms"] / 1000.0 - json.loads(r["value"])["input_timestamp"]
                   for r in out]
            half = {"rate": rate, "n": n, "outputs": len(out), "p50": percentile(lat, 50),
                    "p99": percentile(lat, 99), "load": f"{load0} -> {benchlib.loadavg()}"}
    finally:
        broker.stop()
        if pg:
            pg.close()
    encoders.append(standalone_encoder("at end"))
    best = max(encoders, key=lambda e: e["rate"])
    encoder_s, encoder_rate = best["s"], best["rate"]

    ratio = full["rate"] / encoder_rate
    # Issue 13 asks 90% with pgvector, issue 15 90% in int8; otherwise 85%.
    target = 0.90 if args.pg_sink == "embeddings" or args.precision == "int8" else 0.85
    print(f"\nbench_pipeline: {len(texts)} messages (6-24 words), 3 partitions, "
          f"batch.max_wait_ms={args.batch_max_wait_ms}, sinks [{', '.join(sinks)}], "
          f"precision {os.environ.get('EMBEDSTREAM_PRECISION', 'f32')}, "
          f"{os.cpu_count()} cores; load average {full['load_start']} at the drain's start, "
          f"{full['load_end']} at its end")
    print("| measure | value | target |")
    print("|---|---|---|")
    passes = "; ".join("%s %.0f/s (load average %s)" % (e["when"], e["rate"], e["load"])
                       for e in encoders)
    print(f"| standalone encoder, same texts (best of 2) | {encoder_rate:.0f} msg/s ({passes}) | |")
    print(f"| Kafka -> {' + '.join(sinks)}, full load (first batch -> every sink acked) | "
          f"{full['rate']:.0f} msg/s | |")
    print(f"| end to end / encoder | {ratio:.1%} | >= {target:.0%}: "
          f"{'met' if ratio >= target else 'NOT met'} |")
    print(f"| (output topic timestamps alone) | {full['out_rate']:.0f} msg/s "
          f"({full['out_rate'] / encoder_rate:.1%}) | |")
    if half:
        print(f"| 50% load: rate offered | {half['rate']:.0f} msg/s ({half['n']} messages) | |")
        print(f"| 50% load: latency p50 | {half['p50'] * 1000:.0f} ms | |")
        print(f"| 50% load: latency p99 | {half['p99'] * 1000:.0f} ms | "
              f"<= {args.batch_max_wait_ms + 100} ms |")
    print()
    busy = f"{full['embed_s'] / full['span_s']:.0%}" if full.get("embed_s") else "?"
    print(f"full load: {full['outputs']} outputs; span {full['span_s']:.1f} s (outputs alone "
          f"{full['out_span_s']:.1f} s); {full['batches']:.0f} batches; encoder busy "
          f"{full['embed_s']:.1f} s = {busy} of the span (standalone: {encoder_s:.1f} s); serve "
          f"CPU {full['serve_cpu_s']:.1f} s over {full['ready_to_acked_s']:.1f} s")
    print(f"sink writes (embedstream_sink_write_seconds, source kafka; the sinks of a batch "
          f"write concurrently): {benchlib.format_sink_writes(full['sinks'], full['span_s'])}")
    if pg:
        print(f"PostgreSQL: {full['pg_rows']} rows with a vector in {PG_EMBEDDINGS_TABLE}; HNSW "
              f"index: {full['pg_index'] or 'NONE'}; server CPU (postmaster + backends) "
              f"{full['pg_cpu_s']:.1f} s over {full['ready_to_acked_s']:.1f} s = "
              f"{full['pg_cpu_s'] / full['ready_to_acked_s']:.2f} of the "
              f"{os.cpu_count()} cores")
    if half:
        print(f"50% load: {half['outputs']} outputs; load average {half['load']}")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
