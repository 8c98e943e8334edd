"""Tests of the Qdrant test server itself (tests/e2e/qdrant_server.py).

It is test infrastructure: the Qdrant sink's e2e tests trust it to (a) refuse
exactly what Qdrant's openapi.json refuses, (b) answer like Qdrant, (c) compute
search results correctly and (d) fail on command. Each test proves one of these.
Needs no embedstream binary:

    cd tests/e2e && python3 -m pytest -q -p no:cacheprovider test_qdrant_server.py
"""
from __future__ import annotations

import http.client
import json
import math
import random
import socket
import subprocess
import sys
import time
import uuid
import pathlib

import pytest

from ports import stable_free_port
from qdrant_server import OpenApi, QdrantTestServer, SCHEMA_URI

HERE = pathlib.Path(__file__).resolve().parent
C = "ecommerce_embeddings"


class Client:
    """A keep-alive HTTP/1.1 client (one connection, like libcurl's)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 10):
        host, port = url.split("://")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.api_key = api_key

    def raw(self, method, path, body: bytes | None = None, headers=None):
        h = {"Content-Type": "application/json"} if body is not None else {}
        if self.api_key:
            h["api-key"] = self.api_key
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, (json.loads(data) if ctype.startswith("application/json") else data.decode())

    def __call__(self, method, path, body=None, headers=None):
        return self.raw(method, path, None if body is None else json.dumps(body).encode(), headers)

    def close(self):
        self.conn.close()


@pytest.fixture
def q():
    """A fresh server; at teardown no request or response may have broken the schema
    unless the test emptied schema_errors itself after checking them."""
    with QdrantTestServer(port=0) as server:
        yield server
        assert server.schema_errors == [], json.dumps(server.schema_errors, indent=1)


@pytest.fixture
def cl(q):
    c = Client(q.url)
    yield c
    c.close()


def make_collection(cl, size=4, distance="Cosine", name=C):
    status, body = cl("PUT", f"/collections/{name}", {"vectors": {"size": size, "distance": distance}})
    assert (status, body["result"]) == (200, True), body


def upsert(cl, points, name=C, wait=True):
    status, body = cl("PUT", f"/collections/{name}/points?wait={'true' if wait else 'false'}",
                      {"points": points})
    assert status == 200, body
    return body


def take_schema_errors(q) -> list:
    errs = list(q.schema_errors)
    q.schema_errors.clear()
    return errs


# ------------------------------------------------------------------ the schema itself

def test_nullable_translation_keeps_optional_fields_typed():
    """OpenAPI `anyOf: [X, {nullable: true}]` must mean "X or null", not "anything":
    an optional field with a wrong type is refused, null is accepted."""
    api = OpenApi.load()
    create = {"$ref": f"{SCHEMA_URI}#/components/schemas/CreateCollection"}
    ok = {"vectors": {"size": 4, "distance": "Cosine"}}
    assert api.errors(create, ok) == []
    assert api.errors(create, {**ok, "shard_number": None}) == []
    assert api.errors(create, {**ok, "shard_number": "2"}), "typed nullable field accepted a string"
    assert api.errors(create, {**ok, "hnsw_config": None}) == []
    assert api.errors(create, {**ok, "hnsw_config": 7}), "anyOf [HnswConfigDiff, null] accepted 7"
    query = {"$ref": f"{SCHEMA_URI}#/components/schemas/QueryRequest"}
    assert api.errors(query, {"filter": {"mus": []}}), "Filter has additionalProperties false"


def test_schema_facts_the_sink_relies_on():
    """Pin what the C++ sink's JSON must look like (see the report): PointStruct needs
    id + vector, payload optional; ids are uint64 or hyphenated UUID strings; sizes
    are JSON integers."""
    api = OpenApi.load()
    ins = {"$ref": f"{SCHEMA_URI}#/components/schemas/PointInsertOperations"}
    u = str(uuid.uuid4())
    assert api.errors(ins, {"points": [{"id": u, "vector": [0.1, 0.2]}]}) == []
    assert api.errors(ins, {"points": [{"id": 7, "vector": [0.1], "payload": None}]}) == []
    assert api.errors(ins, {"batch": {"ids": [u], "vectors": [[0.1]], "payloads": [{"a": 1}]}}) == []
    assert api.errors(ins, {"points": [{"id": u.replace("-", ""), "vector": [0.1]}]}), \
        "simple-form UUID should not validate (format uuid = hyphenated)"
    assert api.errors(ins, {"points": [{"id": "42", "vector": [0.1]}]}), "numeric string id accepted"
    assert api.errors(ins, {"points": [{"id": 2**64, "vector": [0.1]}]}), "id above uint64 accepted"
    assert api.errors(ins, {"points": [{"id": 1.0, "vector": [0.1]}]}), "float id accepted"


# ------------------------------------------------------------------ collections

def test_collection_lifecycle_and_qdrant_error_shapes(q, cl):
    """Create / info / exists / list / 409 on re-create / delete (true, then false) /
    404 with Qdrant's {"status": {"error"}, "time"} body — every response validated."""
    status, body = cl("GET", f"/collections/{C}")
    assert status == 404 and body["status"]["error"] == f"Not found: Collection `{C}` doesn't exist!"
    assert set(body) == {"status", "time"}
    make_collection(cl, size=384)
    status, body = cl("PUT", f"/collections/{C}", {"vectors": {"size": 384, "distance": "Cosine"}})
    assert status == 409 and "already exists" in body["status"]["error"], body
    status, body = cl("GET", f"/collections/{C}")
    assert status == 200 and body["status"] == "ok" and isinstance(body["time"], float)
    assert body["result"]["config"]["params"]["vectors"] == {"size": 384, "distance": "Cosine"}
    assert body["result"]["points_count"] == 0
    assert cl("GET", f"/collections/{C}/exists")[1]["result"] == {"exists": True}
    assert cl("GET", "/collections")[1]["result"] == {"collections": [{"name": C}]}
    assert q.collections()[C]["size"] == 384
    assert cl("DELETE", f"/collections/{C}")[1]["result"] is True
    assert cl("DELETE", f"/collections/{C}")[1]["result"] is False
    assert cl("GET", f"/collections/{C}/exists")[1]["result"] == {"exists": False}


