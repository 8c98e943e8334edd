"""Any source into any sinks (issue 13), black-box against the built binary, a real
PostgreSQL 16 + pgvector, the real model and Qdrant (the real server when found, else
the schema-validating test server; the log says which).

What these tests prove:

* HTTP ingest -> [store, qdrant, postgres] (`sources.http.sinks`): every message
  POSTed (202) arrives in all three: the store's vector, the Qdrant point
  (id, vector, payload with the text and metadata) and the pgvector row are the same
  vector as `embedstream embed`'s; /stats shows sources.http and each sink.
* HTTP ingest with Qdrant down: the 202s still come (the store is the outbox), no
  message is delivered to the pipeline while a sink lacks it, nothing goes to a dead
  letter; serve stopped (SIGTERM) meanwhile and started again delivers every one once
  Qdrant is back.
* The PostgreSQL source -> [postgres, qdrant] (`sources.postgres.sinks`): every row
  of the text table reaches pgvector and Qdrant with the same vector; a row is marked
  done (progress table) only once both have it.
"""
import json
import re
import uuid

import pytest

from pg_server import pg_server  # noqa: F401  (pytest fixture)
from qdrant_real import point_count, qdrant  # noqa: F401  (pytest fixture)
from test_postgres import (EMB, TEXT, cosine, embed_ref, insert_rows, make_rows, pg,  # noqa: F401
                           pg_vectors, serve, wait_until)

COLLECTION = "pipeline_points"


