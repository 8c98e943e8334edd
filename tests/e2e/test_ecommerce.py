"""Seed 002 (VectorStream) end to end: `embedstream gen ecommerce` events through a
real Kafka broker, mapped by the config (id field, text template, payload fields),
embedded and written into Qdrant — here the schema-validating Qdrant test server
(tests/e2e/qdrant_server.py), since no Qdrant can be installed on this machine.

What these tests prove:
* 20,000 generated events all arrive as points: id = event_id, vector = the
  model's (unit length), payload = the mapped fields + the rendered text; every
  request we sent validated against Qdrant's OpenAPI schema (tests/fixtures/qdrant); a filtered
  search (search.backend qdrant, product.category = X) returns only X.
* Qdrant failing for 10 s mid-run: the sink's circuit breaker opens, intake
  pauses, then everything arrives; no DLQ entry.
* A point Qdrant refuses with 400: that record alone goes to the DLQ (reason
  sink_rejected, after pipeline.retry_attempts tries), every other one arrives;
  events the mapping cannot use go to the DLQ as missing_id / empty_text.
"""
import json
import math
import time
import uuid

import pytest

from kafka_broker import kafka_broker  # noqa: F401  (pytest fixture)
from qdrant_server import QdrantTestServer
from service import Service

PAYLOAD_FIELDS = ["event_type", "user_id", "session_id", "product.id", "product.category",
                  "product.price", "timestamp"]


def wait_until(pred, timeout, what, svc=None, poll=0.5):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(poll)
    tail = f"\nserve log:\n{svc.tail()}" if svc else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last}){tail}")


class Pipeline:
    """One input topic (+ output and DLQ), a Qdrant test server and a serve config."""

    def __init__(self, run, broker, tmp_path, qdrant, partitions=3):
        tag = uuid.uuid4().hex[:8]
        self.run, self.broker, self.tmp = run, broker, tmp_path
        self.input, self.output = f"ecommerce-events-{tag}", f"embeddings-{tag}"
        self.dlq, self.group = f"{self.input}-dlq", f"embedstream-{tag}"
        self.collection = f"ecommerce_{tag}"
        for t in (self.input, self.output, self.dlq):
            broker.create_topic(t, partitions)
        self.qdrant = qdrant
        self.config = tmp_path / f"serve-{tag}.yaml"
        self.config.write_text(
            "kafka:\n  mappings:\n    %s:\n      id_field: event_id\n"
            "      text_template: \"{product.name}. {product.description}\"\n"
            "      payload_fields: [%s]\n      timestamp_field: timestamp\n"
            "sinks:\n  qdrant:\n    url: %s\n    collection: %s\n    batch_size: 256\n"
            "    timeout_ms: 3000\n"
            "pipeline:\n  retry_base_ms: 100\n  retry_max_ms: 1000\n"
            "  breaker:\n    failure_threshold: 3\n    open_ms: 1000\n    open_max_ms: 3000\n"
            % (self.input, ", ".join(PAYLOAD_FIELDS), qdrant.url, self.collection))

    def generate(self, count, seed, rate=None):
        """Events to the input topic, and the same events (same seed) to a file: {id: event}."""
        path = self.tmp / f"events-{seed}.jsonl"
        p = self.run(["gen", "ecommerce", "--count", str(count), "--seed", str(seed),
                      "--output", str(path)], timeout=600)
        assert p.returncode == 0, p.stderr.decode()
        args = ["gen", "ecommerce", "--count", str(count), "--seed", str(seed),
                "--topic", self.input, "--kafka-brokers", self.broker.bootstrap]
        if rate:
            args += ["--rate", str(rate)]
        p = self.run(args, timeout=900)
        assert p.returncode == 0, p.stderr.decode()
        events = [json.loads(l) for l in path.read_text().split("\n") if l.strip()]
        assert len(events) == count
        return {e["event_id"]: e for e in events}

    def serve(self, binary, model_dir, extra=()):
        args = ["--config", str(self.config), "--kafka-brokers", self.broker.bootstrap,
                "--group", self.group, "--input-topic", self.input, "--output-topic",
                self.output, "--batch-max-wait-ms", "50", *extra]
        svc = Service(binary, model_dir, args, self.tmp / f"serve-{self.group}.log")
        svc.wait_ready()
        return svc

    def stored(self):
        try:
            return len(self.qdrant.points(self.collection))
        except KeyError:
            return 0

    def dlq_records(self):
        p = self.run(["consume", self.dlq, "--from-beginning", "--format", "json",
                      "--idle-timeout-ms", "3000", "-b", self.broker.bootstrap], timeout=300)
        assert p.returncode == 0, p.stderr.decode()
        return [json.loads(l) for l in p.stdout.decode().split("\n") if l.strip()]


def get_path(obj, dotted):
    for k in dotted.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def expected_text(event):
    name = (event.get("product") or {}).get("name") or ""
    desc = (event.get("product") or {}).get("description") or ""
    return ". ".join(x for x in (name.strip(), desc.strip()) if x)


@pytest.fixture
def qdrant():
    with QdrantTestServer(port=0) as q:
        yield q
        assert q.schema_errors == [], f"requests that broke the Qdrant schema: {q.schema_errors[:3]}"