def test_service_endpoints(q, cl):
    """GET / (VersionInfo, not wrapped), /healthz and /readyz (text)."""
    status, body = cl("GET", "/")
    assert status == 200 and body["title"].startswith("qdrant") and "version" in body
    assert cl("GET", "/healthz") == (200, "healthz check passed")
    assert cl("GET", "/readyz") == (200, "all shards are ready")


# ------------------------------------------------------------------ points

def test_upsert_list_and_batch_forms_store_points(q, cl):
    """Both PointInsertOperations forms store points; UUIDs come back canonical
    (lowercase); re-upserting an id overwrites it; wait=false -> acknowledged."""
    make_collection(cl, size=3)
    u = uuid.uuid4()
    body = upsert(cl, [{"id": 1, "vector": [1, 0, 0], "payload": {"text": "a", "product": {"category": "X"}}},
                       {"id": str(u).upper(), "vector": [0, 1, 0]}])
    assert body["result"]["status"] == "completed"
    status, body = cl("PUT", f"/collections/{C}/points?wait=true",
                      {"batch": {"ids": [2, 3], "vectors": [[0, 0, 1], [1, 1, 0]],
                                 "payloads": [{"text": "b"}, None]}})
    assert status == 200, body
    body = upsert(cl, [{"id": 1, "vector": [0.5, 0.5, 0], "payload": {"text": "a2"}}], wait=False)
    assert body["result"]["status"] == "acknowledged"
    pts = q.points(C)
    assert set(pts) == {1, 2, 3, str(u)}
    assert pts[1] == {"vector": [0.5, 0.5, 0.0], "payload": {"text": "a2"}}
    assert pts[str(u)]["payload"] is None and pts[3]["payload"] is None
    assert pts[2]["payload"] == {"text": "b"}
    status, body = cl("GET", f"/collections/{C}/points/{u}")
    assert status == 200 and body["result"]["id"] == str(u)
    assert cl("GET", f"/collections/{C}")[1]["result"]["points_count"] == 4


def test_upsert_into_missing_collection_is_404(q, cl):
    status, body = cl("PUT", "/collections/nope/points?wait=true", {"points": [{"id": 1, "vector": [1.0]}]})
    assert status == 404 and "doesn't exist" in body["status"]["error"]


