#!/usr/bin/env python3
"""A small Qdrant test server for the e2e tests (no real Qdrant can be installed here).

Standard library HTTP (ThreadingHTTPServer, HTTP/1.1 keep-alive, Content-Length)
plus `jsonschema`. It speaks the subset of Qdrant's REST API that the embedstream
Qdrant sink and the `search.backend: qdrant` path use, keeps points in memory,
and checks every request body it receives and every response body it sends
against Qdrant's own OpenAPI document (`tests/fixtures/qdrant/openapi-master.json`,
vendored with its source and licence beside it).
Anything that does not validate is answered the way Qdrant answers it (400
"Validation error in JSON body: ...") AND recorded in `.schema_errors`, which a
test asserts is empty: a client bug (or a bug in this server) cannot pass silently.

In-process use:

    from qdrant_server import QdrantTestServer
    with QdrantTestServer(port=0, api_key=None) as q:      # background thread
        q.url                                               # http://127.0.0.1:<port>
        ... run embedstream with qdrant.url = q.url ...
        q.points("ecommerce_embeddings")    # {id: {"vector": [...], "payload": {...}}}
        q.collections()                     # {name: {"size": 384, "distance": "Cosine", "points": n}}
        assert q.schema_errors == []

Fault injection (applies to every Qdrant route, never to /__control):
    q.fail(status=503, for_s=10)   every request answers `status` for the next 10 s
                                   (status=0: the connection is closed without an answer)
    q.fail_next(n, status=503)     the next n requests answer `status`
    q.hang(for_s, status=503)      requests arriving in the next for_s seconds are held
                                   until that window ends (past a client timeout), then
                                   answered `status` (status=None: then served normally)
    q.slow(delay_ms)               every request is served delay_ms late (0: off)
    q.reject_when(predicate) / q.reject_when(field="product.category", value="X")
                                   an upsert whose batch holds a matching point is refused
                                   whole with 400 and a Qdrant-shaped error (like a real
                                   Qdrant refusing a bad point); nothing of it is stored
    q.reset()                      clears all of the above (reset(data=True): also the
                                   collections, the request log and schema_errors)
    q.stop() / q.start()           close the port (connections refused) and reopen it on
                                   the same port, keeping the data

CLI (for benchmarks and tests in other languages):

    python3 tests/e2e/qdrant_server.py --port 6333 [--api-key K] [--host 127.0.0.1]

prints `qdrant_server listening on http://HOST:PORT` and serves the same API with
a control API on the same port (no api key needed):

    POST /__control/fail       {"status": 503, "for_s": 10}
    POST /__control/fail_next  {"n": 3, "status": 503}
    POST /__control/hang       {"for_s": 5, "status": 503}     (status null: delay only)
    POST /__control/slow       {"delay_ms": 200}
    POST /__control/reject     {"field": "product.category", "value": "X"}
    POST /__control/reset      {"data": false}
    GET  /__control/stats      {"collections": {name: {...,"points": n}}, "requests": n,
                                "by_status": {...}, "upsert_points": n, "rejected_batches": n,
                                "schema_errors": [...]}
    GET  /__control/points/<collection>[?vectors=0]   {"points": {id: {"vector","payload"}}}
    GET  /__control/requests[?last=N]                 the request log

Inspection: `.requests` (method, path, status, errors, t per request), `.schema_errors`
(kind request|params|route|response|server_bug, with the offending body),
`.unsupported`, `.stats()`.

Served (Qdrant paths; request bodies validated against the named schema):
    GET  /  /healthz  /livez  /readyz           VersionInfo; text
    GET  /collections                           CollectionsResponse
    PUT  /collections/{c}                       CreateCollection (vectors {size, distance})
    GET  /collections/{c}  /collections/{c}/exists   CollectionInfo; {"exists": bool}
    DELETE /collections/{c}
    PUT  /collections/{c}/points?wait=true      PointInsertOperations ({"points": [...]} or
                                                {"batch": {...}}; update_mode, update_filter)
    POST /collections/{c}/points                PointRequest (get by ids)
    GET  /collections/{c}/points/{id}
    POST /collections/{c}/points/delete?wait=   PointsSelector (ids or filter)
    POST /collections/{c}/points/batch?wait=    UpdateOperations (upsert and delete only)
    PUT  /collections/{c}/index?wait=           CreateFieldIndex (remembered, not used)
    POST /collections/{c}/points/query          QueryRequest: query = vector | {"nearest": v}
                                                | point id | absent; filter, limit, offset,
                                                score_threshold, with_payload, with_vector, using
    POST /collections/{c}/points/count          CountRequest (filter)
    POST /collections/{c}/points/scroll         ScrollRequest (filter, limit, offset, with_*)
Filters: must / should / must_not / min_should, single condition or list, nested
Filters; FieldCondition key = dotted path (`product.category`, `items[].sku`,
`a[0]`), match value/any/except/text/phrase/prefix/text_any, range (numbers or
RFC 3339 datetimes), values_count, is_empty, is_null; has_id, nested. Typed
matching as in Qdrant: true does not match 1, 1.0 does not match 1.
Scores: Cosine = dot product of unit vectors (math.fsum, exact in double), Dot,
Euclid (L2 distance, smaller first), Manhattan; score_threshold keeps >= (<= for
distances). Ties ordered by id. with_vector returns Cosine vectors normalised, as
Qdrant stores them; `.points()` returns them as the client sent them.

Qdrant behaviour copied (Qdrant's source: src/actix/helpers.rs,
lib/storage/src/content_manager/errors.rs, src/common/auth/mod.rs): error bodies
{"status": {"error": "..."}, "time": t}; PUT on an existing collection -> 409
"Wrong input: Collection `c` already exists!"; missing collection -> 404 "Not
found: Collection `c` doesn't exist!"; DELETE of a missing collection -> 200 with
result false; wrong vector length -> 400 "Wrong input: Vector dimension error:
expected dim: N, got M" (the whole batch is refused); api key: header `api-key: K`
or `Authorization: Bearer K`, else 401 with a text body (current Qdrant; older
releases answered 403); `/`, `/healthz`, `/readyz`, `/livez` need no key. Body
requests must say `Content-Type: application/json` (actix refuses others with
400). Integers must be JSON integers (serde refuses `384.0`); NaN/Infinity and
duplicate keys are refused as serde_json does. Unknown query parameters (`wiat=`)
are refused and recorded too (Qdrant would ignore them silently).

Not served (answered 501 and listed in `.unsupported`): prefetch, fusion and other
non-nearest queries, order_by, geo conditions, named-vector sparse data.
`POST /collections/{c}/points/search` is NOT in this openapi.json (Qdrant removed
the legacy search API): it answers 404 and records a schema error, unless the
server is built with legacy_search=True.
"""
from __future__ import annotations

import argparse
import collections
import copy
import datetime as _dt
import http.server
import json
import math
import operator
import os
import pathlib
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from typing import Any, Callable, Optional

import jsonschema
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_SCHEMA = pathlib.Path(os.environ.get(
    "QDRANT_OPENAPI", REPO / "tests" / "fixtures" / "qdrant" / "openapi-master.json"))
SCHEMA_URI = "urn:qdrant-openapi"
QDRANT_VERSION = "1.15.0-embedstream-test"

__all__ = ["QdrantTestServer", "OpenApi", "DEFAULT_SCHEMA"]


# --------------------------------------------------------------------------- schema