def config(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def qdrant_yaml(q):
    return f"sinks:\n  qdrant: {{url: '{q.url}', collection: {COLLECTION}, timeout_ms: 3000}}\n"


def post_messages(svc, n, tag):
    ids = {}
    for i in range(n):
        text = f"{tag} message {i}: the {['river', 'market', 'violin', 'storm'][i % 4]} " \
               f"number {i * 7 % 13}"
        reply = svc.post("/messages", {"message": text, "metadata": {"user_id": f"u{i % 3}"}})
        assert reply["id"], reply
        ids[reply["id"]] = text
    return ids


def assert_points(q, texts, ref):
    points = q.points(COLLECTION)
    missing = set(texts) - {str(k) for k in points}
    assert not missing, f"{len(missing)} messages are not in Qdrant: {sorted(missing)[:3]}"
    for mid, text in texts.items():
        p = points[mid] if mid in points else points[uuid.UUID(mid)]
        assert p["payload"]["text"] == text, p["payload"]
        c = cosine(p["vector"], ref[mid])
        assert c > 0.9999, f"{mid}: cosine {c} to embed's vector"


def test_http_ingest_reaches_store_qdrant_and_pgvector(pg, serve, qdrant, run, tmp_path):
    cfg = config(tmp_path, "http3", qdrant_yaml(q=qdrant) +
                 "sources:\n  http: {sinks: [store, qdrant, postgres]}\n")
    svc = serve("--config", cfg)
    texts = post_messages(svc, 120, "http")
    wait_until(lambda: svc.stats()["sources"]["http"]["acked"], lambda n: n >= 120, 120,
               "120 messages acked by the http pipeline", svc)
    st = svc.stats()
    assert st["sources"]["http"]["sinks"] == ["store", "qdrant", "postgres"], st["sources"]
    for sink in ("store", "qdrant", "postgres"):
        assert st["sinks"][sink]["written"] >= 120, (sink, st["sinks"][sink])
        assert st["sinks"][sink]["sources"] == ["http"], st["sinks"][sink]
    assert st["sources"]["http"]["rejected"] == 0 and st["sinks"]["dlq"]["written"] == 0, st
    metrics = svc.get("/metrics")[1]

    def sample(name, labels):
        m = re.search(r"^" + re.escape(name + "{" + labels + "}") + r" (\S+)$", metrics, re.M)
        assert m, f"no {name}{{{labels}}} in /metrics"
        return float(m.group(1))

    assert sample("embedstream_source_records_total", 'source="http",outcome="acked"') >= 120
    for sink in ("store", "qdrant", "postgres"):
        assert sample("embedstream_sink_records_total",
                      f'source="http",sink="{sink}",outcome="written"') >= 120, sink
    assert sample("embedstream_sink_circuit_state", 'source="http",sink="qdrant"') == 0
    ref, _ = embed_ref(run, texts)
    # The store: every message embedded, searchable.
    for mid in list(texts)[:10]:
        m = json.loads(svc.get(f"/messages/{mid}")[1])
        assert m["status"] == "embedded", m
    hits = svc.post("/embeddings/search", {"query": texts[next(iter(texts))], "limit": 1})
    assert hits["results"][0]["id"] == next(iter(texts)), hits
    # Qdrant and pgvector: the same vectors as embed's.
    assert_points(qdrant, texts, ref)
    got = pg_vectors(pg, list(texts))
    assert set(got) == set(texts), f"missing in pgvector: {set(texts) - set(got)}"
    for mid in texts:
        assert cosine(got[mid], ref[mid]) > 0.99999, mid
    assert svc.stop() == 0, svc.tail()


def test_http_ingest_with_qdrant_down_keeps_every_202_across_a_restart(pg, serve, qdrant, run,
                                                                       tmp_path):
    if not hasattr(qdrant, "stop"):
        pytest.skip("needs a Qdrant that can be stopped and started")
    cfg = config(tmp_path, "httpq", qdrant_yaml(q=qdrant) +
                 "pipeline: {retry_base_ms: 100, retry_max_ms: 500}\n"
                 "sources:\n  http: {sinks: [store, qdrant]}\n")
    data_dir = str(tmp_path / "outbox.data")
    svc = serve("--config", cfg, "--data-dir", data_dir, name="a")
    first = post_messages(svc, 20, "before")
    wait_until(lambda: point_count(qdrant, COLLECTION), lambda n: n == 20, 60,
               "20 points before the outage", svc)
    qdrant.stop()
    texts = post_messages(svc, 60, "during")  # every one answered 202: on disk
    wait_until(lambda: svc.stats()["sinks"]["qdrant"], lambda s: not s["available"], 30,
               "the qdrant sink unavailable", svc)
    st = svc.stats()
    assert st["sources"]["http"]["acked"] == 20, st["sources"]["http"]
    assert st["sources"]["http"]["rejected"] == 0 and st["sinks"]["dlq"]["written"] == 0, st
    assert svc.stop() == 0, svc.tail()  # SIGTERM with 60 messages undelivered
    qdrant.start()
    b = serve("--config", cfg, "--data-dir", data_dir, name="b")
    wait_until(lambda: point_count(qdrant, COLLECTION), lambda n: n == 80, 120,
               "all 80 points after the restart", b)
    ref, _ = embed_ref(run, {**first, **texts})
    assert_points(qdrant, {**first, **texts}, ref)
    st = b.stats()
    assert st["sources"]["http"]["acked"] == 60, st["sources"]["http"]  # only the owed ones
    assert b.stop() == 0, b.tail()


def test_postgres_source_reaches_pgvector_and_qdrant(pg, serve, qdrant, tmp_path):
    rows = make_rows(400, seed=77)
    insert_rows(pg, rows)
    cfg = config(tmp_path, "pgq", qdrant_yaml(q=qdrant) +
                 "sources:\n  postgres: {table: text_messages, sinks: [postgres, qdrant]}\n")
    svc = serve("--config", cfg)
    wait_until(lambda: int(pg.psql(f"SELECT count(*) FROM {EMB}_progress")), lambda n: n == 400,
               180, "400 rows marked done", svc)
    st = svc.stats()
    assert st["sources"]["postgres"]["sinks"] == ["postgres", "qdrant"], st["sources"]
    assert st["postgres_source"]["embedded"] == 400 and st["postgres_source"]["errors"] == 0, st
    assert point_count(qdrant, COLLECTION) == 400
    texts = dict(rows)
    got = pg_vectors(pg, list(texts))
    points = qdrant.points(COLLECTION)
    for mid in texts:
        p = points[mid] if mid in points else points[uuid.UUID(mid)]
        assert p["payload"]["text"] == texts[mid]
        assert cosine(p["vector"], got[mid]) > 0.9999, mid
    # An edited text goes to both sinks again.
    some = next(iter(texts))
    pg.psql(f"UPDATE {TEXT} SET message = 'an edited text about violins' WHERE id = '{some}'")
    wait_until(lambda: qdrant.points(COLLECTION), lambda ps: any(
        v["payload"].get("text") == "an edited text about violins" for v in ps.values()), 30,
        "the edited text in Qdrant", svc)
    # Deleted rows: pgvector by cascade, Qdrant through the source's delete
    # capture (a trigger records them; the source reads them as deletes). A
    # row deleted and inserted again keeps its (new) vector.
    gone = list(texts)[1:11]
    back = gone[0]
    pg.psql(f"DELETE FROM {TEXT} WHERE id IN ({', '.join(repr(g) for g in gone)})")
    pg.psql(f"INSERT INTO {TEXT} (id, message) VALUES ('{back}', 'back again, about oboes')")
    wait_until(lambda: qdrant.points(COLLECTION), lambda ps: len(ps) == 400 - 9, 60,
               "9 deleted rows gone from Qdrant", svc)
    points = qdrant.points(COLLECTION)
    for mid in gone[1:]:
        assert mid not in points and uuid.UUID(mid) not in points, mid
    wait_until(lambda: qdrant.points(COLLECTION), lambda ps: any(
        v["payload"].get("text") == "back again, about oboes" for v in ps.values()), 30,
        "the row inserted again in Qdrant", svc)
    assert int(pg.psql(f"SELECT count(*) FROM {EMB}")) == 400 - 9
    deletes = svc.stats()["postgres_source"]["deletes"]
    assert 9 <= deletes <= 10, deletes
    assert pg.psql(f"SELECT count(*) FROM {EMB}_deletes") == "0", "acked deletes leave the table"
    assert svc.stop() == 0, svc.tail()