def test_wrong_vector_length_refuses_the_whole_batch(q, cl):
    """Like Qdrant: one point with the wrong dimension -> 400 for the batch, nothing
    stored. Schema-valid, so not a schema error."""
    make_collection(cl, size=3)
    status, body = cl("PUT", f"/collections/{C}/points?wait=true",
                      {"points": [{"id": 1, "vector": [1, 0, 0]}, {"id": 2, "vector": [1, 0]}]})
    assert status == 400
    assert body["status"]["error"] == "Wrong input: Vector dimension error: expected dim: 3, got 2"
    assert q.points(C) == {}


def test_delete_points_by_ids_and_filter(q, cl):
    make_collection(cl, size=2)
    upsert(cl, [{"id": i, "vector": [1, i], "payload": {"k": i % 2}} for i in range(6)])
    status, body = cl("POST", f"/collections/{C}/points/delete?wait=true", {"points": [0, 1]})
    assert status == 200 and body["result"]["status"] == "completed"
    status, _ = cl("POST", f"/collections/{C}/points/delete?wait=true",
                   {"filter": {"must": [{"key": "k", "match": {"value": 0}}]}})
    assert status == 200
    assert sorted(q.points(C)) == [3, 5]


# ------------------------------------------------------------------ validation

BAD_BODIES = [
    # (what, method, path-suffix, body) — path suffix after /collections/<C>
    ("size as string", "PUT", "", {"vectors": {"size": "4", "distance": "Cosine"}}),
    ("size as float 4.0", "PUT", "", {"vectors": {"size": 4.0, "distance": "Cosine"}}),
    ("unknown distance", "PUT", "", {"vectors": {"size": 4, "distance": "cosine"}}),
    ("missing vector", "PUT", "/points?wait=true", {"points": [{"id": 1, "payload": {}}]}),
    ("missing id", "PUT", "/points?wait=true", {"points": [{"vector": [1, 0, 0, 0]}]}),
    ("non-UUID string id", "PUT", "/points?wait=true", {"points": [{"id": "evt-17", "vector": [1, 0, 0, 0]}]}),
    ("negative id", "PUT", "/points?wait=true", {"points": [{"id": -1, "vector": [1, 0, 0, 0]}]}),
    ("payload not an object", "PUT", "/points?wait=true", {"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": "x"}]}),
    ("vector element a string", "PUT", "/points?wait=true", {"points": [{"id": 1, "vector": [1, "0", 0, 0]}]}),
    ("filter typo", "POST", "/points/query", {"query": [1, 0, 0, 0], "filter": {"musts": []}}),
    ("match float value", "POST", "/points/count", {"filter": {"must": [{"key": "p", "match": {"value": 1.5}}]}}),
    ("limit 0", "POST", "/points/query", {"query": [1, 0, 0, 0], "limit": 0}),
    ("limit as string", "POST", "/points/scroll", {"limit": "10"}),
]


@pytest.mark.parametrize("what,method,suffix,body", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_schema_invalid_bodies_are_400_and_recorded(q, cl, what, method, suffix, body):
    """A body openapi.json refuses gets Qdrant's 400 'Validation error in JSON body'
    and lands in schema_errors (what the e2e tests assert empty)."""
    if suffix:
        make_collection(cl)
    status, resp = cl(method, f"/collections/{C}{suffix}", body)
    assert status == 400, (what, resp)
    assert resp["status"]["error"].startswith("Validation error in JSON body"), resp
    errs = take_schema_errors(q)
    assert len(errs) == 1 and errs[0]["kind"] == "request", errs
    if suffix.startswith("/points?"):
        assert q.points(C) == {}


@pytest.mark.parametrize("what,raw,headers,path,expect", [
    ("invalid JSON", b'{"points": [', None, "/points?wait=true", "Format error in JSON body"),
    ("NaN", b'{"points": [{"id": 1, "vector": [NaN, 0, 0, 0]}]}', None, "/points?wait=true", "Format error"),
    ("duplicate key", b'{"points": [], "points": []}', None, "/points?wait=true", "Format error"),
    ("empty body", b"", None, "/points?wait=true", "Format error"),
    ("form content type", b'{"points": []}', {"Content-Type": "application/x-www-form-urlencoded"},
     "/points?wait=true", "Content type error"),
    ("unknown query parameter", b'{"points": []}', None, "/points?wiat=true", "unknown query parameter"),
    ("wait=yes", b'{"points": []}', None, "/points?wait=yes", "wait"),
    ("bad collection name", b'{"points": []}', None, None, "invalid collection name"),
])
def test_malformed_requests_are_400_and_recorded(q, cl, what, raw, headers, path, expect):
    """What serde/actix would refuse (bad JSON, NaN, duplicate keys, non-JSON content
    type — libcurl's default for POSTFIELDS!) and bad parameters are 400 + recorded."""
    make_collection(cl)
    full = f"/collections/{C}{path}" if path else "/collections/a%3Cb/points?wait=true"
    status, resp = cl.raw("PUT", full, raw, headers)
    assert status == 400, (what, resp)
    assert expect in resp["status"]["error"], resp
    assert take_schema_errors(q), f"{what} not recorded"


def test_undocumented_routes_are_flagged(q, cl):
    """Legacy POST /points/search is absent from this openapi.json: 404 + schema error.
    Documented-but-unimplemented operations: 501, listed in .unsupported."""
    make_collection(cl)
    status, body = cl("POST", f"/collections/{C}/points/search", {"vector": [1, 0, 0, 0], "limit": 1})
    assert status == 404 and "points/query" in body["status"]["error"]
    assert [e["kind"] for e in take_schema_errors(q)] == ["route"]
    status, _ = cl("GET", "/telemetry")
    assert status == 501 and q.unsupported


def test_legacy_search_can_be_enabled():
    with QdrantTestServer(legacy_search=True) as q:
        cl = Client(q.url)
        make_collection(cl, size=2)
        upsert(cl, [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}])
        status, body = cl("POST", f"/collections/{C}/points/search", {"vector": [0.1, 1], "limit": 1})
        assert status == 200 and [p["id"] for p in body["result"]] == [2]
        assert q.schema_errors == []