def _oas_to_jsonschema(node: Any) -> Any:
    """One OpenAPI 3.0 schema object -> JSON Schema (draft 7).

    `nullable: true` becomes an explicit null: `{"type": T, "nullable": true}` ->
    `{"type": [T, "null"]}`; the bare `{"nullable": true}` that Qdrant puts in
    `anyOf: [X, {"nullable": true}]` becomes `{"type": "null"}` (left as `{}` it
    would accept anything and switch validation off for every optional field).
    `$ref`s are made absolute so one registry resolves them from anywhere."""
    if isinstance(node, list):
        return [_oas_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    for k, v in node.items():
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {name: _oas_to_jsonschema(s) for name, s in v.items()}
        elif k in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"):
            out[k] = v if isinstance(v, bool) else _oas_to_jsonschema(v)
        elif k == "$ref":
            out[k] = SCHEMA_URI + v if v.startswith("#") else v
        elif k in ("example", "examples", "default", "description", "deprecated", "nullable"):
            continue
        else:
            out[k] = v
    if node.get("nullable") is True:
        if "type" in out:
            t = out["type"]
            out["type"] = (list(t) if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        elif any(k in out for k in ("$ref", "anyOf", "oneOf", "allOf", "enum")):
            out = {"anyOf": [out, {"type": "null"}]}
        else:
            out = {"type": "null"}
    return out


def _translate_doc(node: Any, key: str = "") -> Any:
    """The whole OpenAPI document: every schema in it (components.schemas.*, and each
    `schema` of a parameter, request body or response) translated, the rest kept."""
    if isinstance(node, list):
        return [_translate_doc(x) for x in node]
    if not isinstance(node, dict):
        return node
    if key == "schemas":
        return {name: _oas_to_jsonschema(s) for name, s in node.items()}
    return {k: (_oas_to_jsonschema(v) if k == "schema" else _translate_doc(v, k))
            for k, v in node.items()}


def _strict_int(_checker, instance) -> bool:
    # serde refuses 384.0 for an integer field, so do we (jsonschema would accept it).
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPE_CHECKER = Draft7Validator.TYPE_CHECKER.redefine("integer", _strict_int)
_Validator = jsonschema.validators.extend(Draft7Validator, type_checker=_TYPE_CHECKER)

_INT_RANGES = {"uint": (0, 2**64 - 1), "uint64": (0, 2**64 - 1), "uint32": (0, 2**32 - 1),
               "uint8": (0, 255), "int64": (-2**63, 2**63 - 1)}


def _format_checker() -> FormatChecker:
    fc = FormatChecker()
    for name, (lo, hi) in _INT_RANGES.items():
        fc.checks(name)(lambda x, lo=lo, hi=hi: not _strict_int(None, x) or lo <= x <= hi)
    return fc


class OpenApi:
    """Qdrant's openapi.json turned into validators: one per operation's request
    body, 200 response and error responses; parameters by name."""

    def __init__(self, path: pathlib.Path = DEFAULT_SCHEMA):
        self.path = pathlib.Path(path)
        raw = json.loads(self.path.read_text())
        self.doc = _translate_doc(raw)
        self.raw = raw
        resource = Resource.from_contents(self.doc, default_specification=DRAFT7)
        self.registry = Registry().with_resource(SCHEMA_URI, resource).crawl()
        self.format_checker = _format_checker()
        self._cache: dict = {}
        self._lock = threading.Lock()

    _loaded: dict = {}

    @classmethod
    def load(cls, path: pathlib.Path = DEFAULT_SCHEMA) -> "OpenApi":
        """One shared instance per file (validators are thread-safe and cached)."""
        key = str(pathlib.Path(path).resolve())
        if key not in cls._loaded:
            cls._loaded[key] = cls(path)
        return cls._loaded[key]

    def validator(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            v = self._cache.get(key)
            if v is None:
                v = _Validator(schema, registry=self.registry, format_checker=self.format_checker)
                self._cache[key] = v
        return v

    def component(self, name: str):
        return self.validator({"$ref": f"{SCHEMA_URI}#/components/schemas/{name}"})

    def operation(self, method: str, template: str) -> Optional[dict]:
        return self.raw["paths"].get(template, {}).get(method.lower())

    def request_schema(self, method: str, template: str) -> Optional[dict]:
        op = self.operation(method, template)
        if not op or "requestBody" not in op:
            return None
        ptr = _ptr("paths", template, method.lower(), "requestBody", "content",
                   "application/json", "schema")
        return {"$ref": SCHEMA_URI + ptr}

    def response_schema(self, method: str, template: str, status: int) -> Optional[dict]:
        op = self.operation(method, template)
        if not op:
            return None
        responses = op["responses"]
        for code in (str(status), f"{status // 100}XX", "default"):
            r = responses.get(code)
            if r is None:
                continue
            content = r.get("content") or {}
            ctype = "application/json" if "application/json" in content else next(iter(content), None)
            if ctype is None:
                return {}
            return {"$ref": SCHEMA_URI + _ptr("paths", template, method.lower(), "responses",
                                               code, "content", ctype, "schema")}
        return None

    def parameters(self, method: str, template: str) -> dict:
        op = self.operation(method, template) or {}
        return {p["name"]: p for p in op.get("parameters", [])}

    def errors(self, schema: dict, instance: Any) -> list[str]:
        """All validation errors as readable strings, each prefixed with the JSON path
        of the offending value (`points[3].vector`)."""
        v = self.validator(schema)
        errs = sorted(v.iter_errors(_shrink_vectors(instance)), key=lambda e: _jpath(e.absolute_path))
        return [_describe(e) for e in errs]


def _shrink_vectors(x: Any) -> Any:
    """Validation speed-up that cannot change the verdict: a long all-number list
    holding a non-integer (a vector) is cut to one float (+ one int if it has one).
    Such a list only ever meets `array of number` (true either way) or `array of
    integer` (false either way) in openapi.json; no number array there has
    minItems/maxItems/uniqueItems. 64 x 384 floats: ~150 ms -> ~2 ms."""
    if isinstance(x, list):
        if len(x) > 16:
            first_float = first_int = None
            for e in x:
                if type(e) is float:
                    if first_float is None:
                        first_float = e
                elif type(e) is int:
                    if first_int is None:
                        first_int = e
                else:
                    break
            else:
                if first_float is not None:
                    return [first_float] + ([first_int] if first_int is not None else [])
        return [_shrink_vectors(e) for e in x]
    if isinstance(x, dict):
        return {k: _shrink_vectors(v) for k, v in x.items()}
    return x


def _branches(err) -> list:
    """For an anyOf/oneOf failure: each alternative's leaf errors, closest first
    (deepest, then fewest wrong-type errors, then fewest errors)."""
    groups: dict = {}
    for sub in err.context:
        groups.setdefault(sub.relative_schema_path[0], []).append(sub)
    ranked = []
    for errs in groups.values():
        leaves = [leaf for e in errs for leaf in (_branches(e)[0] if e.context else [e])]
        depth = max(len(leaf.absolute_path) for leaf in leaves)
        type_errors = sum(1 for leaf in leaves if leaf.validator == "type")
        ranked.append(((-depth, type_errors, len(leaves)), leaves))
    ranked.sort(key=lambda r: r[0])
    return [leaves for _, leaves in ranked]


def _describe(err) -> str:
    if err.context:
        alts = [", ".join(f"{_jpath(l.absolute_path) or '(body)'}: {l.message}" for l in leaves)
                for leaves in _branches(err)[:2]]
        return (f"{_jpath(err.absolute_path) or 'the body'} matches none of its allowed forms; "
                "closest: " + " | or: ".join(alts))
    where = _jpath(err.absolute_path)
    return f"{where}: {err.message}" if where else err.message


def _ptr(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _jpath(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


# --------------------------------------------------------------------------- ids, paths

def parse_point_id(value: Any) -> Any:
    """A Qdrant point id: unsigned int, or a UUID string (canonical lowercase)."""
    if isinstance(value, bool):
        raise ValueError(f"bad point id {value!r}")
    if isinstance(value, int):
        if 0 <= value < 2**64:
            return value
        raise ValueError(f"point id out of range: {value}")
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"Unable to parse UUID: {value}") from None
    raise ValueError(f"bad point id {value!r}")


def _id_sort_key(pid):
    # Qdrant orders numeric ids before UUIDs, UUIDs by their 128-bit value.
    return (0, pid) if isinstance(pid, int) else (1, uuid.UUID(pid).int)


_SEG = re.compile(r'(?:"((?:[^"\\]|\\.)*)"|([^.\[\]"]+))((?:\[\d*\])*)')


def parse_key(key: str) -> list:
    """Qdrant JSON path: `a.b`, `a[]`, `a[0]`, `"dotted.name".x` -> steps."""
    steps, pos = [], 0
    while pos < len(key):
        m = _SEG.match(key, pos)
        if not m:
            raise ValueError(f"bad payload key {key!r}")
        steps.append(("key", m.group(1) if m.group(1) is not None else m.group(2)))
        for idx in re.findall(r"\[(\d*)\]", m.group(3)):
            steps.append(("all", None) if idx == "" else ("idx", int(idx)))
        pos = m.end()
        if pos < len(key):
            if key[pos] != ".":
                raise ValueError(f"bad payload key {key!r}")
            pos += 1
    return steps


def raw_values_at(payload: Any, key: str) -> list:
    """The values the path reaches, arrays at the end left as they are."""
    cur = [payload]
    for kind, arg in parse_key(key):
        nxt = []
        for v in cur:
            if kind == "key" and isinstance(v, dict) and arg in v:
                nxt.append(v[arg])
            elif kind == "all" and isinstance(v, list):
                nxt.extend(v)
            elif kind == "idx" and isinstance(v, list) and arg < len(v):
                nxt.append(v[arg])
        cur = nxt
    return cur


def values_at(payload: Any, key: str) -> list:
    """The values a FieldCondition sees: walk the path, then flatten one array level
    (so "city" = ["Berlin", "London"] matches "London", as in Qdrant)."""
    out = []
    for v in raw_values_at(payload, key):
        out.extend(v if isinstance(v, list) else [v])
    return out


def _same(a, b) -> bool:
    """Typed equality: true != 1, 1.0 != 1 (Qdrant keeps keyword/int/bool apart)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_dt(s: str) -> Optional[_dt.datetime]:
    try:
        d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, AttributeError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)


class Unsupported(Exception):
    """A valid Qdrant request this test server does not implement (-> 501)."""


class BadInput(Exception):
    """A request Qdrant would refuse with 400 (message already Qdrant-worded)."""


def _as_list(x) -> list:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def validate_filter(flt: Optional[dict]) -> None:
    """Up-front checks Qdrant makes whatever the data: every FieldCondition names a
    condition, keys parse; conditions this server lacks raise Unsupported."""
    if not flt:
        return
    conds = [c for k in ("must", "should", "must_not") for c in _as_list(flt.get(k))]
    conds += (flt.get("min_should") or {}).get("conditions", [])
    for c in conds:
        if "nested" in c:
            parse_key(c["nested"]["key"])
            validate_filter(c["nested"]["filter"])
        elif "key" in c:
            parse_key(c["key"])
            given = [k for k in _FIELD_CONDITIONS if c.get(k) is not None]
            if not given:
                raise BadInput("Validation error in JSON body: [At least one field condition "
                               f"must be specified (key {c['key']!r})]")
            if any(k.startswith("geo_") for k in given):
                raise Unsupported("geo conditions")
        elif "slice" in c:
            raise Unsupported("slice condition")
        elif not any(k in c for k in ("has_id", "has_vector", "is_empty", "is_null")):
            validate_filter(c)


_FIELD_CONDITIONS = ("match", "range", "values_count", "is_empty", "is_null",
                     "geo_bounding_box", "geo_radius", "geo_polygon")


def check_filter(flt: Optional[dict], point: "Point") -> bool:
    """Qdrant filter semantics: must (all), should (any, if any given), min_should,
    must_not (none)."""
    if not flt:
        return True
    for c in _as_list(flt.get("must")):
        if not check_condition(c, point):
            return False
    for c in _as_list(flt.get("must_not")):
        if check_condition(c, point):
            return False
    should = _as_list(flt.get("should"))
    if should and not any(check_condition(c, point) for c in should):
        return False
    ms = flt.get("min_should")
    if ms:
        hits = sum(1 for c in ms["conditions"] if check_condition(c, point))
        if hits < ms["min_count"]:
            return False
    return True


def check_condition(c: dict, point: "Point") -> bool:
    if "nested" in c:
        nested = c["nested"]
        for elem in values_at(point.payload or {}, nested["key"]):
            if isinstance(elem, dict) and check_filter(nested["filter"], Point(point.id, None, elem)):
                return True
        return False
    if "has_id" in c:
        return point.id in {parse_point_id(i) for i in c["has_id"]}
    if "has_vector" in c:
        return point.vector is not None and c["has_vector"] in point.vector
    if "is_empty" in c and isinstance(c["is_empty"], dict):
        return _is_empty(point, c["is_empty"]["key"])
    if "is_null" in c and isinstance(c["is_null"], dict):
        return _is_null(point, c["is_null"]["key"])
    if "key" in c:
        return check_field(c, point)
    if any(k in c for k in ("slice",)):
        raise Unsupported(f"condition {sorted(c)}")
    return check_filter(c, point)  # a nested Filter


def _is_empty(point, key) -> bool:
    """Qdrant: the field is missing, null or []."""
    return all(v is None for v in values_at(point.payload or {}, key))


def _is_null(point, key) -> bool:
    """Qdrant: the field exists and is null (missing is not null)."""
    return any(v is None for v in raw_values_at(point.payload or {}, key))


def check_field(c: dict, point: "Point") -> bool:
    key = c["key"]
    given = [k for k in _FIELD_CONDITIONS if c.get(k) is not None]
    values = values_at(point.payload or {}, key)
    for kind in given:
        arg = c[kind]
        if kind == "match":
            ok = _check_match(arg, values)
        elif kind == "range":
            ok = _check_range(arg, values)
        elif kind == "values_count":
            n = len(values)
            ok = all(op(n, arg[k]) for k, op in (("lt", operator.lt), ("gt", operator.gt),
                                                  ("lte", operator.le), ("gte", operator.ge))
                     if arg.get(k) is not None)
        elif kind == "is_empty":
            ok = _is_empty(point, key) == arg
        elif kind == "is_null":
            ok = _is_null(point, key) == arg
        else:
            raise Unsupported(f"{kind} condition")
        if not ok:
            return False
    return True


def _check_match(m: dict, values: list) -> bool:
    if "value" in m:
        return any(_same(v, m["value"]) for v in values)
    if "any" in m:
        return any(_same(v, x) for v in values for x in m["any"])
    if "except" in m:
        # "Should have at least one value not matching the any given values"; no value: true
        return not values or any(not any(_same(v, x) for x in m["except"]) for v in values)
    if "text" in m:
        return any(isinstance(v, str) and m["text"] in v for v in values)
    if "phrase" in m:
        return any(isinstance(v, str) and m["phrase"] in v for v in values)
    if "prefix" in m:
        return any(isinstance(v, str) and v.startswith(m["prefix"]) for v in values)
    if "text_any" in m:
        words = m["text_any"].split()
        return any(isinstance(v, str) and any(w in v.split() for w in words) for v in values)
    raise Unsupported(f"match {sorted(m)}")


def _check_range(r: dict, values: list) -> bool:
    bounds = {k: r[k] for k in ("lt", "gt", "lte", "gte") if r.get(k) is not None}
    ops = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}
    if any(isinstance(b, str) for b in bounds.values()):
        bounds = {k: _parse_dt(b) for k, b in bounds.items()}
        cands = [_parse_dt(v) for v in values if isinstance(v, str)]
        cands = [d for d in cands if d is not None]
    else:
        cands = [v for v in values if _num(v)]
    return any(all(ops[k](v, b) for k, b in bounds.items()) for v in cands)


# --------------------------------------------------------------------------- storage

class Point:
    __slots__ = ("id", "vector", "payload", "version", "unit")

    def __init__(self, pid, vector, payload, version=0):
        self.id = pid
        self.vector = vector        # {name: [floats]}, "" = the unnamed vector
        self.payload = payload
        self.version = version
        self.unit = None            # {name: normalised vector} for Cosine


class Collection:
    def __init__(self, name: str, vectors_config: Optional[dict], body: dict):
        self.name = name
        self.body = body
        if vectors_config is None:
            self.vectors = {}
            self.single = False
        elif "size" in vectors_config and "distance" in vectors_config:
            self.vectors = {"": vectors_config}
            self.single = True
        else:
            self.vectors = dict(vectors_config)
            self.single = False
        self.points: dict = {}
        self.op_id = 0
        # Keyword payload indexes (PUT .../index, field_schema keyword): key ->
        # value -> point ids. They only narrow the points a filter is checked
        # against; check_filter still decides (so a result never depends on them).
        self.keyword_index: dict = {}

    def put(self, p: "Point") -> None:
        self.remove(p.id)
        self.points[p.id] = p
        for key, index in self.keyword_index.items():
            for v in values_at(p.payload or {}, key):
                if isinstance(v, str):
                    index.setdefault(v, set()).add(p.id)

    def remove(self, pid) -> None:
        old = self.points.pop(pid, None)
        if old is None:
            return
        for key, index in self.keyword_index.items():
            for v in values_at(old.payload or {}, key):
                if isinstance(v, str) and v in index:
                    index[v].discard(pid)
                    if not index[v]:
                        del index[v]

    def add_keyword_index(self, key: str) -> None:
        index: dict = {}
        for p in self.points.values():
            for v in values_at(p.payload or {}, key):
                if isinstance(v, str):
                    index.setdefault(v, set()).add(p.id)
        self.keyword_index[key] = index

    def candidates(self, flt: Optional[dict]) -> Optional[set]:
        """A superset of the ids of the points `flt` can match, from has_id and
        the keyword indexes; None when they cannot narrow it (check every point)."""
        if not isinstance(flt, dict):
            return None
        for cond in _as_list(flt.get("must")):
            got = self._condition_candidates(cond)
            if got is not None:
                return got
        should = _as_list(flt.get("should"))
        if should and not flt.get("min_should"):
            out: set = set()
            for cond in should:
                got = self._condition_candidates(cond)
                if got is None:
                    return None
                out |= got
            return out
        return None

    def _condition_candidates(self, cond: Any) -> Optional[set]:
        if not isinstance(cond, dict):
            return None
        if "has_id" in cond:
            try:
                return {parse_point_id(i) for i in cond["has_id"]}
            except (TypeError, ValueError):
                return None
        if "key" in cond:
            index = self.keyword_index.get(cond["key"])
            m = cond.get("match")
            if index is None or not isinstance(m, dict):
                return None
            if "value" in m:
                wanted = [m["value"]]
            elif "any" in m and isinstance(m["any"], list):
                wanted = m["any"]
            else:
                return None
            if not all(isinstance(v, str) for v in wanted):
                return None
            out: set = set()
            for v in wanted:
                out |= index.get(v, set())
            return out
        if any(k in cond for k in ("must", "should", "must_not", "min_should")):
            return self.candidates(cond)  # a nested Filter
        return None

    def vector_params(self, name: Optional[str]) -> dict:
        key = name if name else ""
        if key not in self.vectors:
            raise BadInput(f"Wrong input: Not existing vector name error: {name or ''}")
        return self.vectors[key]

    def normalise_vector(self, vec: Any) -> dict:
        """A point's VectorStruct -> {name: floats}, checking names and dims."""
        if isinstance(vec, list) and (not vec or not isinstance(vec[0], list)):
            vec = {"": vec}
        elif isinstance(vec, dict):
            pass
        else:
            raise Unsupported("multi-vectors / inference objects")
        out = {}
        for name, v in vec.items():
            if not isinstance(v, list) or not all(type(x) is float or _num(x) for x in v):
                raise Unsupported(f"vector {name!r} that is not a dense vector")
            params = self.vector_params(name)
            if len(v) != params["size"]:
                raise BadInput("Wrong input: Vector dimension error: expected dim: "
                               f"{params['size']}, got {len(v)}")
            out[name] = [float(x) for x in v]
        return out

    def info(self) -> dict:
        vectors = self.vectors[""] if self.single else self.vectors
        return {
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": len(self.points),
            "segments_count": 1,
            "config": {
                "params": {"vectors": copy.deepcopy(vectors), "shard_number": 1,
                           "replication_factor": 1, "write_consistency_factor": 1,
                           "on_disk_payload": True},
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                                "max_indexing_threads": 0, "on_disk": False},
                "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                     "default_segment_number": 0, "max_segment_size": None,
                                     "memmap_threshold": None, "indexing_threshold": 10000,
                                     "flush_interval_sec": 5, "max_optimization_threads": None},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                "quantization_config": None,
            },
            "payload_schema": {},
        }


def _dot(a, b) -> float:
    return math.fsum(map(operator.mul, a, b))  # correctly rounded: scores are exact


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n > 0 else list(v)


def score(distance: str, query: list, point: Point, name: str) -> float:
    """Qdrant's score: Cosine = dot of unit vectors (query already normalised by the
    caller), Dot, Euclid = L2 distance, Manhattan = L1 distance."""
    vec = point.vector[name]
    if distance == "Cosine":
        return _dot(query, point.unit[name])
    if distance == "Dot":
        return _dot(query, vec)
    if distance == "Euclid":
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(query, vec)))
    if distance == "Manhattan":
        return sum(abs(a - b) for a, b in zip(query, vec))
    raise Unsupported(f"distance {distance}")


