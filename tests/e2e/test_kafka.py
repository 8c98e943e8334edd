"""Kafka streaming against a real Apache Kafka broker (scripts/kafka.sh):
`embedstream serve` consumes text-messages, embeds, publishes seed 000
`embeddings` records, sends bad records to the DLQ, and loses nothing across
kill -9, a second instance leaving the group, and a broker outage."""
import base64
import http.client
import json
import math
import random
import subprocess
import time
import uuid

import pytest

from kafka_broker import kafka_broker  # noqa: F401  (pytest fixture)
from service import Service

WORDS = ("stream vector search kafka message event order customer product price latency "
         "throughput model embedding sentence database index query result user session "
         "machine learning network server replica partition offset consumer producer").split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_input(n_good, n_bad, seed=7, bad_kinds=("json", "missing", "type", "utf8", "large")):
    """Lines (bytes) for `produce --raw --file`, the good ids/texts, the bad count."""
    rng = random.Random(seed)
    lines, good = [], {}
    for i in range(n_good):
        text = sentence(rng, rng.randint(3, 40))
        mid = str(uuid.UUID(int=rng.getrandbits(128)))
        if i % 3 == 0:   # seed 000
            line = json.dumps({"id": mid, "text": text, "timestamp": time.time(), "source": "e2e"})
        elif i % 3 == 1:  # seed 001
            line = json.dumps({"id": mid, "text": text})
        else:            # seed 001 "message" spelling
            line = json.dumps({"id": mid, "message": text})
        lines.append(line.encode())
        good[mid] = text
    bad = []
    for i in range(n_bad):
        kind = bad_kinds[i % len(bad_kinds)]
        if kind == "json":
            b = b'{"id": "bad-%d", "text": ' % i
        elif kind == "missing":
            b = b'{"id": "bad-%d"}' % i
        elif kind == "type":
            b = b'{"id": "bad-%d", "text": 42}' % i
        elif kind == "utf8":
            b = b'{"id": "bad-%d", "text": "caf\xc3"}' % i
        else:
            b = json.dumps({"id": f"bad-{i}", "text": "x" * 30000}).encode()
        bad.append(b)
    # Bad records spread through the stream.
    step = max(1, len(lines) // (n_bad + 1))
    for k, b in enumerate(bad):
        lines.insert((k + 1) * step + k, b)
    return lines, good, len(bad)


class Topics:
    def __init__(self, run, broker, partitions=3):
        tag = uuid.uuid4().hex[:8]
        self.input = f"text-messages-{tag}"
        self.output = f"embeddings-{tag}"
        self.dlq = f"{self.input}-dlq"
        self.group = f"embedstream-{tag}"
        for t in (self.input, self.output, self.dlq):
            broker.create_topic(t, partitions)
        self.run = run
        self.broker = broker

    def produce(self, lines, tmp_path, rate=None):
        path = tmp_path / f"in-{uuid.uuid4().hex[:6]}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        args = ["produce", self.input, "--raw", "--file", str(path), "-b", self.broker.bootstrap]
        if rate:
            args += ["--rate", str(rate)]
        p = self.run(args, timeout=600)
        assert p.returncode == 0, p.stderr.decode()

    def produce_async(self, binary, lines, tmp_path, rate):
        path = tmp_path / f"in-{uuid.uuid4().hex[:6]}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return subprocess.Popen([str(binary), "produce", self.input, "--raw", "--file", str(path),
                                 "-b", self.broker.bootstrap, "--rate", str(rate)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def read(self, topic, expect, timeout=240):
        """All records of a topic (as dicts), waiting until at least `expect` distinct keys."""
        deadline = time.time() + timeout
        records = []
        while time.time() < deadline:
            p = self.run(["consume", topic, "--from-beginning", "--format", "json",
                          "--idle-timeout-ms", "3000", "-b", self.broker.bootstrap], timeout=600)
            assert p.returncode == 0, p.stderr.decode()
            records = [json.loads(l) for l in p.stdout.decode().split("\n") if l.strip()]
            if len({r["key"] for r in records}) >= expect:
                return records
            time.sleep(2)
        return records


def recent_events(port, seconds=3.0):
    """The data of every event /events replays from its ring (Last-Event-ID 0)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    conn.request("GET", "/events?last_event_id=0")
    resp = conn.getresponse()
    out, deadline = [], time.time() + seconds
    try:
        while time.time() < deadline:
            line = resp.readline().decode()
            if not line:
                break
            if line.startswith("data:"):
                out.append(json.loads(line[5:]))
    except OSError:  # the read timeout ends the replay
        pass
    finally:
        conn.close()
    return out


def serve_args(t, extra=()):
    return ["--kafka-brokers", t.broker.bootstrap, "--group", t.group, "--input-topic", t.input,
            "--output-topic", t.output, "--batch-max-wait-ms", "50", *extra]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.fixture
def small_record_limit(tmp_path):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("pipeline:\n  max_record_bytes: 20000\n")
    return ["--config", str(cfg)]


def test_10k_mixed_messages_good_to_embeddings_bad_to_dlq(run, binary, model_dir, kafka_broker,
                                                          tmp_path, small_record_limit):
    t = Topics(run, kafka_broker)
    lines, good, n_bad = make_input(9950, 50)
    assert len(lines) == 10000
    t.produce(lines, tmp_path)
    svc = Service(binary, model_dir, serve_args(t, small_record_limit), tmp_path / "serve.log")
    try:
        svc.wait_ready()
        out = t.read(t.output, expect=len(good))
        dlq = t.read(t.dlq, expect=n_bad, timeout=60)
        stats = svc.stats()
        # The embedded store is a second sink: every good record is searchable.
        planted = sorted(good)[0]
        search = svc.post("/embeddings/search", {"query": good[planted], "limit": 1})
        replay = recent_events(svc.port)
    finally:
        assert svc.stop() == 0, svc.tail()
    by_id = {}
    for r in out:
        v = json.loads(r["value"])
        assert r["key"] == v["id"]
        by_id[v["id"]] = v
    assert set(by_id) == set(good), "exactly the good ids"
    for mid, v in by_id.items():
        assert v["original_text"] == good[mid]
        assert v["embedding_dimension"] == 384 == len(v["embedding"])
        assert abs(sum(x * x for x in v["embedding"]) - 1) < 1e-5
        assert v["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    # Vectors equal `embedstream embed`'s for the same texts (sample).
    sample = sorted(good)[:25]
    stdin = "".join(json.dumps({"id": i, "text": good[i]}) + "\n" for i in sample).encode()
    ref = {json.loads(l)["id"]: json.loads(l)["embedding"]
           for l in run(["embed"], stdin).stdout.decode().split("\n") if l.strip()}
    for i in sample:
        assert max(abs(a - b) for a, b in zip(by_id[i]["embedding"], ref[i])) <= 1e-5
    # Dead letters: the 50 bad records with their reasons and provenance.
    assert len({r["key"] or r["value"] for r in dlq}) == n_bad
    reasons = {r["headers"]["error.reason"] for r in dlq}
    assert reasons == {"invalid_json", "missing_text", "wrong_type", "invalid_utf8", "too_large"}
    for r in dlq:
        h = r["headers"]
        assert h["source.topic"] == t.input and h["error.stage"] == "decode"
        assert int(h["source.offset"]) >= 0 and h["attempts"] == "1"
    assert stats["dlq"] == n_bad and stats["produced"] >= len(good)
    assert stats["store"]["embedded"] == len(good) == stats["store"]["indexed"]
    assert search["results"][0]["text"] == good[planted]
    # Kafka records have the same lifecycle on /events as HTTP messages (the
    # ring holds the newest events; check every message it holds whole).
    by_msg = {}
    for e in replay:
        if e.get("type") != "reset":
            by_msg.setdefault(e["message_id"], []).append(e["type"])
    whole = [t for t in by_msg.values() if t[0] == "message_received"]
    assert len(whole) > 100, f"too few whole lifecycles in the replay: {len(whole)}"
    assert all(t == ["message_received", "message_processing", "stage_completed",
                     "stage_completed", "stage_completed", "message_completed"] for t in whole)


def test_kill9_mid_stream_loses_nothing(run, binary, model_dir, kafka_broker, tmp_path):
    t = Topics(run, kafka_broker)
    lines, good, _ = make_input(3000, 0, seed=11)
    t.produce(lines, tmp_path)
    svc = Service(binary, model_dir, serve_args(t), tmp_path / "serve1.log")
    svc.wait_ready()
    deadline = time.time() + 120
    while svc.stats()["produced"] < 800 and time.time() < deadline:
        time.sleep(0.1)
    svc.kill9()
    svc2 = Service(binary, model_dir, serve_args(t), tmp_path / "serve2.log")
    try:
        svc2.wait_ready()
        out = t.read(t.output, expect=len(good))
    finally:
        assert svc2.stop() == 0, svc2.tail()
    keys = [r["key"] for r in out]
    assert set(keys) == set(good)
    print(f"kill -9: {len(keys)} records for {len(good)} ids, {len(keys) - len(good)} duplicates")


def test_two_instances_share_partitions_then_one_leaves(run, binary, model_dir, kafka_broker,
                                                        tmp_path):
    t = Topics(run, kafka_broker, partitions=4)
    lines, good, _ = make_input(4000, 0, seed=13)
    producer = t.produce_async(binary, lines, tmp_path, rate=400)
    a = Service(binary, model_dir, serve_args(t), tmp_path / "a.log")
    b = Service(binary, model_dir, serve_args(t), tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        deadline = time.time() + 90
        while time.time() < deadline and (a.stats()["consumed"] == 0 or b.stats()["consumed"] == 0):
            time.sleep(0.2)
        assert a.stats()["consumed"] > 0 and b.stats()["consumed"] > 0, "both got partitions"
        assert b.stop() == 0, b.tail()  # leaves the group mid-stream
        assert producer.wait(timeout=120) == 0, producer.stderr.read().decode()
        out = t.read(t.output, expect=len(good))
    finally:
        assert a.stop() == 0, a.tail()
        b.stop()
    assert {r["key"] for r in out} == set(good)


def test_broker_down_20s_recovers_by_itself(run, binary, model_dir, kafka_broker, tmp_path):
    t = Topics(run, kafka_broker)
    lines, good, _ = make_input(2000, 0, seed=17)
    first, second = lines[:1000], lines[1000:]
    t.produce(first, tmp_path)
    svc = Service(binary, model_dir, serve_args(t), tmp_path / "serve.log")
    try:
        svc.wait_ready()
        deadline = time.time() + 120
        while svc.stats()["produced"] < 300 and time.time() < deadline:
            time.sleep(0.1)
        kafka_broker.stop(keep_data=True)
        time.sleep(20)
        kafka_broker.start()
        t.produce(second, tmp_path)
        out = t.read(t.output, expect=len(good), timeout=300)
        assert svc.proc.poll() is None, "the service stayed up"
    finally:
        assert svc.stop() == 0, svc.tail()
    assert {r["key"] for r in out} == set(good)


# ---------------------------------------------------------------- Kafka -> PostgreSQL
# Seed 001 end to end against a real PostgreSQL 16 + pgvector (the pg_server
# fixture): records from a topic land in text_messages (--pg-sink text) and are
# embedded by the CQRS source (--pg-source), or are written with their vectors
# straight to both tables (--pg-sink embeddings). Helpers: test_postgres.py.
import test_postgres as pgt  # noqa: E402
from pg_server import pg_server  # noqa: E402,F401  (pytest fixture)

HOSTILE_META = {"note": "it's \"quoted\"", "sql": "'); DROP TABLE text_messages; --",
                "nested": {"list": [1, 2.5, None, True, "$$ $q$ \\"], "unicode": "naïve 日本語 🚀"}}


def seed001_records(n, seed):
    """n seed 001 records {"id", "text"[, "metadata"]}: (raw lines, {id: text}, {id: metadata})."""
    rows = pgt.make_rows(n - len(pgt.HOSTILE), seed=seed)
    rng = random.Random(seed + 1000)
    rows += [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), t) for t in pgt.HOSTILE]
    rng.shuffle(rows)
    lines, meta = [], {}
    for k, (mid, text) in enumerate(rows):
        rec = {"id": mid, "text": text}
        if k % 10 == 0:
            meta[mid] = dict(HOSTILE_META, k=k)
            rec["metadata"] = meta[mid]
        lines.append(json.dumps(rec).encode())
    return lines, dict(rows), meta


def pg_reset(run, pg):
    pg.psql(f"DROP TABLE IF EXISTS {pgt.EMB}, {pgt.EMB}_chunks, {pgt.EMB}_deletes, {pgt.TEXT} CASCADE")
    rc, out, err = pgt.pg_cli(run, pg, "install")
    assert rc == 0, f"pg install exited {rc}:\n{out}\n{err}"


def check_pg_rows(pg, texts, meta, metadata_table):
    ids = list(texts)
    assert pgt.count(pg, pgt.TEXT) == len(texts), "text_messages: one row per record"
    assert pgt.pg_messages(pg, ids) == texts, "texts stored byte for byte"
    stored = {k: json.loads(v) for k, v in pgt.pg_column(pg, "metadata::text", list(meta),
                                                         table=metadata_table).items()}
    assert stored == meta, f"{metadata_table}.metadata verbatim"
    assert pg.psql(f"SELECT to_regclass('{pgt.TEXT}') IS NOT NULL") == "t"


def test_kafka_to_postgres_text_writer_and_source_then_embeddings_sink(
        run, binary, model_dir, kafka_broker, pg_server, tmp_path):
    # Mode text: serve writes seed 001's text rows; its CQRS source embeds them.
    pg_reset(run, pg_server)
    t = Topics(run, kafka_broker)
    lines, texts, meta = seed001_records(500, seed=23)
    t.produce(lines, tmp_path)
    svc = Service(binary, model_dir, serve_args(t, ["--pg-sink", "text", "--pg-source"]),
                  tmp_path / "text.log", env_extra=pg_server.env())
    try:
        svc.wait_ready()
        took = pgt.wait_all_embedded(pg_server, svc, 500, timeout=240)
        print(f"\n[kafka->pg text] 500 records written and embedded in {took:.1f} s")
        check_pg_rows(pg_server, texts, meta, pgt.TEXT)
        assert pgt.count(pg_server, pgt.EMB) == 500
        sample = dict(random.Random(1).sample(sorted(texts.items()), 15))
        sample.update({m: x for m, x in texts.items() if x in pgt.HOSTILE})
        pgt.assert_vectors_match(pg_server, run, sample, "kafka text mode")
    finally:
        assert svc.stop() == 0, svc.tail()

    # Mode embeddings (no source): text and vector rows written by serve itself.
    pg_reset(run, pg_server)
    t2 = Topics(run, kafka_broker)
    lines, texts, meta = seed001_records(500, seed=29)
    t2.produce(lines, tmp_path)
    svc = Service(binary, model_dir, serve_args(t2, ["--pg-sink", "embeddings"]),
                  tmp_path / "embeddings.log", env_extra=pg_server.env())
    try:
        svc.wait_ready()
        t0 = time.time()
        pgt.wait_until(lambda: (pgt.count(pg_server, pgt.TEXT), pgt.count(pg_server, pgt.EMB)),
                       lambda c: c == (500, 500), 240, "500 rows in both tables", svc, interval=1)
        print(f"[kafka->pg embeddings] 500 records in both tables in {time.time() - t0:.1f} s")
        check_pg_rows(pg_server, texts, meta, pgt.EMB)
        sample = dict(random.Random(2).sample(sorted(texts.items()), 15))
        sample.update({m: x for m, x in texts.items() if x in pgt.HOSTILE})
        model = pgt.assert_vectors_match(pg_server, run, sample, "kafka embeddings mode")
        assert pg_server.psql(f"SELECT DISTINCT model_name FROM {pgt.EMB}") == model
        # Rows written with their vectors are current: nothing left for a source.
        assert pgt.current_count(pg_server) == 500, "text_md5 = md5(message) for sink rows"
        st = pgt.pg_status_cli(run, pg_server)
        assert st["pending"] == 0 and st["embedded"] == 500, st
    finally:
        assert svc.stop() == 0, svc.tail()


def test_dead_letters_too_large_for_the_dlq_topic_are_cut_and_nothing_unstored_is_committed(
        run, binary, model_dir, kafka_broker, tmp_path):
    """The DLQ topic takes 1 KiB; 10 invalid records of 5 KB each. They reach the
    DLQ cut to 256 bytes with error.truncated=true (never dropped), and the
    group's offsets move past them only then: a second instance on the group
    consumes nothing again."""
    t = Topics(run, kafka_broker)
    kafka_broker.set_topic_config(t.dlq, **{"max.message.bytes": 1024})
    lines, good, _ = make_input(30, 0, seed=5)
    # Unterminated JSON, incompressible (the producer compresses with lz4).
    big = [b'{"id": "big-%d", "text": "' % i + base64.b64encode(random.randbytes(4000))
           for i in range(10)]
    t.produce(lines[:15] + big + lines[15:], tmp_path)
    svc = Service(binary, model_dir, serve_args(t), tmp_path / "serve1.log")
    try:
        svc.wait_ready()
        deadline = time.time() + 120
        while time.time() < deadline and (svc.stats()["dlq"] < 10 or svc.stats()["produced"] < 30):
            time.sleep(0.2)
        stats = svc.stats()
        assert stats["dlq"] == 10 and stats["produced"] == 30, (stats, svc.tail())
    finally:
        assert svc.stop() == 0, svc.tail()
    dlq = []
    deadline = time.time() + 60
    while time.time() < deadline and len(dlq) < 10:
        dlq = t.read(t.dlq, expect=1, timeout=30)
    assert len(dlq) == 10, dlq
    for r in dlq:
        h = r["headers"]
        assert h["error.reason"] == "invalid_json" and h["error.truncated"] == "true", h
        assert int(h["error.original_bytes"]) > 5000
        assert len(r["value"]) <= 256 and r["value"].startswith('{"id": "big-')
    # Everything was committed once it was in a sink or the DLQ: nothing comes again.
    svc2 = Service(binary, model_dir, serve_args(t), tmp_path / "serve2.log")
    try:
        svc2.wait_ready()
        time.sleep(8)
        assert svc2.stats()["consumed"] == 0, svc2.stats()
    finally:
        assert svc2.stop() == 0, svc2.tail()