def test_response_validation_catches_server_bugs(q, cl):
    """A response that breaks the documented 200 schema is recorded, so a bug in the
    test server cannot make a client look right."""
    make_collection(cl)
    for r in q._routes:  # plant a bug: a negative count
        if r.template.endswith("/points/count"):
            r.handler = lambda params, query, req: (200, {"count": -1})
    status, _ = cl("POST", f"/collections/{C}/points/count", {})
    assert status == 200
    errs = take_schema_errors(q)
    assert len(errs) == 1 and errs[0]["kind"] == "response", errs
    assert any("result.count" in e for e in errs[0]["errors"]), errs


# ------------------------------------------------------------------ search

def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_cosine_query_ranks_exactly(q, cl):
    """POST /points/query with a raw vector: cosine scores equal a reference
    computation, descending order, limit/offset, score_threshold, with_payload."""
    rng = random.Random(7)
    make_collection(cl, size=16)
    vecs = {i: [rng.uniform(-1, 1) for _ in range(16)] for i in range(200)}
    for start in range(0, 200, 50):
        upsert(cl, [{"id": i, "vector": vecs[i], "payload": {"i": i}} for i in range(start, start + 50)])
    query = [rng.uniform(-1, 1) for _ in range(16)]
    ref = sorted(((_cos(query, v), i) for i, v in vecs.items()), key=lambda t: -t[0])
    status, body = cl("POST", f"/collections/{C}/points/query",
                      {"query": query, "limit": 10, "with_payload": True})
    assert status == 200, body
    got = body["result"]["points"]
    assert [p["id"] for p in got] == [i for _, i in ref[:10]]
    for p, (s, i) in zip(got, ref):
        assert abs(p["score"] - s) < 1e-9 and p["payload"] == {"i": i}
    status, body = cl("POST", f"/collections/{C}/points/query",
                      {"query": {"nearest": query}, "limit": 5, "offset": 10})
    assert [p["id"] for p in body["result"]["points"]] == [i for _, i in ref[10:15]]
    assert all("payload" not in p for p in body["result"]["points"]), "with_payload defaults to false"
    threshold = ref[20][0]
    status, body = cl("POST", f"/collections/{C}/points/query",
                      {"query": query, "limit": 100, "score_threshold": threshold})
    assert len(body["result"]["points"]) == 21
    status, body = cl("POST", f"/collections/{C}/points/query", {"query": [1.0] * 3})
    assert status == 400 and "expected dim: 16, got 3" in body["status"]["error"]


@pytest.mark.parametrize("distance,best_first", [("Dot", True), ("Euclid", False), ("Manhattan", False)])
def test_other_distances_order(q, cl, distance, best_first):
    make_collection(cl, size=2, distance=distance)
    upsert(cl, [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [3, 0]}, {"id": 3, "vector": [0, -1]}])
    _, body = cl("POST", f"/collections/{C}/points/query", {"query": [2.9, 0], "limit": 3})
    ids = [p["id"] for p in body["result"]["points"]]
    assert ids[0] == 2, (distance, body)
    scores = [p["score"] for p in body["result"]["points"]]
    assert scores == sorted(scores, reverse=best_first)