def test_20k_events_into_qdrant_with_payloads_and_filtered_search(run, binary, model_dir,
                                                                  kafka_broker, tmp_path, qdrant):
    pl = Pipeline(run, kafka_broker, tmp_path, qdrant)
    events = pl.generate(20000, seed=7)
    svc = pl.serve(binary, model_dir, ["--search-backend", "qdrant"])
    try:
        wait_until(lambda: pl.stored() >= 20000, 900, "20,000 points in Qdrant", svc, poll=2)
        # A filtered search through our API, answered by Qdrant.
        categories = sorted({e["product"]["category"] for e in events.values()})
        assert len(categories) >= 8, categories
        target = categories[len(categories) // 2]
        found = svc.post("/embeddings/search", {"query": "a gift for someone who loves this",
                                                "limit": 20,
                                                "filter": {"metadata.product.category": target}})
        unfiltered = svc.post("/embeddings/search", {"query": "kitchen knife", "limit": 20})
        stats = svc.stats()
    finally:
        assert svc.stop() == 0, svc.tail()
    points = qdrant.points(pl.collection)
    assert set(points) == set(events), "exactly the generated event ids, as point ids"
    for eid in list(events)[::100]:  # 200 events in detail
        e, p = events[eid], points[eid]
        assert len(p["vector"]) == 384
        assert abs(math.fsum(x * x for x in p["vector"]) - 1) < 1e-4
        payload = p["payload"]
        for f in PAYLOAD_FIELDS:
            assert get_path(payload, f) == get_path(e, f), (f, payload, e)
        assert payload["text"] == expected_text(e)
        assert "name" not in payload.get("product", {}), "only the configured payload fields"
    assert found["count"] == 20
    assert all(h["metadata"]["product"]["category"] == target for h in found["results"])
    assert {h["metadata"]["product"]["category"] for h in unfiltered["results"]} != {target}
    assert stats["dlq"] == 0 and stats["sinks"]["qdrant"]["state"] == "closed"


def test_qdrant_down_10s_breaker_opens_intake_pauses_nothing_lost(run, binary, model_dir,
                                                                   kafka_broker, tmp_path, qdrant):
    pl = Pipeline(run, kafka_broker, tmp_path, qdrant)
    events = pl.generate(4000, seed=11)
    svc = pl.serve(binary, model_dir)
    try:
        wait_until(lambda: pl.stored() >= 500, 300, "500 points before the outage", svc)
        qdrant.fail(503, for_s=10)
        t0 = time.time()
        seen_open = seen_paused = False
        stored_during = set()
        while time.time() - t0 < 10:
            s = svc.stats()
            seen_open |= s["sinks"]["qdrant"]["state"] in ("open", "half_open")
            seen_paused |= bool(s["paused"])
            stored_during.add(pl.stored())
            time.sleep(0.3)
        wait_until(lambda: pl.stored() >= 4000, 600, "all 4,000 points after the outage", svc,
                   poll=1)
        stats = svc.stats()
    finally:
        assert svc.stop() == 0, svc.tail()
    assert set(qdrant.points(pl.collection)) == set(events)
    assert seen_open, "the breaker never showed open during the outage"
    assert seen_paused, "intake never paused during the outage"
    # Qdrant stores nothing while failing; only requests already in flight at
    # the start may land (at most two batches).
    assert max(stored_during) - min(stored_during) <= 512, sorted(stored_during)
    assert stats["sinks"]["qdrant"]["opened_total"] >= 1
    assert stats["dlq"] == 0, "an outage must not send records to the DLQ"
    assert pl.dlq_records() == []


def test_point_refused_with_400_goes_alone_to_dlq(run, binary, model_dir, kafka_broker, tmp_path,
                                                  qdrant):
    pl = Pipeline(run, kafka_broker, tmp_path, qdrant)
    events = pl.generate(1000, seed=23)
    bad = sorted(events)[17]
    qdrant.reject_when(lambda point: point["id"] == bad)
    # Events the mapping cannot use: no id, and nothing to render.
    unmappable = [
        {"timestamp": "2024-01-15T10:30:00Z", "product": {"name": "No id", "category": "Books"}},
        {"event_id": str(uuid.uuid4()), "product": {"name": "", "category": "Books"}},
    ]
    path = tmp_path / "unmappable.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in unmappable))
    p = run(["produce", pl.input, "--raw", "--file", str(path), "-b", kafka_broker.bootstrap])
    assert p.returncode == 0, p.stderr.decode()
    svc = pl.serve(binary, model_dir)
    try:
        wait_until(lambda: pl.stored() >= 999, 300, "999 points", svc)
        wait_until(lambda: svc.stats()["dlq"] >= 3, 60, "3 records in the DLQ", svc)
        stats = svc.stats()
    finally:
        assert svc.stop() == 0, svc.tail()
    assert set(qdrant.points(pl.collection)) == set(events) - {bad}
    dlq = pl.dlq_records()
    assert len(dlq) == 3 and stats["dlq"] == 3
    by_reason = {r["headers"]["error.reason"]: r for r in dlq}
    assert set(by_reason) == {"sink_rejected", "missing_id", "empty_text"}
    h = by_reason["sink_rejected"]["headers"]
    assert h["error.stage"] == "qdrant" and int(h["attempts"]) >= 1
    assert json.loads(by_reason["sink_rejected"]["value"])["event_id"] == bad, "original bytes"
    assert json.loads(by_reason["missing_id"]["value"]) == unmappable[0]
    assert stats["sinks"]["qdrant"]["state"] == "closed"
