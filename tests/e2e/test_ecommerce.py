"""Seed 002 (VectorStream) end to end: `embedstream gen ecommerce` events through a
real Kafka broker, mapped by the config (id field, text template, payload fields),
embedded and written into Qdrant. The main flow runs against a real Qdrant when
one is found (QDRANT_BIN, else ../shared/qdrant/bin/qdrant: qdrant_real.py), else
against the schema-validating Qdrant test server (tests/e2e/qdrant_server.py);
the fault cases always run against the test server, which can be told to fail.
Each test prints which one ran ("qdrant: ...").

What these tests prove:
* 20,000 generated events all arrive as points: id = event_id, vector = the
  model's (unit length), payload = the mapped fields + the rendered text (with
  the test server: every request we sent validated against Qdrant's OpenAPI
  schema, tests/fixtures/qdrant); a filtered search (search.backend qdrant,
  product.category = X) returns only X.
* Qdrant failing for 10 s mid-run (test server): the sink's circuit breaker
  opens, intake pauses, then everything arrives; no DLQ entry.
* A point Qdrant refuses with 400 (test server): that record alone goes to the
  DLQ (reason sink_rejected, after pipeline.retry_attempts tries), every other
  one arrives; events the mapping cannot use go to the DLQ as missing_id /
  empty_text.
"""
import json
import time
import uuid

from ecommerce_pipeline import Pipeline, assert_points_as_sent, wait_until
from kafka_broker import kafka_broker  # noqa: F401  (pytest fixture)
from qdrant_real import qdrant, qdrant_test_server  # noqa: F401  (pytest fixtures)


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
    assert_points_as_sent(qdrant.points(pl.collection), events, every=100)  # 200 in detail
    assert found["count"] == 20
    assert all(h["metadata"]["product"]["category"] == target for h in found["results"])
    assert {h["metadata"]["product"]["category"] for h in unfiltered["results"]} != {target}
    assert stats["dlq"] == 0 and stats["sinks"]["qdrant"]["state"] == "closed"


def test_qdrant_down_10s_breaker_opens_intake_pauses_nothing_lost(run, binary, model_dir,
                                                                   kafka_broker, tmp_path,
                                                                   qdrant_test_server):
    qdrant = qdrant_test_server
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
                                                  qdrant_test_server):
    qdrant = qdrant_test_server
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