def test_query_by_point_id_excludes_the_point(q, cl):
    make_collection(cl, size=2)
    upsert(cl, [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [1, 0.1]}, {"id": 3, "vector": [0, 1]}])
    _, body = cl("POST", f"/collections/{C}/points/query", {"query": 1, "limit": 2})
    assert [p["id"] for p in body["result"]["points"]] == [2, 3]


# ------------------------------------------------------------------ filters

EVENTS = [
    {"id": 1, "payload": {"event_type": "view", "user_id": "u1", "product": {"category": "books", "price": 12.5},
                          "tags": ["new", "sale"], "ts": "2024-01-01T10:00:00Z"}},
    {"id": 2, "payload": {"event_type": "purchase", "user_id": "u2", "product": {"category": "games", "price": 60},
                          "tags": ["sale"], "ts": "2024-02-01T10:00:00Z"}},
    {"id": 3, "payload": {"event_type": "view", "user_id": "u2", "product": {"category": "books", "price": 7},
                          "tags": [], "ts": "2024-03-01T10:00:00Z", "flag": True}},
    {"id": 4, "payload": {"event_type": "cart", "user_id": "u3", "product": {"category": "toys", "price": 25.0},
                          "flag": 1, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 5}]}},
    {"id": 5, "payload": {"event_type": "view", "user_id": None, "product": {"category": "games"}}},
]

FILTERS = [
    ("match keyword", {"must": [{"key": "event_type", "match": {"value": "view"}}]}, {1, 3, 5}),
    ("nested dotted key", {"must": [{"key": "product.category", "match": {"value": "books"}}]}, {1, 3}),
    ("match any", {"must": [{"key": "product.category", "match": {"any": ["toys", "games"]}}]}, {2, 4, 5}),
    ("match except", {"must": [{"key": "product.category", "match": {"except": ["books"]}}]}, {2, 4, 5}),
    ("array element", {"must": [{"key": "tags", "match": {"value": "new"}}]}, {1}),
    ("range gte/lt", {"must": [{"key": "product.price", "range": {"gte": 10, "lt": 60}}]}, {1, 4}),
    ("range gt", {"must": [{"key": "product.price", "range": {"gt": 25}}]}, {2}),
    ("datetime range", {"must": [{"key": "ts", "range": {"gte": "2024-01-15T00:00:00Z"}}]}, {2, 3}),
    ("must_not", {"must_not": [{"key": "event_type", "match": {"value": "view"}}]}, {2, 4}),
    ("should", {"should": [{"key": "user_id", "match": {"value": "u1"}},
                           {"key": "product.category", "match": {"value": "toys"}}]}, {1, 4}),
    ("must + must_not", {"must": [{"key": "product.category", "match": {"value": "books"}}],
                         "must_not": [{"key": "user_id", "match": {"value": "u2"}}]}, {1}),
    ("bool is not int", {"must": [{"key": "flag", "match": {"value": True}}]}, {3}),
    ("int is not bool", {"must": [{"key": "flag", "match": {"value": 1}}]}, {4}),
    ("is_empty", {"must": [{"is_empty": {"key": "tags"}}]}, {3, 4, 5}),
    ("is_null", {"must": [{"is_null": {"key": "user_id"}}]}, {5}),
    ("has_id", {"must": [{"has_id": [2, 5]}]}, {2, 5}),
    ("nested filter in must", {"must": [{"should": [{"key": "user_id", "match": {"value": "u3"}}]}]}, {4}),
    ("nested array objects", {"must": [{"nested": {"key": "items", "filter": {"must": [
        {"key": "sku", "match": {"value": "b"}}, {"key": "qty", "range": {"gte": 5}}]}}}]}, {4}),
    ("array projection", {"must": [{"key": "items[].sku", "match": {"value": "a"}}]}, {4}),
    ("min_should", {"min_should": {"min_count": 2, "conditions": [
        {"key": "event_type", "match": {"value": "view"}}, {"key": "user_id", "match": {"value": "u2"}},
        {"key": "product.category", "match": {"value": "books"}}]}}, {1, 3}),
    ("single condition, not a list", {"must": {"key": "user_id", "match": {"value": "u2"}}}, {2, 3}),
    ("missing key matches nothing", {"must": [{"key": "nope", "match": {"value": "x"}}]}, set()),
]


