"""The Kafka pipeline under faults (issue 13), against a real Kafka broker and a
real Qdrant when one is found (qdrant_real.py; else the schema-validating test
server, said loudly in the log):

* Qdrant down for 60 s while a second instance joins the group (consumer
  max.poll.interval.ms = 15000): nobody is evicted ("max poll interval
  exceeded"), the new member gets partitions within 20 s, and afterwards every
  id is in Qdrant exactly as sent.
* A DLQ topic with max.message.bytes = 1024 and 5 KB invalid records: each
  reaches the DLQ cut (error.truncated=true), and the group's committed offsets
  never pass a record that is in neither a sink nor the DLQ.
* Qdrant behind a proxy that answers 413 to bodies over 1 MiB: the sink splits
  the batches, everything arrives.
* SIGTERM while no output record can be delivered: exit 0 within the drain
  timeout, nothing undelivered committed, and a later instance delivers it all.
  The output topic does not exist on a broker with auto-create off (the issue
  suggested min.insync.replicas = 2 on one broker, but Kafka 4.x brokers use an
  effective min ISR of min(min.insync.replicas, replicas) since KIP-966, see
  KAFKA-21377: acks=all writes to such a topic succeed).
  EMBEDSTREAM_ASAN_BIN: run that test with this (ASan) binary instead, and
  require a log without sanitizer reports.
"""
from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import random
import re
import threading
import time
import pathlib

import pytest

import test_kafka as tk
from ecommerce_pipeline import Pipeline, assert_points_as_sent, read_topic, wait_until
from kafka_broker import KafkaBroker, kafka_broker  # noqa: F401  (pytest fixture)
from qdrant_real import qdrant, say  # noqa: F401  (pytest fixture)
from service import Service

EVICTED = re.compile(r"poll interval.*exceeded|MAX_POLL_EXCEEDED", re.IGNORECASE)
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")
MIB = 1 << 20


def log_text(svc) -> str:
    return pathlib.Path(svc.log_path).read_text(errors="replace")


def partitions(svc) -> set:
    return {(p["topic"], p["partition"]) for p in svc.stats()["partitions"]}


# ---------------------------------------------------------------- commits
def positions(records) -> dict:
    """{(partition, offset): record} of consume --format json records."""
    return {(r["partition"], r["offset"]): r for r in records}


def dlq_positions(dlq) -> set:
    """(partition, offset) in the input topic of each dead letter."""
    return {(int(r["headers"]["source.partition"]), int(r["headers"]["source.offset"]))
            for r in dlq}


def snapshot(broker, group, read_topic, output, dlq):
    """The group's committed offsets, THEN what the output topic and the DLQ hold
    (a record that was there at the commit is there now)."""
    committed = broker.committed_offsets(group)
    return committed, {r["key"] for r in read_topic(output)}, dlq_positions(read_topic(dlq))


def assert_commits_covered(snap, inputs, input_topic, id_of):
    """Every input record below a committed offset is in the output topic (by id)
    or in the DLQ (by position). Returns the number of records it checked."""
    committed, delivered, dead = snap
    checked = 0
    for (topic, part), upto in committed.items():
        assert topic == input_topic, committed
        for off in range(upto):
            rec = inputs[(part, off)]
            rid = id_of(rec)
            assert rid in delivered or (part, off) in dead, (
                f"offset {off} of partition {part} is committed ({upto}) but the record is in "
                f"no sink and not in the DLQ: {rec['value'][:120]!r}")
            checked += 1
    return checked