def _higher_is_better(distance: str) -> bool:
    return distance in ("Cosine", "Dot")


def select_payload(payload: Optional[dict], with_payload) -> Any:
    if with_payload in (None, False) or payload is None:
        return None if with_payload in (None, False) else payload
    if with_payload is True:
        return copy.deepcopy(payload)
    if isinstance(with_payload, list):
        include, exclude = with_payload, None
    else:
        include, exclude = with_payload.get("include"), with_payload.get("exclude")
    if include is not None:
        out: dict = {}
        for key in include:
            head = key.split(".")[0]
            if head in payload:
                out[head] = copy.deepcopy(payload[head])
        return out
    out = copy.deepcopy(payload)
    for key in exclude or []:
        out.pop(key, None)
    return out


# --------------------------------------------------------------------------- the server

class _Route:
    def __init__(self, method, template, handler):
        self.method = method
        self.template = template
        self.handler = handler
        parts = []
        for seg in template.strip("/").split("/"):
            parts.append(r"(?P<%s>[^/]+)" % seg[1:-1] if seg.startswith("{") else re.escape(seg))
        self.regex = re.compile("^/" + "/".join(parts) + "$" if template != "/" else "^/$")


class QdrantTestServer:
    """An in-memory Qdrant (REST subset) that validates every request and response
    against openapi.json and can be told to fail. Thread-safe; one lock guards the
    state. See the module docstring for the API."""

    def __init__(self, port: int = 0, api_key: Optional[str] = None, host: str = "127.0.0.1",
                 schema_path: pathlib.Path = DEFAULT_SCHEMA, legacy_search: bool = False,
                 log_max: int = 100_000, quiet: bool = True):
        self.host = host
        self.port = port
        self.api_key = api_key
        self.legacy_search = legacy_search
        self.quiet = quiet
        self.openapi = OpenApi.load(schema_path)
        self._lock = threading.RLock()
        self._collections: dict[str, Collection] = {}
        self.requests: collections.deque = collections.deque(maxlen=log_max)
        self.schema_errors: list[dict] = []
        self.unsupported: list[dict] = []
        self._counters = collections.Counter()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._clear_faults()
        self._routes = [
            _Route("GET", "/", self._h_root),
            _Route("GET", "/healthz", self._h_text("healthz check passed")),
            _Route("GET", "/livez", self._h_text("healthz check passed")),
            _Route("GET", "/readyz", self._h_text("all shards are ready")),
            _Route("GET", "/collections", self._h_list_collections),
            _Route("GET", "/collections/{collection_name}", self._h_get_collection),
            _Route("PUT", "/collections/{collection_name}", self._h_create_collection),
            _Route("DELETE", "/collections/{collection_name}", self._h_delete_collection),
            _Route("GET", "/collections/{collection_name}/exists", self._h_exists),
            _Route("PUT", "/collections/{collection_name}/points", self._h_upsert),
            _Route("POST", "/collections/{collection_name}/points", self._h_get_points),
            _Route("GET", "/collections/{collection_name}/points/{id}", self._h_get_point),
            _Route("POST", "/collections/{collection_name}/points/delete", self._h_delete_points),
            _Route("POST", "/collections/{collection_name}/points/batch", self._h_batch),
            _Route("PUT", "/collections/{collection_name}/index", self._h_create_index),
            _Route("POST", "/collections/{collection_name}/points/query", self._h_query),
            _Route("POST", "/collections/{collection_name}/points/count", self._h_count),
            _Route("POST", "/collections/{collection_name}/points/scroll", self._h_scroll),
            _Route("POST", "/collections/{collection_name}/points/search", self._h_search),
        ]
        self._doc_templates = [_Route(m.upper(), t, None)
                               for t, ops in self.openapi.raw["paths"].items() for m in ops]

    # ----------------------------------------------------------- lifecycle
    def start(self) -> "QdrantTestServer":
        """Bind (port 0: a free one; after stop(): the same one again) and serve."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"qdrant-test-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every open connection (clients see the server gone);
        the data stays for a later start()."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_all_connections()
        if self._thread:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------- inspection
    def points(self, collection: str) -> dict:
        """{id: {"vector": list (or {name: list} for named vectors), "payload": dict|None}}
        as the client sent them (ids canonical: int, or lowercase hyphenated UUID)."""
        with self._lock:
            c = self._collections.get(collection)
            if c is None:
                raise KeyError(f"no collection {collection!r}; have {sorted(self._collections)}")
            return {pid: {"vector": list(p.vector[""]) if c.single else copy.deepcopy(p.vector),
                          "payload": copy.deepcopy(p.payload)}
                    for pid, p in c.points.items()}

    def collections(self) -> dict:
        """{name: {"size", "distance", "points", "vectors"}}"""
        with self._lock:
            out = {}
            for name, c in self._collections.items():
                p = c.vectors.get("", {})
                out[name] = {"size": p.get("size"), "distance": p.get("distance"),
                             "points": len(c.points), "vectors": copy.deepcopy(c.vectors)}
            return out

    def stats(self) -> dict:
        with self._lock:
            by_status = collections.Counter(str(r["status"]) for r in self.requests)
            return {"collections": self.collections(), "requests": len(self.requests),
                    "by_status": dict(by_status),
                    "upsert_points": self._counters["upsert_points"],
                    "rejected_batches": self._counters["rejected_batches"],
                    "failed_injected": self._counters["failed_injected"],
                    "schema_errors": list(self.schema_errors),
                    "unsupported": list(self.unsupported)}

    # ----------------------------------------------------------- fault injection
    def _clear_faults(self):
        self._fail_until = 0.0
        self._fail_status = 503
        self._fail_path: Optional[str] = None
        self._fail_next: list = []
        self._hang_until = 0.0
        self._hang_status: Optional[int] = 503
        self._slow_s = 0.0
        self._reject: list[Callable] = []

    def fail(self, status: int = 503, for_s: float = 10.0, path: Optional[str] = None) -> None:
        """Every Qdrant request (whose path contains `path`, if given) answers `status`
        with a Qdrant error body for the next for_s seconds; status 0 closes the
        connection without an answer. Nothing is stored meanwhile."""
        with self._lock:
            self._fail_status, self._fail_path = status, path
            self._fail_until = time.monotonic() + for_s

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """The next n Qdrant requests answer `status` (0: connection closed)."""
        with self._lock:
            self._fail_next.extend([status] * n)

    def hang(self, for_s: float, status: Optional[int] = 503) -> None:
        """Requests arriving during the next for_s seconds are held until the window
        ends (longer than a client timeout shorter than for_s), then answered `status`
        (None: then served normally, i.e. just a long delay)."""
        with self._lock:
            self._hang_until = time.monotonic() + for_s
            self._hang_status = status

    def slow(self, delay_ms: float) -> None:
        """Serve every Qdrant request delay_ms late (0 turns it off)."""
        with self._lock:
            self._slow_s = max(0.0, delay_ms / 1000.0)

    def reject_when(self, predicate: Optional[Callable[[dict], bool]] = None, *,
                    field: Optional[str] = None, value: Any = None) -> None:
        """Refuse (400, whole batch, nothing stored) any upsert holding a point for
        which predicate({"id","vector","payload"}) is true, or whose payload value at
        the dotted `field` equals `value` (any element, for arrays)."""
        if predicate is None:
            if field is None:
                raise ValueError("reject_when needs a predicate or field=")
            def predicate(p, field=field, value=value):
                return any(_same(v, value) or (type(v) is type(value) and v == value)
                           for v in values_at(p["payload"] or {}, field))
        with self._lock:
            self._reject.append(predicate)

    def reset(self, data: bool = False) -> None:
        """Clear faults and reject rules; data=True also drops collections, the request
        log, schema_errors and counters."""
        with self._lock:
            self._clear_faults()
            if data:
                self._collections.clear()
                self.requests.clear()
                self.schema_errors.clear()
                self.unsupported.clear()
                self._counters.clear()

    def _injected(self, path: str):
        """-> ("fail", status) | ("hang", until, status) | None; also the slow delay."""
        with self._lock:
            now = time.monotonic()
            if self._hang_until > now:
                return ("hang", self._hang_until, self._hang_status)
            if self._fail_next:
                return ("fail", self._fail_next.pop(0))
            if self._fail_until > now and (self._fail_path is None or self._fail_path in path):
                return ("fail", self._fail_status)
            return None

    # ----------------------------------------------------------- request handling
    def _record_schema_error(self, kind, method, path, errors, body=None):
        entry = {"kind": kind, "method": method, "path": path, "errors": errors}
        if body is not None:
            text = body if isinstance(body, str) else json.dumps(body)[:2000]
            entry["body"] = text[:2000]
        with self._lock:
            self.schema_errors.append(entry)
        if not self.quiet:
            print(f"qdrant_server: SCHEMA ERROR {kind} {method} {path}: {errors}",
                  file=sys.stderr, flush=True)

    def handle(self, method: str, raw_path: str, headers, body: bytes):
        """One request -> (status, content_type, body bytes) or None (drop connection)."""
        t0 = time.monotonic()
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        if path.startswith("/__control"):
            return self._control(method, path, query, body)

        entry = {"method": method, "path": raw_path, "status": None, "errors": [], "t": time.time()}
        route, params = self._match(method, path)
        template = route.template if route else None

        def finish(status, obj, ctype="application/json", injected=False):
            entry["status"] = status
            with self._lock:
                self.requests.append(entry)
            if ctype == "application/json":
                if isinstance(obj, dict) and "time" in obj:
                    obj["time"] = round(time.monotonic() - t0, 9)
                # an injected failure may use a status the operation does not document
                self._check_response(method, None if injected else template, path, status, obj)
                data = json.dumps(obj, allow_nan=False).encode()
            else:
                data = obj.encode()
            return status, ctype, data

        # faults first, like a server that is down or slow
        fault = self._injected(path)
        if fault and fault[0] == "hang":
            time.sleep(max(0.0, fault[1] - time.monotonic()))
            if fault[2] is not None:
                fault = ("fail", fault[2])
            else:
                fault = None
        if fault and fault[0] == "fail":
            with self._lock:
                self._counters["failed_injected"] += 1
            if fault[1] == 0:
                entry["status"] = 0
                with self._lock:
                    self.requests.append(entry)
                return None
            entry["errors"].append("injected failure")
            return finish(fault[1], _err(f"Service unavailable: injected by qdrant_server.py "
                                         f"(HTTP {fault[1]})"), injected=True)
        if self._slow_s:
            time.sleep(self._slow_s)

        # auth (Qdrant whitelists these)
        if self.api_key and path not in ("/", "/healthz", "/readyz", "/livez"):
            key = headers.get("api-key")
            auth = headers.get("authorization", "")
            if key is None and auth.startswith("Bearer "):
                key = auth[len("Bearer "):]
            if key is None:
                return finish(401, "Unauthorized: Must provide an API key or an Authorization "
                                   "bearer token", "text/plain")
            if key != self.api_key:
                return finish(401, "Unauthorized: Invalid API key or JWT", "text/plain")

        if route is None:
            documented = any(r.method == method and r.regex.match(path) for r in self._doc_templates)
            if documented:
                msg = f"{method} {path} is in openapi.json but not implemented by qdrant_server.py"
                with self._lock:
                    self.unsupported.append({"method": method, "path": path, "why": msg})
                entry["errors"].append(msg)
                return finish(501, _err(msg))
            msg = f"{method} {path} is not an operation of openapi.json"
            self._record_schema_error("route", method, raw_path, [msg])
            entry["errors"].append(msg)
            return finish(404, _err(f"Not found: {msg}"))
        if route.template.endswith("/points/search") and not self.legacy_search:
            msg = ("POST /collections/{c}/points/search is not in openapi.json (removed legacy "
                   "API): use POST /collections/{c}/points/query")
            self._record_schema_error("route", method, raw_path, [msg])
            entry["errors"].append(msg)
            return finish(404, _err(f"Not found: {msg}"))

        # parameters: path, query
        errors = self._check_params(method, route.template, params, query)
        if errors:
            self._record_schema_error("params", method, raw_path, errors)
            entry["errors"] += errors
            return finish(400, _err("Validation error in path or query parameters: "
                                    + "; ".join(errors)))

        # body
        req = None
        rschema = self.openapi.request_schema(method, route.template)
        if rschema is not None:
            ctype = headers.get("content-type", "")
            if ctype.split(";")[0].strip().lower() != "application/json":
                msg = f"Content type error: expected application/json, got {ctype!r}"
                self._record_schema_error("request", method, raw_path, [msg])
                entry["errors"].append(msg)
                return finish(400, _err(f"Format error in JSON body: {msg}"))
            try:
                req = _strict_json(body)
            except ValueError as e:
                msg = str(e)
                self._record_schema_error("request", method, raw_path, [msg],
                                          body.decode("utf-8", "replace"))
                entry["errors"].append(msg)
                return finish(400, _err(f"Format error in JSON body: {msg}"))
            errors = self.openapi.errors(rschema, req)
            if errors:
                self._record_schema_error("request", method, raw_path, errors, req)
                entry["errors"] += errors
                return finish(400, _err("Validation error in JSON body: " + "; ".join(errors)))
        elif body and route.template.endswith("/points/search"):
            try:
                req = _strict_json(body)
            except ValueError as e:
                return finish(400, _err(f"Format error in JSON body: {e}"))
        elif body:
            msg = f"{method} {route.template} takes no body"
            entry["errors"].append(msg)

        try:
            with self._lock:
                status, result = route.handler(params, query, req)
        except BadInput as e:
            entry["errors"].append(str(e))
            return finish(400, _err(str(e)))
        except _NotFound as e:
            entry["errors"].append(str(e))
            return finish(404, _err(str(e)))
        except _Conflict as e:
            entry["errors"].append(str(e))
            return finish(409, _err(str(e)))
        except Unsupported as e:
            msg = f"not implemented by qdrant_server.py: {e}"
            with self._lock:
                self.unsupported.append({"method": method, "path": raw_path, "why": msg})
            entry["errors"].append(msg)
            return finish(501, _err(msg))
        except Exception as e:  # a bug here must be loud, not a dropped connection
            msg = f"qdrant_server.py bug: {type(e).__name__}: {e}"
            self._record_schema_error("server_bug", method, raw_path, [msg], req)
            entry["errors"].append(msg)
            return finish(500, _err(f"Service internal error: {msg}"))
        if isinstance(result, str):
            return finish(status, result, "text/plain")
        if isinstance(result, _Raw):
            return finish(status, result.body)
        return finish(status, {"result": result, "status": "ok", "time": 0.0})

    def _match(self, method, path):
        for r in self._routes:
            m = r.regex.match(path)
            if m and r.method == method:
                return r, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
        return None, {}

    def _check_params(self, method, template, params, query) -> list[str]:
        specs = self.openapi.parameters(method, template)
        errors = []
        for name, value in params.items():
            spec = specs.get(name)
            if name == "collection_name":
                if not value or len(value) > 255 or re.search(r'[<>:"/\\|?*\x00-\x1f]', value):
                    errors.append(f"collection_name: invalid collection name {value!r}")
            elif name == "id":
                value = int(value) if value.isdigit() else value
                params["id"] = value
            if spec:
                errors += [f"{name}: {e}" for e in self.openapi.errors(_param_schema(spec), value)]
        for name, values in query.items():
            spec = specs.get(name)
            if spec is None or spec.get("in") != "query":
                errors.append(f"unknown query parameter {name!r} (openapi.json lists "
                              f"{sorted(k for k, s in specs.items() if s.get('in') == 'query')})")
                continue
            value = _coerce_query(values[-1], spec)
            query[name] = value
            errors += [f"{name}: {e}" for e in self.openapi.errors(_param_schema(spec), value)]
        return errors

    def _check_response(self, method, template, path, status, obj):
        """Every JSON body we send must match the documented response of its operation
        (errors: the operation's 4XX/default schema, ErrorResponse off the map)."""
        if template is None or template.endswith("/points/search"):
            schema = {"$ref": f"{SCHEMA_URI}#/components/schemas/ErrorResponse"} if status >= 400 else None
        else:
            schema = self.openapi.response_schema(method, template, status)
            if schema is None:
                self._record_schema_error("response", method, path, [
                    f"status {status} is not a documented response of {method} {template}"], obj)
                return
        errors = self.openapi.errors(schema, obj) if schema else []
        if errors:
            self._record_schema_error("response", method, path, errors, obj)

    # ----------------------------------------------------------- Qdrant operations
    def _h_root(self, params, query, req):
        return 200, _Raw({"title": "qdrant - vector search engine", "version": QDRANT_VERSION,
                          "commit": None})

    def _h_text(self, text):
        return lambda params, query, req: (200, text)

    def _collection(self, name) -> Collection:
        c = self._collections.get(name)
        if c is None:
            raise _NotFound(f"Not found: Collection `{name}` doesn't exist!")
        return c

    def _h_list_collections(self, params, query, req):
        return 200, {"collections": [{"name": n} for n in sorted(self._collections)]}

    def _h_get_collection(self, params, query, req):
        return 200, self._collection(params["collection_name"]).info()

    def _h_exists(self, params, query, req):
        return 200, {"exists": params["collection_name"] in self._collections}

    def _h_create_collection(self, params, query, req):
        name = params["collection_name"]
        if name in self._collections:
            raise _Conflict(f"Wrong input: Collection `{name}` already exists!")
        vectors = req.get("vectors")
        if vectors is not None and not ("size" in vectors and "distance" in vectors):
            for vname, p in vectors.items():
                if not isinstance(p, dict) or "size" not in p:
                    raise BadInput(f"Wrong input: bad vector params for {vname!r}")
        self._collections[name] = Collection(name, copy.deepcopy(vectors), req)
        return 200, True

    def _h_delete_collection(self, params, query, req):
        return 200, self._collections.pop(params["collection_name"], None) is not None

    def _update_result(self, c: Collection, query) -> dict:
        c.op_id += 1
        wait = query.get("wait", False)
        return {"operation_id": c.op_id, "status": "completed" if wait else "acknowledged"}

    def _h_upsert(self, params, query, req):
        c = self._collection(params["collection_name"])
        if "points" in req:
            items = [(p["id"], p["vector"], p.get("payload")) for p in req["points"]]
        else:
            b = req["batch"]
            ids, vecs, pls = b["ids"], b["vectors"], b.get("payloads")
            if isinstance(vecs, dict):
                if any(len(v) != len(ids) for v in vecs.values()):
                    raise BadInput("Wrong input: number of vectors and ids differ")
                vecs = [{n: vecs[n][i] for n in vecs} for i in range(len(ids))]
            if len(vecs) != len(ids) or (pls is not None and len(pls) != len(ids)):
                raise BadInput(f"Wrong input: batch has {len(ids)} ids, {len(vecs)} vectors, "
                               f"{'no' if pls is None else len(pls)} payloads")
            items = [(ids[i], vecs[i], pls[i] if pls else None) for i in range(len(ids))]
        prepared = []
        for pid, vec, payload in items:
            try:
                pid = parse_point_id(pid)
            except ValueError as e:
                raise BadInput(f"Wrong input: {e}") from None
            prepared.append((pid, c.normalise_vector(vec), payload))
        for rule in self._reject:
            for pid, vec, payload in prepared:
                if rule({"id": pid, "vector": vec.get("", vec), "payload": payload}):
                    self._counters["rejected_batches"] += 1
                    raise BadInput(f"Wrong input: point {pid} refused (reject_when rule of "
                                   f"qdrant_server.py); the batch of {len(prepared)} points "
                                   "was not applied")
        mode = req.get("update_mode") or "upsert"
        upd_filter = req.get("update_filter")
        validate_filter(upd_filter)
        result = self._update_result(c, query)
        for pid, vec, payload in prepared:
            old = c.points.get(pid)
            if old is not None and mode == "insert_only":
                continue
            if old is None and mode == "update_only":
                continue
            if old is not None and upd_filter and not check_filter(upd_filter, old):
                continue
            p = Point(pid, vec, copy.deepcopy(payload), c.op_id)
            p.unit = {n: _unit(v) for n, v in vec.items() if c.vectors[n]["distance"] == "Cosine"}
            c.put(p)
        self._counters["upsert_points"] += len(prepared)
        return 200, result

    def _h_delete_points(self, params, query, req):
        c = self._collection(params["collection_name"])
        if "points" in req:
            for pid in req["points"]:
                c.remove(parse_point_id(pid))
        else:
            for pid in [p.id for p in self._filtered(c, req["filter"])]:
                c.remove(pid)
        return 200, self._update_result(c, query)

    def _h_create_index(self, params, query, req):
        """CreateFieldIndex: remembered; a keyword index narrows the points a
        filter on that field is checked against (as Qdrant's does)."""
        c = self._collection(params["collection_name"])
        c.payload_indexes = getattr(c, "payload_indexes", {})
        c.payload_indexes[req["field_name"]] = req.get("field_schema")
        schema = req.get("field_schema")
        if schema == "keyword" or (isinstance(schema, dict) and schema.get("type") == "keyword"):
            c.add_keyword_index(req["field_name"])
        return 200, self._update_result(c, query)

    def _h_batch(self, params, query, req):
        """UpdateOperations: upserts and deletes applied in order, as one request.
        Every operation is checked before any is applied, so a refused batch
        changes nothing (this server's simplification)."""
        ops = req["operations"]
        for op in ops:
            if "upsert" not in op and "delete" not in op:
                raise Unsupported(f"batch operation {sorted(op)}")
            if "delete" in op and "filter" in op["delete"]:
                validate_filter(op["delete"]["filter"])
        c = self._collection(params["collection_name"])  # 404 for a missing collection
        results = []
        for op in ops:
            if "upsert" in op:
                _, res = self._h_upsert(params, query, op["upsert"])
            else:
                _, res = self._h_delete_points(params, query, op["delete"])
            results.append(res)
        self._counters["batch_requests"] += 1
        del c
        return 200, results

    def _record(self, c: Collection, p: Point, with_payload, with_vector) -> dict:
        rec: dict = {"id": p.id}
        pl = select_payload(p.payload, with_payload)
        if with_payload not in (None, False):
            rec["payload"] = pl
        if with_vector:
            names = list(p.vector) if with_vector is True else [n for n in with_vector if n in p.vector]
            # like Qdrant: Cosine vectors come back normalised
            vec = {n: list(p.unit[n]) if n in p.unit else list(p.vector[n]) for n in names}
            rec["vector"] = vec[""] if c.single and "" in vec else vec
        return rec

    def _h_get_point(self, params, query, req):
        c = self._collection(params["collection_name"])
        pid = parse_point_id(params["id"])
        p = c.points.get(pid)
        if p is None:
            raise _NotFound(f"Not found: No point with id {pid} found")
        return 200, self._record(c, p, True, True)

    def _h_get_points(self, params, query, req):
        c = self._collection(params["collection_name"])
        out = []
        for pid in req["ids"]:
            p = c.points.get(parse_point_id(pid))
            if p is not None:
                wp = req.get("with_payload")
                out.append(self._record(c, p, True if wp is None else wp, req.get("with_vector", False)))
        return 200, out

    def _filtered(self, c: Collection, flt) -> list:
        validate_filter(flt)
        ids = c.candidates(flt)
        pts = c.points.values() if ids is None else [c.points[i] for i in ids if i in c.points]
        return [p for p in pts if check_filter(flt, p)]

    def _h_count(self, params, query, req):
        c = self._collection(params["collection_name"])
        return 200, {"count": len(self._filtered(c, req.get("filter")))}

    def _h_scroll(self, params, query, req):
        c = self._collection(params["collection_name"])
        if req.get("order_by") is not None:
            raise Unsupported("scroll order_by")
        limit = req.get("limit") or 10
        pts = sorted(self._filtered(c, req.get("filter")), key=lambda p: _id_sort_key(p.id))
        if req.get("offset") is not None:
            start = _id_sort_key(parse_point_id(req["offset"]))
            pts = [p for p in pts if _id_sort_key(p.id) >= start]
        page, rest = pts[:limit], pts[limit:]
        wp = req.get("with_payload")
        return 200, {"points": [self._record(c, p, True if wp is None else wp,
                                             req.get("with_vector", False)) for p in page],
                     "next_page_offset": rest[0].id if rest else None}

    def _nearest(self, c: Collection, vector, using, flt, limit, offset, threshold,
                 with_payload, with_vector, exclude=None) -> list:
        params = c.vector_params(using)
        name = using or ""
        if len(vector) != params["size"]:
            raise BadInput("Wrong input: Vector dimension error: expected dim: "
                           f"{params['size']}, got {len(vector)}")
        dist = params["distance"]
        q = _unit(vector) if dist == "Cosine" else [float(x) for x in vector]
        scored = []
        for p in self._filtered(c, flt):
            if p.id == exclude or name not in p.vector:
                continue
            s = score(dist, q, p, name)
            if threshold is not None and (s < threshold if _higher_is_better(dist) else s > threshold):
                continue
            scored.append((s, p))
        sign = -1 if _higher_is_better(dist) else 1
        scored.sort(key=lambda sp: (sign * sp[0], _id_sort_key(sp[1].id)))
        out = []
        for s, p in scored[offset:offset + limit]:
            rec = self._record(c, p, with_payload, with_vector)
            rec["score"] = s
            rec["version"] = p.version
            out.append(rec)
        return out

    def _h_query(self, params, query, req):
        c = self._collection(params["collection_name"])
        if req.get("prefetch") is not None:
            raise Unsupported("query prefetch")
        if req.get("lookup_from") is not None:
            raise Unsupported("query lookup_from")
        q = req.get("query")
        limit = req.get("limit") or 10
        offset = req.get("offset") or 0
        using = req.get("using")
        exclude = None
        if isinstance(q, dict):
            if set(q) - {"nearest"}:
                raise Unsupported(f"query {sorted(q)}")
            q = q["nearest"]
        if isinstance(q, (int, str)) and not isinstance(q, bool):
            pid = parse_point_id(q)
            p = c.points.get(pid)
            if p is None:
                raise _NotFound(f"Not found: No point with id {pid} found")
            q, exclude = p.vector[using or ""], pid
        if q is None:
            pts = sorted(self._filtered(c, req.get("filter")), key=lambda p: _id_sort_key(p.id))
            out = []
            for p in pts[offset:offset + limit]:
                rec = self._record(c, p, req.get("with_payload"), req.get("with_vector"))
                rec.update(score=1.0, version=p.version)
                out.append(rec)
            return 200, {"points": out}
        if not (isinstance(q, list) and all(_num(x) for x in q)):
            raise Unsupported("query with a sparse, multi or inference vector")
        return 200, {"points": self._nearest(c, q, using, req.get("filter"), limit, offset,
                                             req.get("score_threshold"), req.get("with_payload"),
                                             req.get("with_vector"), exclude)}

    def _h_search(self, params, query, req):
        """Legacy POST /points/search (only with legacy_search=True; not in openapi.json)."""
        c = self._collection(params["collection_name"])
        req = req or {}
        vec = req.get("vector")
        using = None
        if isinstance(vec, dict):
            using, vec = vec.get("name"), vec.get("vector")
        if not isinstance(vec, list):
            raise BadInput("Format error in JSON body: missing field `vector`")
        return 200, self._nearest(c, vec, using, req.get("filter"), req.get("limit") or req.get("top") or 10,
                                  req.get("offset") or 0, req.get("score_threshold"),
                                  req.get("with_payload"), req.get("with_vector"))

    # ----------------------------------------------------------- control API
    def _control(self, method, path, query, body):
        try:
            args = json.loads(body) if body else {}
            op = path[len("/__control/"):]
            if method == "GET" and op == "stats":
                return _json(200, self.stats())
            if method == "GET" and op == "requests":
                last = int(query.get("last", ["1000"])[-1])
                with self._lock:
                    return _json(200, {"requests": list(self.requests)[-last:]})
            if method == "GET" and op.startswith("points/"):
                pts = self.points(urllib.parse.unquote(op[len("points/"):]))
                if query.get("vectors", ["1"])[-1] in ("0", "false"):
                    pts = {k: {"payload": v["payload"]} for k, v in pts.items()}
                return _json(200, {"points": {str(k): v for k, v in pts.items()}})
            if method == "POST" and op == "fail":
                self.fail(args.get("status", 503), args.get("for_s", 10), args.get("path"))
            elif method == "POST" and op == "fail_next":
                self.fail_next(args.get("n", 1), args.get("status", 503))
            elif method == "POST" and op == "hang":
                self.hang(args.get("for_s", 10), args.get("status", 503))
            elif method == "POST" and op == "slow":
                self.slow(args.get("delay_ms", 0))
            elif method == "POST" and op == "reject":
                self.reject_when(field=args["field"], value=args["value"])
            elif method == "POST" and op == "reset":
                self.reset(bool(args.get("data", False)))
            else:
                return _json(404, {"error": f"unknown control {method} {path}"})
            return _json(200, {"ok": True})
        except (ValueError, KeyError, TypeError) as e:
            return _json(400, {"error": f"{type(e).__name__}: {e}"})


class _NotFound(Exception):
    pass


class _Conflict(Exception):
    pass


def _err(msg: str) -> dict:
    return {"status": {"error": msg}, "time": 0.0}


def _json(status, obj):
    return status, "application/json", json.dumps(obj).encode()


def _param_schema(spec: dict) -> dict:
    return _oas_to_jsonschema(spec.get("schema", {}))


def _coerce_query(text: str, spec: dict) -> Any:
    """Query strings -> the JSON type their schema wants (as serde_urlencoded does)."""
    schema = spec.get("schema", {})
    t = schema.get("type")
    if t == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if t == "integer" or "$ref" in schema:
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate field `{k}`")
        out[k] = v
    return out


def _strict_json(body: bytes) -> Any:
    """Parse like serde_json: UTF-8 only, no NaN/Infinity, no duplicate keys."""
    if not body:
        raise ValueError("EOF while parsing a value at line 1 column 0")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8: {e}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at line {e.lineno} column {e.colno}") from None


class _Raw:
    """A response body sent as is (GET / is not wrapped in {"result": ...})."""

    def __init__(self, body):
        self.body = body


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stalls
    server_version = "qdrant-test"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the request log is in app.requests
        if not self.server.app.quiet:
            super().log_message(fmt, *args)

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self):
        app: QdrantTestServer = self.server.app
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = app.handle(self.command, self.path, headers, body)
        if out is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, ctype, data = out
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, *a, **kw):
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(*a, **kw)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # clients that time out or hang up (hang(), fail(status=0)) are expected here
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def close_all_connections(self):
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Qdrant test server (REST subset, validates "
                                             "against openapi.json, fault injection under /__control)")
    ap.add_argument("--port", type=int, default=6333)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-key", default=os.environ.get("QDRANT_API_KEY") or None)
    ap.add_argument("--schema", default=str(DEFAULT_SCHEMA))
    ap.add_argument("--legacy-search", action="store_true",
                    help="also serve POST /points/search (not in openapi.json)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    srv = QdrantTestServer(port=args.port, api_key=args.api_key, host=args.host,
                           schema_path=pathlib.Path(args.schema),
                           legacy_search=args.legacy_search, quiet=not args.verbose)
    srv.start()
    print(f"qdrant_server listening on {srv.url}", flush=True)
    stop = threading.Event()
    try:
        import signal
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    except KeyboardInterrupt:
        pass
    srv.stop()
    if srv.schema_errors:
        print(f"qdrant_server: {len(srv.schema_errors)} schema error(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