def make_keyword_index(cl, key):
    status, body = cl("PUT", f"/collections/{C}/index?wait=true",
                      {"field_name": key, "field_schema": "keyword"})
    assert status == 200, body


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "keyword indexes"])
@pytest.mark.parametrize("what,flt,expected", FILTERS, ids=[f[0] for f in FILTERS])
def test_filters_select_exactly(q, cl, what, flt, expected, indexed):
    """Each filter selects the same set through count, scroll and query, with or
    without keyword indexes (one made before the points, the others after)."""
    make_collection(cl, size=2)
    if indexed:
        make_keyword_index(cl, "event_type")
    upsert(cl, [{**e, "vector": [1, e["id"]]} for e in EVENTS])
    if indexed:
        for key in ("user_id", "product.category", "tags", "items[].sku"):
            make_keyword_index(cl, key)
    status, body = cl("POST", f"/collections/{C}/points/count", {"filter": flt, "exact": True})
    assert status == 200, body
    assert body["result"]["count"] == len(expected), what
    _, body = cl("POST", f"/collections/{C}/points/scroll", {"filter": flt, "limit": 100})
    assert {p["id"] for p in body["result"]["points"]} == expected, what
    _, body = cl("POST", f"/collections/{C}/points/query", {"query": [1, 1], "filter": flt, "limit": 100})
    assert {p["id"] for p in body["result"]["points"]} == expected, what


def test_keyword_index_follows_overwrites_and_deletes(q, cl):
    """The index only narrows; it must follow every change, or a delete by filter
    (the sink's way to drop a document's stale chunks) would miss points."""
    make_collection(cl, size=2)
    make_keyword_index(cl, "parent_id")
    upsert(cl, [{"id": i, "vector": [1, i], "payload": {"parent_id": f"d{i % 3}"}} for i in range(9)])
    upsert(cl, [{"id": 0, "vector": [1, 0], "payload": {"parent_id": "d9"}}])  # moves 0 to d9
    status, _ = cl("POST", f"/collections/{C}/points/batch?wait=true", {"operations": [
        {"delete": {"filter": {"should": [{"key": "parent_id", "match": {"any": ["d0", "d1"]}},
                                          {"has_id": [2]}]}}},
        {"upsert": {"points": [{"id": 20, "vector": [1, 2], "payload": {"parent_id": "d0"}}]}}]})
    assert status == 200
    assert sorted(q.points(C)) == [0, 5, 8, 20]
    status, body = cl("POST", f"/collections/{C}/points/count",
                      {"filter": {"must": [{"key": "parent_id", "match": {"value": "d9"}}]}, "exact": True})
    assert (status, body["result"]["count"]) == (200, 1)
    status, body = cl("POST", f"/collections/{C}/points/count",
                      {"filter": {"must": [{"key": "parent_id", "match": {"value": "d0"}}]}, "exact": True})
    assert (status, body["result"]["count"]) == (200, 1)


def test_field_condition_without_condition_is_400(q, cl):
    make_collection(cl, size=2)
    status, body = cl("POST", f"/collections/{C}/points/count", {"filter": {"must": [{"key": "x"}]}})
    assert status == 400 and "At least one field condition" in body["status"]["error"]


def test_scroll_pages_in_id_order(q, cl):
    """Scroll: ints before UUIDs, next_page_offset chains through every point once."""
    make_collection(cl, size=2)
    uids = [str(uuid.uuid4()) for _ in range(5)]
    upsert(cl, [{"id": i, "vector": [1, 0]} for i in (9, 3, 27)] + [{"id": u, "vector": [0, 1]} for u in uids])
    seen, offset = [], None
    while True:
        req = {"limit": 3, "with_payload": False}
        if offset is not None:
            req["offset"] = offset
        _, body = cl("POST", f"/collections/{C}/points/scroll", req)
        seen += [p["id"] for p in body["result"]["points"]]
        offset = body["result"]["next_page_offset"]
        if offset is None:
            break
    assert seen == [3, 9, 27] + sorted(uids, key=lambda u: uuid.UUID(u).int)


# ------------------------------------------------------------------ faults

