"""docs/openapi.yaml, the HTTP API as OpenAPI 3.1, against the code and a server.

- the document is valid OpenAPI 3.1 (the OAS 3.1 JSON Schema, vendored in
  tests/fixtures/openapi/) and every Schema Object in it valid JSON Schema
  2020-12; every operation lists the answers the HTTP layer and the access
  policy can give it;
- GET /openapi.json serves exactly that document (as JSON);
- every route the C++ code registers (Route / RouteAsync / RouteStream calls
  and SseHub::Attach in src/) is in the document, and every operation of the
  document is routed by a running server (no router 404 or 405);
- responses across the API, errors, access control, CORS and SSE frames
  validate (conftest.py checks every response of every e2e test; here the
  rarer ones are provoked), and the checker itself refuses wrong responses.
"""
import http.client
import json
import pathlib
import re
import urllib.parse

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

import openapi_check
from service import Service, SseReader

REPO = pathlib.Path(__file__).resolve().parents[2]
OAS_SCHEMA = REPO / "tests" / "fixtures" / "openapi" / "oas-3.1-schema-2022-10-07.json"
TOKEN, READ_TOKEN, ORIGIN = "openapi-s3cret", "openapi-r3ad", "https://app.example"

# The answer to any request that the HTTP layer (and the policy) may give, and
# the `error` code it carries: every operation must list these statuses with
# that code among its `error` values.
EVERY_OPERATION = {"400": "bad_request", "413": "payload_too_large",
                   "431": "request_header_fields_too_large", "500": "internal",
                   "503": "too_many_connections"}


@pytest.fixture(scope="module")
def api():
    return openapi_check.OpenApi.load()