# ---------------------------------------------------------------- a 413 proxy
class TooLargeProxy:
    """An HTTP/1.1 reverse proxy in front of Qdrant that answers 413 to a request
    body over `limit` bytes (after reading it, as nginx does) and forwards the rest.
    `hold(method, path)`: seconds to hold a request before forwarding it (a slow
    network for some requests; test_deletes.py)."""

    def __init__(self, upstream_url: str, limit: int = MIB, hold=None):
        host, port = upstream_url.split("://")[1].rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.limit = limit
        self.hold = hold
        self.refused = 0
        self.forwarded = 0
        self.largest_forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if n > proxy.limit:
                    with proxy._lock:
                        proxy.refused += 1
                    msg = b"<html><body><h1>413 Request Entity Too Large</h1></body></html>"
                    self.send_response(413)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(msg)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(msg)
                    self.close_connection = True
                    return
                with proxy._lock:
                    proxy.forwarded += 1
                    proxy.largest_forwarded = max(proxy.largest_forwarded, n)
                if proxy.hold is not None:
                    time.sleep(proxy.hold(self.command, self.path))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "expect")}
                for attempt in (1, 2):  # again on a fresh connection if Qdrant closed an idle one
                    if getattr(self, "_up", None) is None:
                        self._up = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                    try:
                        self._up.request(self.command, self.path, body=body, headers=headers)
                        resp = self._up.getresponse()
                        data = resp.read()
                        break
                    except OSError:
                        self._up.close()
                        self._up = None
                        if attempt == 2:
                            self.send_error(502)
                            return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- the tests
def test_qdrant_down_60s_while_a_second_instance_joins(run, binary, model_dir, kafka_broker,
                                                       tmp_path, qdrant):
    pl = Pipeline(run, kafka_broker, tmp_path, qdrant, partitions=4,
                  config={"kafka": {"properties": {"max.poll.interval.ms": "15000"}}})
    before = pl.generate(600, seed=31)
    a = pl.serve(binary, model_dir, name="a")
    b = None
    try:
        wait_until(lambda: pl.stored() >= 100, 300, "100 points before the outage", a)
        qdrant.stop()
        down_at = time.time()
        say(f"qdrant down at {time.strftime('%X')}")
        during = pl.generate(600, seed=32)  # records arrive while Qdrant is down
        wait_until(lambda: a.stats()["sinks"]["qdrant"]["available"] is False, 60,
                   "the Qdrant sink of the first instance seen unavailable", a)
        joined_at = time.time()
        b = pl.serve(binary, model_dir, name="b", wait=False)  # Qdrant is still down
        b.wait_ready()
        wait_until(lambda: partitions(b), joined_at + 20 - time.time(),
                   "the second instance to get partitions within 20 s of its start", b, poll=0.2)
        took = time.time() - joined_at
        say(f"second instance got {sorted(partitions(b))} {took:.1f} s after it started")
        wait_until(lambda: partitions(a) and partitions(b) and
                   len(partitions(a) | partitions(b)) == 4 and not partitions(a) & partitions(b),
                   20, "the four partitions split between both instances", b)
        # The outage goes on: both stay members, paused, polled.
        while time.time() < down_at + 60:
            for svc in (a, b):
                assert svc.proc.poll() is None, svc.tail()
            time.sleep(1)
        held = (partitions(a), partitions(b))
        stats_during = (a.stats(), b.stats())
        qdrant.start()
        say(f"qdrant up again after {time.time() - down_at:.0f} s")
        wait_until(lambda: pl.stored() >= 1200, 300, "all 1,200 points after the outage", a,
                   poll=1)
        stats = (a.stats(), b.stats())
    finally:
        assert a.stop() == 0, a.tail()
        if b is not None:
            assert b.stop() == 0, b.tail()
    assert held[0] and held[1], f"an instance lost its partitions during the outage: {held}"
    assert any(s["paused"] for s in stats_during), "intake never paused during the outage"
    for svc in (a, b):
        evicted = EVICTED.findall(log_text(svc))
        assert not evicted, f"{svc.log_path}: {evicted}"
    assert "assigned" in log_text(b)
    events = {**before, **during}
    assert_points_as_sent(qdrant.points(pl.collection), events, every=1)
    assert all(s["dlq"] == 0 for s in stats), "an outage must not send records to the DLQ"
    assert pl.dlq_records() == []