def test_fail_window_answers_status_then_recovers(q, cl):
    """fail(503, for_s): every request in the window gets 503 + Qdrant error body,
    nothing is stored; afterwards all is normal."""
    make_collection(cl, size=2)
    q.fail(status=503, for_s=0.4)
    status, body = cl("PUT", f"/collections/{C}/points?wait=true", {"points": [{"id": 1, "vector": [1, 0]}]})
    assert status == 503 and "error" in body["status"]
    assert cl("GET", "/healthz")[0] == 503
    time.sleep(0.45)
    upsert(cl, [{"id": 2, "vector": [1, 0]}])
    assert list(q.points(C)) == [2]


def test_fail_next_and_connection_drop(q, cl):
    """fail_next(n): exactly n requests fail; status 0 closes the connection unanswered."""
    make_collection(cl, size=2)
    q.fail_next(2, status=500)
    assert cl("GET", f"/collections/{C}")[0] == 500
    assert cl("GET", f"/collections/{C}")[0] == 500
    assert cl("GET", f"/collections/{C}")[0] == 200
    q.fail_next(1, status=0)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        cl("GET", f"/collections/{C}")
    cl.close()
    assert cl("GET", f"/collections/{C}")[0] == 200


def test_hang_outlasts_client_timeout(q):
    """hang(for_s): a client with a shorter timeout times out; once the window is
    over requests are served again. hang(status=None) only delays."""
    make_collection(Client(q.url), size=2)
    q.hang(0.8)
    impatient = Client(q.url, timeout=0.3)
    with pytest.raises(socket.timeout):
        impatient("GET", f"/collections/{C}")
    time.sleep(0.6)
    assert Client(q.url)("GET", f"/collections/{C}")[0] == 200
    q.hang(0.3, status=None)
    t0 = time.monotonic()
    assert Client(q.url)("GET", f"/collections/{C}")[0] == 200
    assert time.monotonic() - t0 >= 0.25


def test_slow_delays_each_request(q, cl):
    make_collection(cl, size=2)
    q.slow(150)
    t0 = time.monotonic()
    assert cl("GET", f"/collections/{C}")[0] == 200
    assert time.monotonic() - t0 >= 0.14
    q.slow(0)
    t0 = time.monotonic()
    cl("GET", f"/collections/{C}")
    assert time.monotonic() - t0 < 0.1


def test_reject_when_refuses_the_batch_holding_the_point(q, cl):
    """reject_when(field=, value=): a batch with a matching point -> 400, none of the
    batch stored; other batches pass. Predicates work too; reset() clears."""
    make_collection(cl, size=2)
    q.reject_when(field="product.category", value="X")
    status, body = cl("PUT", f"/collections/{C}/points?wait=true", {"points": [
        {"id": 1, "vector": [1, 0], "payload": {"product": {"category": "Y"}}},
        {"id": 2, "vector": [1, 0], "payload": {"product": {"category": "X"}}}]})
    assert status == 400 and body["status"]["error"].startswith("Wrong input: point 2 refused"), body
    assert q.points(C) == {}
    upsert(cl, [{"id": 1, "vector": [1, 0], "payload": {"product": {"category": "Y"}}}])
    q.reject_when(lambda p: p["id"] == 7)
    status, _ = cl("PUT", f"/collections/{C}/points?wait=true", {"points": [{"id": 7, "vector": [1, 0]}]})
    assert status == 400
    q.reset()
    upsert(cl, [{"id": 2, "vector": [1, 0], "payload": {"product": {"category": "X"}}}, {"id": 7, "vector": [0, 1]}])
    assert sorted(q.points(C)) == [1, 2, 7]
    assert q.stats()["rejected_batches"] == 2


def test_stop_refuses_connections_and_start_keeps_data(q, cl):
    make_collection(cl, size=2)
    upsert(cl, [{"id": 1, "vector": [1, 0]}])
    q.stop()
    with pytest.raises(OSError):
        Client(q.url, timeout=1)("GET", "/healthz")
    q.start()
    assert Client(q.url)("GET", f"/collections/{C}")[1]["result"]["points_count"] == 1


# ------------------------------------------------------------------ auth, HTTP

