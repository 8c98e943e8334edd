#!/usr/bin/env python3
"""bench_pipeline: Kafka -> embedstream serve -> embeddings topic, against a
real broker, printed beside the standalone encoder on the same texts, in one run.

  python3 bench/pipeline/bench_pipeline.py [--messages 20000] [--seconds 30]

Full load: the input topic is filled first, then the service drains it
(throughput from the output records' broker timestamps). 50% load: messages
are produced at half the full-load rate while the service runs; latency is the
output record's timestamp minus the input's `timestamp` field (set by the
producer when it sent the message)."""
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
from kafka_broker import KafkaBroker  # noqa: E402
from service import Service  # noqa: E402

WORDS = ("stream vector search kafka message event order customer product price latency "
         "throughput model embedding sentence database index query result user session "
         "machine learning network server replica partition offset consumer producer "
         "weather football music travel kitchen garden coffee mountain river city").split()


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
    deadline = time.time() + timeout
    recs = []
    while time.time() < deadline:
        p = run(binary, ["consume", topic, "--from-beginning", "--format", "json",
                         "--idle-timeout-ms", "2000", "-b", broker.bootstrap])
        recs = [json.loads(l) for l in p.stdout.decode().split("\n") if l.strip()]
        if len({r["key"] for r in recs}) >= expect:
            break
        time.sleep(1)
    return recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=30, help="duration of the 50%% load run")
    ap.add_argument("--batch-max-wait-ms", type=int, default=50)
    ap.add_argument("--binary", default=os.environ.get("EMBEDSTREAM_BIN",
                                                       str(REPO / "build/release/embedstream")))
    args = ap.parse_args()
    binary = pathlib.Path(args.binary)
    model_dir = os.environ.get("EMBEDSTREAM_MODEL_DIR", str(REPO / "models/all-MiniLM-L6-v2"))
    os.environ["EMBEDSTREAM_MODEL_DIR"] = model_dir
    work = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-pipeline-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    texts = corpus(args.messages)
    lines = [json.dumps({"id": i, "text": t}) for i, t in texts]
    (work / "corpus.jsonl").write_text("\n".join(lines) + "\n")

    # 1. The standalone encoder on the same texts (time inside the encoder only).
    p = run(binary, ["embed", "--input", str(work / "corpus.jsonl")])
    m = re.search(rb"encoder time ([0-9.]+) s \(([0-9.]+) records/s\)", p.stderr)
    encoder_rate = float(m.group(2))

    broker = KafkaBroker()
    broker.start()
    try:
        # 2. Full load: a full input topic, drained.
        tag = uuid.uuid4().hex[:6]
        tin, tout = f"bench-in-{tag}", f"bench-out-{tag}"
        for t in (tin, tout, tin + "-dlq"):
            broker.create_topic(t, 3)
        run(binary, ["produce", tin, "--raw", "--file", str(work / "corpus.jsonl"),
                     "-b", broker.bootstrap], check=True)
        common = ["--kafka-brokers", broker.bootstrap, "--input-topic", tin, "--output-topic",
                  tout, "--batch-max-wait-ms", str(args.batch_max_wait_ms)]
        svc = Service(binary, model_dir, common + ["--group", f"bench-{tag}"], work / "full.log")
        svc.wait_ready()
        out = consume_all(binary, broker, tout, len(texts), timeout=900)
        svc.stop()
        ts = sorted(r["timestamp_ms"] for r in out)
        full_rate = (len(ts) - 1) / ((ts[-1] - ts[0]) / 1000.0)

        # 3. 50% load: produced at half the full-load rate while serving.
        tag = uuid.uuid4().hex[:6]
        tin, tout = f"bench-in-{tag}", f"bench-out-{tag}"
        for t in (tin, tout, tin + "-dlq"):
            broker.create_topic(t, 3)
        common = ["--kafka-brokers", broker.bootstrap, "--input-topic", tin, "--output-topic",
                  tout, "--batch-max-wait-ms", str(args.batch_max_wait_ms)]
        svc = Service(binary, model_dir, common + ["--group", f"bench-{tag}"], work / "half.log")
        svc.wait_ready()
        time.sleep(3)  # group join
        rate = full_rate * 0.5
        n = min(len(texts), int(rate * args.seconds))
        plain = work / "half.txt"
        plain.write_text("\n".join(t for _, t in texts[:n]) + "\n")
        run(binary, ["produce", tin, "--file", str(plain), "--rate", f"{rate:.1f}",
                     "-b", broker.bootstrap], check=True)
        out = consume_all(binary, broker, tout, n, timeout=300)
        svc.stop()
        lat = [r["timestamp_ms"] / 1000.0 - json.loads(r["value"])["input_timestamp"] for r in out]
    finally:
        broker.stop()

    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    print(f"\nbench_pipeline: {len(texts)} messages (6-24 words), 3 partitions, "
          f"batch.max_wait_ms={args.batch_max_wait_ms}, {os.cpu_count()} cores")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| standalone encoder, same texts | {encoder_rate:.0f} msg/s | |")
    print(f"| Kafka -> embeddings, full load | {full_rate:.0f} msg/s | |")
    print(f"| end to end / encoder | {full_rate / encoder_rate:.0%} | >= 85% |")
    print(f"| 50% load: rate offered | {rate:.0f} msg/s ({n} messages) | |")
    print(f"| 50% load: latency p50 | {p50:.0f} ms | |")
    print(f"| 50% load: latency p99 | {p99:.0f} ms | <= {args.batch_max_wait_ms + 100} ms |")


if __name__ == "__main__":
    main()