@pytest.fixture(scope="module")
def svc(binary, model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("openapi")
    s = Service(binary, model_dir, ["--data-dir", str(d / "data")], d / "serve.log")
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def guarded(binary, model_dir, tmp_path_factory):
    """auth.token, auth.read_token and one CORS origin."""
    d = tmp_path_factory.mktemp("openapi-auth")
    cfg = d / "serve.yaml"
    cfg.write_text(f'http:\n  cors_origins: ["{ORIGIN}"]\n')
    s = Service(binary, model_dir, ["-c", str(cfg), "--auth-token", TOKEN,
                                    "--data-dir", str(d / "data")], d / "serve.log",
                env_extra={"EMBEDSTREAM_AUTH_READ_TOKEN": READ_TOKEN})
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


# --------------------------------------------------------------------------- the document

def schema_objects(node, pointer=""):
    """(pointer, Schema Object) for every schema in an OpenAPI 3.1 document."""
    if isinstance(node, dict):
        for key, value in node.items():
            p = f"{pointer}/{key}"
            if key in ("schema", "x-sse-data"):
                yield p, value
            elif pointer == "/components/schemas":
                yield p, value
            else:
                yield from schema_objects(value, p)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from schema_objects(value, f"{pointer}/{i}")


def refs(node, pointer=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield pointer, value
            else:
                yield from refs(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{pointer}/{i}")


def error_codes(api, schema, pointer):
    """The `error` values a response schema allows (const / enum, through $refs)."""
    prop = (schema.get("properties") or {}).get("error")
    if prop is None and "$ref" in schema:  # `properties` beside a $ref narrow it
        schema, pointer = api.resolve(schema, pointer)
        prop = (schema.get("properties") or {}).get("error")
    if prop is None:
        return set()
    prop, _ = api.resolve(prop, pointer + "/properties/error")
    if "const" in prop:
        return {prop["const"]}
    return set(prop.get("enum", []))


def test_document_is_valid_openapi_3_1(api):
    doc = api.doc
    oas = json.loads(OAS_SCHEMA.read_text())
    validator = Draft202012Validator(oas, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(doc)]
    assert not problems, "not OpenAPI 3.1:\n" + "\n".join(problems[:20])
    assert doc["openapi"] == "3.1.0"
    # The OAS schema checks Schema Objects only as objects: check them as JSON Schema.
    count = 0
    for pointer, schema in schema_objects(doc):
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise AssertionError(f"{pointer}: {e.message}") from None
        count += 1
    assert count > 50
    for pointer, ref in refs(doc):
        api.resolve({"$ref": ref}, pointer)  # raises when it points nowhere
    ids = [op["operationId"] for _, _, op in api.operations()]
    assert len(ids) == len(set(ids)), ids
    # Path parameters are declared, and only a last one (the server's "/*" routes).
    for method, template, op in api.operations():
        params = {p["name"] for p in api.doc["paths"][template].get("parameters", [])
                  if p.get("in") == "path"}
        assert set(re.findall(r"\{([^}]+)\}", template)) == params, (method, template)


def test_every_operation_lists_what_any_request_can_get(api):
    """The HTTP layer's and the access policy's answers are on every operation,
    with their codes in its `error` enum."""
    missing = []
    for method, template, op in api.operations():
        base = f"/paths/{template.replace('/', '~1')}/{method.lower()}/responses"
        want = dict(EVERY_OPERATION)
        if op.get("security", api.doc["security"]):
            want["401"] = "unauthorized"
        if any("write" in roles for req in op.get("security", api.doc["security"])
               for roles in req.values()):
            want["403"] = "forbidden"
        if method == "POST":
            want["415"] = "unsupported_media_type"
        for status, code in want.items():
            response = op["responses"].get(status)
            if response is None:
                missing.append(f"{method} {template}: no {status}")
                continue
            response, rptr = api.resolve(response, f"{base}/{status}")
            media = response["content"]["application/json"]
            if code not in error_codes(api, media["schema"], rptr + "/content/application~1json/schema"):
                missing.append(f"{method} {template}: {status} lacks error {code!r}")
        if "security" in op and not op["security"]:
            assert "401" not in op["responses"], (method, template)
    assert not missing, "\n".join(missing)


def test_yaml_reads_the_same_in_yaml_1_1_and_1_2(api):
    """PyYAML reads YAML 1.1 (yes/no/on/off are booleans, 1e3 a string), yaml-cpp
    1.2: the document keeps to what both read alike. Served == file (below)
    proves it for the server's reading; this names the likely culprits."""
    text = openapi_check.DOC_PATH.read_text()
    for n, line in enumerate(text.splitlines(), 1):
        value = line.split("#")[0].partition(": ")[2].strip()
        assert value.lower() not in ("yes", "no", "on", "off", "y", "n"), (n, line)
        assert not re.fullmatch(r"[0-9]+[eE][-+]?[0-9]+", value), (n, line)
        assert not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}.*", value), (n, line)


# --------------------------------------------------------------------------- served

def test_openapi_json_is_the_yaml(svc, api):
    status, body = svc.get("/openapi.json")
    assert status == 200
    served = json.loads(body)
    assert served == yaml.safe_load(openapi_check.DOC_PATH.read_text()), \
        "GET /openapi.json differs from docs/openapi.yaml: rebuild, or the YAML reads " \
        "differently in yaml-cpp (YAML 1.2) and PyYAML (1.1): quote the value"
    assert list(served)[0] == "openapi"  # the document's own order
    assert served == api.doc


def test_openapi_json_follows_the_read_access_policy(guarded):
    assert guarded.request("GET", "/openapi.json")[0] == 401
    for headers, path in (({"Authorization": f"Bearer {READ_TOKEN}"}, "/openapi.json"),
                          ({"Authorization": f"Bearer {TOKEN}"}, "/openapi.json"),
                          ({}, f"/openapi.json?access_token={READ_TOKEN}")):
        status, body = guarded.request("GET", path, headers=headers)
        assert status == 200, (headers, path, body[:200])
        assert json.loads(body)["openapi"] == "3.1.0"


# --------------------------------------------------------------------------- coverage

ROUTE_CALL = re.compile(r"\b(Route|RouteAsync|RouteStream)\s*\(\s*\"([A-Z]+)\"\s*,\s*([^,]+),")
ATTACH_CALL = re.compile(r"->\s*Attach\s*\(\s*\w+\s*(?:,\s*\"([^\"]+)\")?\s*\)")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def registered_routes():
    """(METHOD, pattern) of every route the server code registers."""
    routes, unresolved = set(), []
    for path in sorted((REPO / "src").rglob("*.cc")):
        text = strip_comments(path.read_text())
        rel = path.relative_to(REPO)
        for kind, method, pattern in ROUTE_CALL.findall(text):
            pattern = pattern.strip()
            if pattern.startswith('"') and pattern.endswith('"'):
                routes.add((method, pattern[1:-1]))
            elif str(rel) == "src/server/sse_hub.cc" and pattern == "path":
                continue  # SseHub::Attach(server, path): its callers are below
            else:
                unresolved.append(f"{rel}: {kind}(\"{method}\", {pattern}, ...)")
        for attached in ATTACH_CALL.findall(text):
            routes.add(("GET", attached or "/events"))  # sse_hub.h: Attach's default path
    assert not unresolved, ("routes registered with a non-literal path; teach "
                            "test_openapi.registered_routes about them: " + "; ".join(unresolved))
    return routes


def documented_routes(api):
    return {(method, api.server_pattern(template)) for method, template, _ in api.operations()}


def test_every_route_the_code_registers_is_documented(api):
    code = registered_routes()
    # The parser must see the routes we know of, or it is looking at nothing.
    assert {("GET", "/health"), ("POST", "/messages"), ("GET", "/messages/*"),
            ("GET", "/events"), ("GET", "/"), ("GET", "/openapi.json")} <= code, code
    missing = sorted(code - documented_routes(api))
    assert not missing, f"routes registered in src/ but missing from docs/openapi.yaml: {missing}"
    extra = sorted(documented_routes(api) - code)
    assert not extra, f"docs/openapi.yaml documents routes src/ does not register: {extra}"


def probe(svc, method, pattern):
    path = pattern.replace("*", "openapi-probe")
    body = {} if method == "POST" else None
    return svc.request(method, path, body)


def test_every_route_is_served(svc, api):
    """Each documented operation and each registered route reaches a handler: no
    router 404 ("no route for ...") or 405. The responses are checked against
    the document on the way (conftest.py)."""
    for method, pattern in sorted(documented_routes(api) | registered_routes()):
        if pattern == "/events":
            reader = SseReader(svc.port)  # a stream: the 200 head, then frames
            reader.close()
            continue
        status, body = probe(svc, method, pattern)
        routed = not (status == 404 and "no route for" in body) and status != 405
        assert routed, (method, pattern, status, body[:200])


# --------------------------------------------------------------------------- traffic

def test_errors_access_and_cors_validate(guarded):
    """The rarer answers, each checked against the document by conftest.py's hook."""
    write = {"Authorization": f"Bearer {TOKEN}"}
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    cases = [
        ("GET", "/stats", None, {}, 401),
        ("GET", "/no/such/route", None, {}, 401),
        ("GET", "/metrics", None, {}, 401),
        ("POST", "/messages", {"message": "x"}, read, 403),
        ("DELETE", "/messages/x", None, read, 403),
        ("POST", "/documents?id=d", "text", {**read, "Content-Type": "text/plain"}, 403),
        ("GET", "/health", None, {}, 200),
        ("GET", "/ready", None, {}, 200),
        ("GET", "/no/such/route", None, read, 404),
        ("DELETE", "/messages", None, write, 405),
        ("PUT", "/messages/x", None, write, 405),
        ("POST", "/health", {}, write, 405),
        ("POST", "/messages", "text", {**write, "Content-Type": "text/plain"}, 415),
        ("POST", "/embeddings/search", "{}", {**read, "Content-Type": "text/plain"}, 415),
        ("POST", "/documents", "<b>x</b>", {**write, "Content-Type": "text/html"}, 415),
        ("OPTIONS", "/messages", None, {"Origin": ORIGIN,
                                        "Access-Control-Request-Method": "POST"}, 204),
        ("OPTIONS", "/messages", None, {"Origin": "https://evil.example",
                                        "Access-Control-Request-Method": "POST"}, 403),
        ("GET", "/stats", None, {**read, "Origin": ORIGIN}, 200),
        ("GET", "/config", None, read, 200),
        ("GET", "/metrics", None, read, 200),
        ("GET", "/", None, read, 200),
        ("GET", "/status", None, read, 200),
        ("GET", "/events?last_event_id=abc", None, read, 400),
        ("GET", "/messages?limit=0", None, read, 400),
        ("GET", "/messages?offset=-1", None, read, 400),
        ("GET", "/messages?cursor=x", None, read, 400),
        ("GET", "/messages/", None, read, 404),
        ("DELETE", "/messages/", None, write, 404),
        ("DELETE", "/messages/" + "i" * 257, None, write, 400),
        ("DELETE", "/messages/never-posted", None, write, 202),
        ("POST", "/messages", {"message": "a", "text": "b"}, write, 400),
        ("POST", "/messages", {"message": "a", "colour": "b"}, write, 400),
        ("POST", "/documents?metadata=%5B1%5D", "text", {**write, "Content-Type": "text/plain"},
         400),
        ("POST", "/embeddings/search", {"query": "a", "group_by": "x"}, read, 400),
        ("POST", "/embeddings/search", {"query": "a", "cursor": "5", "limit": 3}, read, 400),
    ]
    for method, path, body, headers, want in cases:
        status, text = guarded.request(method, path, body, headers)
        assert status == want, (method, path, status, text[:300])
    # A body over http.max_body_bytes is refused from the headers (413), before
    # the body is sent: the headers alone, through http.client (so checked too).
    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=30)
    try:
        conn.putrequest("POST", "/messages")
        for name, value in (("Authorization", f"Bearer {TOKEN}"),
                            ("Content-Type", "application/json"),
                            ("Content-Length", str(2 << 20))):
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413, (resp.status, resp.read()[:200])
        assert json.loads(resp.read())["error"] == "payload_too_large"
    finally:
        conn.close()


def test_traffic_and_sse_frames_validate(svc):
    """A message and a document through their whole lifecycle, searched, listed
    and deleted; every response and SSE frame is checked on the way."""
    sse = SseReader(svc.port, "?key=openapi-m1")
    sse_doc = SseReader(svc.port, "?key=openapi-doc")
    try:
        reply = svc.post("/messages", {"id": "openapi-m1", "message": "the quick brown fox",
                                       "user_id": "u1", "metadata": {"lang": "en"}})
        assert reply == {"id": "openapi-m1", "status": "pending", "created": True}
        assert svc.post("/messages", {"id": "openapi-m1", "message": "the quick brown fox"}) \
            ["created"] is False
        text = " ".join(f"Sentence number {i} of a long document about foxes." for i in range(200))
        status, body = svc.request(
            "POST", "/documents?id=openapi-doc&user_id=u2&metadata=" +
            urllib.parse.quote(json.dumps({"kind": "doc"})), text,
            {"Content-Type": "text/plain"})
        assert status == 202 and json.loads(body)["chunks"] > 1, body
        for reader in (sse, sse_doc):
            reader.wait_for(lambda ev: any(e["event"] == "message_completed" for e in ev))
        assert json.loads(svc.get("/messages/openapi-m1")[1])["status"] == "embedded"
        assert "chunks" in json.loads(svc.get("/messages/openapi-doc")[1])
        for request in ({"query": "fox", "limit": 5},
                        {"query": "fox", "group_by": "none", "filter": {"metadata.kind": "doc"}},
                        {"vector": [0.05] * 384, "limit": 2, "cursor": None}):
            svc.post("/embeddings/search", request)
        svc.get("/messages?limit=1")
        svc.get("/stats")
        svc.get("/status")
        svc.get("/config")
        svc.get("/metrics")
        status, body = svc.request("DELETE", "/messages/openapi-m1")
        assert status == 202 and json.loads(body)["existed"] is True
        sse.wait_for(lambda ev: any(e["event"] == "message_deleted" for e in ev))
    finally:
        sse.close()
        sse_doc.close()
    # An id ahead of any issued one: a reset frame first.
    reset = SseReader(svc.port, "?last_event_id=999999999")
    try:
        reset.wait_for(lambda ev: any(e["event"] == "reset" for e in ev), timeout=10)
    finally:
        reset.close()


# --------------------------------------------------------------------------- the checker

def test_the_checker_refuses_what_the_document_does_not_say(api):
    J = {"Content-Type": "application/json"}

    def errors(*args):
        return api.response_errors(*args)

    assert errors("GET", "/health", 200, J, b'{"status":"healthy"}') == []
    assert errors("GET", "/health", 200, J, b'{"status":"sick"}')
    assert errors("GET", "/health", 200, {"Content-Type": "text/plain"}, b"ok")
    assert errors("GET", "/health", 418, J, b'{"error":"teapot","detail":""}')
    assert errors("GET", "/nope", 200, J, b"{}")  # a route the document lacks
    assert errors("PATCH", "/messages", 200, J, b"{}")  # an operation it lacks
    assert errors("PUT", "/messages", 405, {**J, "Allow": "GET, POST, PUT"},
                  b'{"error":"method_not_allowed","detail":""}')  # Allow names one more
    assert errors("POST", "/messages", 202, J, b'{"id":"a","status":"pending"}')
    assert errors("POST", "/messages", 503, J, b'{"error":"overloaded","detail":""}')  # no Retry-After
    assert errors("GET", "/messages/a", 200, J,
                  b'{"id":"a","text":"t","metadata":null,"status":"embedded","created_at":1}')
    assert errors("GET", "/stats", 401, J, b'{"error":"unauthorized","detail":""}')  # no WWW-Auth
    assert errors("GET", "/nope", 404, J, b'{"error":"not_found","detail":"","x":1}')
    ok = {"id": "3", "event": "message_received",
          "data": '{"type":"message_received","message_id":"m","timestamp":1.5}'}
    assert api.sse_frame_errors(ok) == []
    assert api.sse_frame_errors({**ok, "event": "stage_completed"})
    assert api.sse_frame_errors({**ok, "id": "x"})
    assert api.sse_frame_errors({**ok, "data": ok["data"][:-1] + ',"extra":1}'})
    with pytest.raises(AssertionError, match="GET /health -> 200"):
        api.check_response("GET", "/health", 200, J, b'{"status":"sick"}')