def test_api_key_enforced():
    """With api_key: no key / wrong key -> 401; `api-key: K` or `Authorization:
    Bearer K` -> served; /, /healthz, /readyz need no key."""
    with QdrantTestServer(api_key="s3cret") as q:
        anon = Client(q.url)
        status, body = anon("GET", "/collections")
        assert status == 401 and "Must provide an API key" in body
        assert Client(q.url, api_key="wrong")("GET", "/collections")[0] == 401
        assert Client(q.url, api_key="s3cret")("GET", "/collections")[0] == 200
        assert anon("GET", "/collections", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert anon("GET", "/healthz")[0] == 200
        assert q.schema_errors == []


def test_keep_alive_one_connection_for_everything(q, cl):
    """Every answer (200, 400, 404, 409) is Content-Length framed on one HTTP/1.1
    connection, as libcurl's keep-alive needs."""
    make_collection(cl, size=2)
    sock = cl.conn.sock
    cl("PUT", f"/collections/{C}", {"vectors": {"size": 2, "distance": "Cosine"}})        # 409
    cl("GET", "/collections/nope")                                                        # 404
    cl("PUT", f"/collections/{C}/points?wait=true", {"points": [{"id": 1, "vector": [1]}]})  # 400
    for i in range(20):
        upsert(cl, [{"id": i, "vector": [1, i]}])
    assert cl.conn.sock is sock, "the server closed a keep-alive connection"


def _raw_http(port: int, head: bytes, body_parts: list[bytes], expect_continue=False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head)
        if expect_continue:
            assert s.recv(1024).startswith(b"HTTP/1.1 100"), "no 100 Continue"
        for part in body_parts:
            s.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                [l for l in data.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1]):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_expect_100_continue_and_chunked_bodies(q, cl):
    """libcurl sends `Expect: 100-continue` for larger bodies, and chunked bodies
    when it does not know the size; both are served."""
    make_collection(cl, size=2)
    body = json.dumps({"points": [{"id": 1, "vector": [1, 0]}]}).encode()
    head = (f"PUT /collections/{C}/points?wait=true HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()
    assert _raw_http(q.port, head, [body], expect_continue=True).startswith(b"HTTP/1.1 200")
    body = json.dumps({"points": [{"id": 2, "vector": [0, 1]}]}).encode()
    head = (f"PUT /collections/{C}/points?wait=true HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunks = [b"%x\r\n%s\r\n" % (len(body[:10]), body[:10]), b"%x\r\n%s\r\n" % (len(body[10:]), body[10:]), b"0\r\n\r\n"]
    assert _raw_http(q.port, head, chunks).startswith(b"HTTP/1.1 200")
    assert sorted(q.points(C)) == [1, 2]


# ------------------------------------------------------------------ CLI

def test_cli_serves_and_control_api_drives_it():
    """`python3 qdrant_server.py --port P` answers on P; /__control/fail, /reject,
    /reset, /stats and /points drive and inspect it over HTTP."""
    port = stable_free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "qdrant_server.py"), "--port", str(port),
                             "--api-key", "k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"qdrant_server listening on http://127.0.0.1:{port}", (
            line, proc.stderr.read() if proc.poll() is not None else "")
        url = f"http://127.0.0.1:{port}"
        cl, ctl = Client(url, api_key="k"), Client(url)
        make_collection(cl, size=2)
        assert ctl("POST", "/__control/fail", {"status": 502, "for_s": 0.3})[0] == 200
        assert cl("GET", f"/collections/{C}")[0] == 502
        time.sleep(0.35)
        assert ctl("POST", "/__control/reject", {"field": "product.category", "value": "X"})[0] == 200
        status, _ = cl("PUT", f"/collections/{C}/points?wait=true",
                       {"points": [{"id": 1, "vector": [1, 0], "payload": {"product": {"category": "X"}}}]})
        assert status == 400
        assert ctl("POST", "/__control/slow", {"delay_ms": 1})[0] == 200
        assert ctl("POST", "/__control/reset", {})[0] == 200
        upsert(cl, [{"id": 1, "vector": [1, 0], "payload": {"product": {"category": "X"}}}])
        status, stats = ctl("GET", "/__control/stats")
        assert status == 200 and stats["collections"][C]["points"] == 1 and stats["schema_errors"] == []
        assert stats["by_status"].get("502") == 1 and stats["rejected_batches"] == 1
        _, pts = ctl("GET", f"/__control/points/{C}?vectors=0")
        assert pts == {"points": {"1": {"payload": {"product": {"category": "X"}}}}}
        assert ctl("GET", "/__control/nope")[0] == 404
    finally:
        proc.terminate()
        proc.wait(10)