def big_invalid_records(n_each: int) -> "list[bytes]":
    """5 KB records a mapping cannot use, incompressible (the producer uses lz4):
    unterminated JSON, invalid UTF-8, valid JSON without an id."""
    rng = random.Random(41)
    out = []
    for i in range(n_each):
        noise = base64.b64encode(rng.randbytes(3800))
        out.append(b'{"event_id": "bad-json-%d", "product": {"name": "' % i + noise)
        out.append(b'{"event_id": "bad-utf8-%d", "product": {"name": "caf\xc3\x28 ' % i + noise
                   + b'"}}')
        out.append(json.dumps({"product": {"name": f"no id {i}", "description": noise.decode()}})
                   .encode())
    return out


def test_dead_letters_too_large_for_the_dlq_topic_never_let_a_commit_pass_them(
        run, binary, model_dir, kafka_broker, tmp_path, qdrant):
    pl = Pipeline(run, kafka_broker, tmp_path, qdrant)
    kafka_broker.set_topic_config(pl.dlq, **{"max.message.bytes": 1024})
    events = pl.generate(600, seed=41, to_topic=False)
    good = pl.events_file(41).read_bytes().splitlines()
    bad = big_invalid_records(10)
    lines = list(good)
    for k, b in enumerate(bad):  # spread through the stream
        lines.insert((k + 1) * len(good) // (len(bad) + 1) + k, b)
    svc = pl.serve(binary, model_dir)
    snaps = []
    try:
        # In five parts, with a look at the commits while serve works on each.
        for k in range(5):
            pl.produce_raw(lines[k * len(lines) // 5:(k + 1) * len(lines) // 5])
            snaps.append(snapshot(kafka_broker, pl.group, pl.records, pl.output, pl.dlq))

        def drained():
            s = svc.stats()
            return s["consumed"] >= len(lines) and s["inflight"] == 0 and s["dlq"] >= len(bad)

        wait_until(drained, 300, f"all {len(lines)} records read and done with", svc)
        stats = svc.stats()
    finally:
        assert svc.stop() == 0, svc.tail()
    snaps.append(snapshot(kafka_broker, pl.group, pl.records, pl.output, pl.dlq))
    inputs = positions(pl.records(pl.input))
    assert len(inputs) == len(lines)

    def id_of(rec):
        try:
            return json.loads(rec["value"]).get("event_id")
        except ValueError:
            return None

    checked = [assert_commits_covered(s, inputs, pl.input, id_of) for s in snaps]
    say(f"commit snapshots: {len(snaps)}, records below the committed offsets: {checked}")
    assert any(0 < c < len(lines) for c in checked[:-1]), (
        f"no snapshot saw a commit mid-stream, nothing was checked there: {checked}")
    assert checked[-1] == len(lines), "after the stop every record is committed"
    # Each bad record is in the DLQ, cut, and marked so.
    dlq = pl.dlq_records()
    assert len(dlq_positions(dlq)) == len(bad) == len(dlq), [r["headers"] for r in dlq]
    reasons = {}
    for r in dlq:
        h = r["headers"]
        reasons[h["error.reason"]] = reasons.get(h["error.reason"], 0) + 1
        assert h["error.truncated"] == "true" and int(h["error.original_bytes"]) > 5000, h
        original = inputs[(int(h["source.partition"]), int(h["source.offset"]))]["value"]
        assert len(r["value"].encode()) <= 1024
        if h["error.reason"] != "invalid_utf8":
            assert original.startswith(r["value"]) and len(r["value"]) < len(original), h
    assert reasons == {"invalid_json": 10, "invalid_utf8": 10, "missing_id": 10}, reasons
    assert {r["key"] for r in pl.records(pl.output)} == set(events)
    assert stats["dlq"] == len(bad)


def test_qdrant_behind_a_proxy_refusing_bodies_over_1mib_everything_drains(
        run, binary, model_dir, kafka_broker, tmp_path, qdrant):
    with TooLargeProxy(qdrant.url) as proxy:
        # Batches of up to 32k tokens (hundreds of events: several MB of points),
        # all in one upsert request unless the sink splits them.
        pl = Pipeline(run, kafka_broker, tmp_path, qdrant, qdrant_url=proxy.url,
                      config={"batch": {"max_tokens": 32768},
                              "sinks": {"qdrant": {"batch_size": 4096, "timeout_ms": 30000}}})
        events = pl.generate(3000, seed=43)
        svc = pl.serve(binary, model_dir)
        try:
            wait_until(lambda: pl.stored() >= 3000, 600, "all 3,000 points", svc, poll=1)
            stats = svc.stats()
        finally:
            assert svc.stop() == 0, svc.tail()
    say(f"proxy: {proxy.refused} requests refused with 413, {proxy.forwarded} forwarded "
        f"(largest {proxy.largest_forwarded} bytes); sink splits "
        f"{stats['sinks']['qdrant']['splits']}")
    assert proxy.refused > 0, "no request was over 1 MiB: the test proves nothing"
    assert stats["sinks"]["qdrant"]["splits"] > 0
    assert proxy.largest_forwarded <= MIB
    assert_points_as_sent(qdrant.points(pl.collection), events, every=10)
    assert stats["dlq"] == 0 and pl.dlq_records() == []


@pytest.fixture(scope="module")
def broker_without_auto_create():
    with KafkaBroker(config={"auto.create.topics.enable": "false"}) as broker:
        yield broker


def test_sigterm_with_undeliverable_records_exits_0_and_commits_nothing_undelivered(
        run, binary, model_dir, broker_without_auto_create, tmp_path):
    kafka_broker = broker_without_auto_create
    serve_bin = pathlib.Path(os.environ.get("EMBEDSTREAM_ASAN_BIN") or binary)
    say(f"serve binary: {serve_bin}" + (" (ASan)" if serve_bin != binary else ""))
    t = tk.Topics(run, kafka_broker)
    t.output += "-absent"  # nothing can be delivered until it is created
    lines, good, _ = tk.make_input(300, 0, seed=47)
    t.produce(lines, tmp_path)
    svc = Service(serve_bin, model_dir, tk.serve_args(t), tmp_path / "serve.log")
    try:
        svc.wait_ready()
        # Every record embedded and stored, none acknowledged by the output topic:
        # the Kafka sink is waiting on deliveries that cannot happen.
        wait_until(lambda: svc.stats()["sinks"]["store"]["written"] >= 300, 120,
                   "300 records embedded and in the store", svc)
        before = svc.stats()
        t0 = time.time()
        rc = svc.stop(timeout=90)
        took = time.time() - t0
    finally:
        svc.stop()
    say(f"SIGTERM -> exit {rc} in {took:.1f} s (produced {before['produced']})")
    assert rc == 0, svc.tail()
    assert took <= 30 + 10, f"exit took {took:.1f} s, the drain timeout is 30 s"
    log = log_text(svc)
    assert not SANITIZER.search(log), log[-4000:]
    assert before["produced"] == 0, before
    def read(topic):
        return read_topic(run, kafka_broker, topic)

    inputs = positions(read(t.input))
    assert len(inputs) == 300
    dead = read(t.dlq)
    assert dead == [], (f"{len(dead)} records sent to the DLQ for an output failure, e.g. "
                        f"{dead[0]['headers']}")
    snap = snapshot(kafka_broker, t.group, read, t.output, t.dlq)
    assert_commits_covered(snap, inputs, t.input, lambda r: json.loads(r["value"])["id"])
    assert not any(snap[0].values()), f"offsets committed for undelivered records: {snap[0]}"
    assert read(t.output) == []
    # Nothing was lost: once the topic is there, a new instance delivers all.
    kafka_broker.create_topic(t.output)
    svc2 = Service(serve_bin, model_dir, tk.serve_args(t), tmp_path / "serve2.log")
    try:
        svc2.wait_ready()
        out = t.read(t.output, expect=len(good), timeout=240)
    finally:
        assert svc2.stop() == 0, svc2.tail()
    assert {r["key"] for r in out} == set(good)
    assert not SANITIZER.search(log_text(svc2))
