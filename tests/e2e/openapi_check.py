"""Checks `embedstream serve`'s HTTP responses against docs/openapi.yaml.

`OpenApi.check_response(method, target, status, headers, body)` raises
AssertionError (naming the route, the status and the schema error) when a
response is not what the document says for that operation:

  - the status must be listed for the operation (no `default` catch-all), or,
    for a request no route takes, be one of the answers the HTTP layer and the
    access policy give to any request (404 on an unknown path, 405 with
    `Allow` = the document's methods on a known path, 401/403/415/400/413/431/
    500/503 and the CORS preflight's 204/403);
  - the Content-Type must be one the response lists, and a JSON body must
    validate against its schema (JSON Schema 2020-12, $refs resolved inside
    the document);
  - every header the response marks `required` must be there, valid.

`OpenApi.check_sse_frame(frame)` does the same for one Server-Sent Events frame
of GET /events (`x-sse-data` of its text/event-stream response).

`python openapi_check.py RESPONSES.jsonl` checks responses another test
recorded, one JSON object per line: {"method", "target", "status",
"headers": {name: value}, "body_base64"} (null body: not read). The browser
test (test_dashboard.mjs) records every response its page and its own calls
receive and runs this at its end. Exit 1 with every error printed.

`install_http_hook()` makes every HTTP response that `http.client` (and so
`urllib.request`) receives in this process from `embedstream serve` (it says
`Server: embedstream`) go through `check_response` before the caller sees it;
the body is read once and handed back unchanged. Streams (text/event-stream)
are not read: `service.SseReader` checks their frames. tests/e2e/conftest.py
installs it for every e2e test; EMBEDSTREAM_OPENAPI_CHECK=0 switches it off.
Raw-socket requests (the hostile framing tests) are not seen.
"""
import http.client
import io
import json
import os
import pathlib
import re
import threading
import urllib.parse
from typing import Any, Iterable, Optional

import jsonschema
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = pathlib.Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "openapi.yaml"
URI = "urn:embedstream-openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What the HTTP layer (src/server) and the access policy (src/api/access_policy.cc)
# may answer to any request before, or instead of, a route: status -> error codes.
ANY_REQUEST = {
    400: {"bad_request"},
    401: {"unauthorized"},
    403: {"forbidden", "cors_forbidden"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    431: {"request_header_fields_too_large"},
    500: {"internal"},
    503: {"too_many_connections"},
}

__all__ = ["OpenApi", "install_http_hook", "active", "DOC_PATH"]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _lower_headers(headers: Any) -> dict:
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    return {k.lower(): v for k, v in items}


def _leaf(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a oneOf/anyOf failure, the error of the branch the instance meant: the
    one whose `type` matched (no const/enum error on `type`), then the one with
    the fewest errors."""
    while err.context:
        branches: dict = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)

        def rank(errs):
            discriminator = any(list(e.relative_path) == ["type"] and
                                e.validator in ("const", "enum") for e in errs)
            return (discriminator, len(errs))

        err = min(branches.values(), key=rank)[0]
    return err


def _describe(err: jsonschema.ValidationError) -> str:
    leaf = _leaf(err)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in leaf.absolute_path)
    return f"at {where}: {leaf.message[:400]}"


class OpenApi:
    """docs/openapi.yaml, loaded once; validators are built lazily and cached."""

    _loaded: dict = {}
    _load_lock = threading.Lock()

    @classmethod
    def load(cls, path: pathlib.Path = DOC_PATH) -> "OpenApi":
        key = str(pathlib.Path(path).resolve())
        with cls._load_lock:
            if key not in cls._loaded:
                cls._loaded[key] = cls(path)
            return cls._loaded[key]

    def __init__(self, path: pathlib.Path = DOC_PATH):
        self.path = pathlib.Path(path)
        self.doc = yaml.safe_load(self.path.read_text())
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(URI, resource)
        self._validators: dict = {}
        self._lock = threading.Lock()
        # Router order (src/server/internal/router.h): the exact path first, then
        # prefixes, longest first. A template ending in a parameter is a prefix
        # route ("/messages/{id}" is the server's "/messages/*").
        self.exact: dict = {}
        self.prefixes: list = []
        for template, item in self.doc["paths"].items():
            m = re.fullmatch(r"(.*/)\{[^/{}]+\}", template)
            if m and "{" not in m.group(1):
                self.prefixes.append((m.group(1), template))
            elif "{" in template:
                raise ValueError(f"{template}: only a parameter at the end is supported")
            else:
                self.exact[template] = template
        self.prefixes.sort(key=lambda p: -len(p[0]))

    # ---- the document

    def operations(self) -> Iterable[tuple]:
        """(METHOD, template, operation) for every operation."""
        for template, item in self.doc["paths"].items():
            for method in METHODS:
                if method in item:
                    yield method.upper(), template, item[method]

    @staticmethod
    def server_pattern(template: str) -> str:
        """The HttpServer pattern of a path template: a last {param} is "/*"."""
        return re.sub(r"/\{[^/{}]+\}$", "/*", template)

    def resolve(self, node: Any, pointer: str) -> tuple:
        """Follows a $ref (within the document): (node, its JSON pointer)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"{pointer}: only local $refs are supported, not {ref}")
            pointer = ref[1:]
            node = self.doc
            for token in pointer.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 20:
                raise ValueError(f"{pointer}: $ref loop")
        return node, pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        with self._lock:
            v = self._validators.get(pointer)
            if v is None:
                v = Draft202012Validator({"$ref": f"{URI}#{pointer}"}, registry=self.registry)
                self._validators[pointer] = v
            return v

    def schema_errors(self, pointer: str, instance: Any) -> list:
        errs = sorted(self.validator(pointer).iter_errors(instance),
                      key=lambda e: list(map(str, e.absolute_path)))
        return [_describe(e) for e in errs[:5]]

    def match(self, path: str) -> list:
        """The templates the server would try for a decoded path, in its order."""
        out = [self.exact[path]] if path in self.exact else []
        out += [t for prefix, t in self.prefixes if path.startswith(prefix)]
        return out

    # ---- responses

    def response_errors(self, method: str, target: str, status: int, headers: Any,
                        body: Optional[bytes]) -> list:
        """What is wrong with a response; [] when it is as documented. `body`
        None: not read (a stream), only the status and headers are checked."""
        method = method.upper()
        headers = _lower_headers(headers)
        raw_path = urllib.parse.urlsplit(target).path or "/"
        path = urllib.parse.unquote(raw_path, errors="surrogateescape")
        templates = self.match(path)
        for template in templates:
            op = self.doc["paths"][template].get(method.lower())
            if op is not None:
                if status == 404 and op.get("x-embedstream-needs-store") and body and \
                        b'"detail":"no route for ' in body:
                    return []  # serve --no-store registers no such route
                ptr = f"/paths/{_escape(template)}/{method.lower()}/responses"
                return self._operation_errors(op, ptr, status, headers, body)
        allowed = sorted({m.upper() for t in templates for m in METHODS
                          if m in self.doc["paths"][t]})
        return self._unrouted_errors(method, path, allowed, status, headers, body)

    def _operation_errors(self, op: dict, ptr: str, status: int, headers: dict,
                          body: Optional[bytes]) -> list:
        responses = op["responses"]
        code = next((c for c in (str(status), f"{status // 100}XX") if c in responses), None)
        if code is None:
            return [f"status {status} is not documented (listed: {', '.join(responses)})"]
        response, rptr = self.resolve(responses[code], f"{ptr}/{_escape(code)}")
        errors = self._header_errors(response, rptr, headers)
        content = response.get("content")
        ctype = headers.get("content-type", "")
        base = ctype.split(";")[0].strip().lower()
        if not content:
            if body:
                errors.append(f"no body is documented, got {len(body)} bytes")
            return errors
        media = next((m for m in content if m.split(";")[0].strip().lower() == base), None)
        if media is None:
            return errors + [f"Content-Type {ctype!r} is not one of {list(content)}"]
        if body is None:
            return errors
        sptr = f"{rptr}/content/{_escape(media)}/schema"
        if base == "application/json" or base.endswith("+json"):
            try:
                instance = json.loads(body)
            except ValueError as e:
                return errors + [f"the body is not JSON ({e}): {body[:200]!r}"]
        else:
            try:
                instance = body.decode()
            except UnicodeDecodeError as e:
                return errors + [f"the {base} body is not UTF-8: {e}"]
        return errors + [f"{sptr}: {e}" for e in self.schema_errors(sptr, instance)]

    def _header_errors(self, response: dict, rptr: str, headers: dict) -> list:
        errors = []
        for name, spec in (response.get("headers") or {}).items():
            spec, hptr = self.resolve(spec, f"{rptr}/headers/{_escape(name)}")
            value = headers.get(name.lower())
            if value is None:
                if spec.get("required"):
                    errors.append(f"header {name} is missing")
                continue
            schema, sptr = self.resolve(spec.get("schema", {}), f"{hptr}/schema")
            instance: Any = value
            if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
                instance = int(value)
            errors += [f"header {name}: {e}" for e in self.schema_errors(sptr, instance)]
        return errors

    def _unrouted_errors(self, method: str, path: str, allowed: list, status: int,
                         headers: dict, body: Optional[bytes]) -> list:
        if method == "OPTIONS" and status == 204:
            return [f"a preflight answer has a body: {body[:200]!r}"] if body else []
        codes = dict(ANY_REQUEST)
        if allowed:
            codes[405] = {"method_not_allowed"}
        else:
            codes[404] = {"not_found"}
        if status not in codes:
            if not allowed:
                return [f"status {status} for a path no documented route takes: is {path} "
                        "missing from docs/openapi.yaml?"]
            return [f"status {status} for {method}, which docs/openapi.yaml does not list on "
                    f"this path (it lists {', '.join(allowed)}): is the operation missing?"]
        errors = self._error_body(status, codes[status], headers, body)
        if status == 405:
            got = sorted(m.strip() for m in headers.get("allow", "").split(",") if m.strip())
            if got != allowed:
                errors.append(f"Allow is {got}, docs/openapi.yaml has {allowed} on this path")
        if status == 401 and headers.get("www-authenticate") != "Bearer":
            errors.append("a 401 without WWW-Authenticate: Bearer")
        if status == 503 and headers.get("retry-after") != "1":
            errors.append("503 too_many_connections without Retry-After: 1")
        return errors

    def _error_body(self, status: int, codes: set, headers: dict, body: Optional[bytes]) -> list:
        if body is None:
            return []
        base = headers.get("content-type", "").split(";")[0].strip().lower()
        if base != "application/json":
            return [f"an error with Content-Type {base!r}"]
        try:
            instance = json.loads(body)
        except ValueError as e:
            return [f"the error body is not JSON ({e}): {body[:200]!r}"]
        errors = self.schema_errors("/components/schemas/Error", instance)
        if not errors and instance["error"] not in codes:
            errors.append(f"error {instance['error']!r} is not one of {sorted(codes)} "
                          f"for a {status} no route answers")
        return errors

    def check_response(self, method: str, target: str, status: int, headers: Any,
                       body: Optional[bytes]) -> None:
        errors = self.response_errors(method, target, status, headers, body)
        if errors:
            shown = body[:300] if body is not None else "(not read)"
            raise AssertionError(
                f"docs/openapi.yaml: {method} {target} -> {status}: " + "; ".join(errors) +
                f"\n  body: {shown!r}")

    # ---- Server-Sent Events

    def sse_data_pointer(self) -> str:
        media = self.doc["paths"]["/events"]["get"]["responses"]["200"]["content"][
            "text/event-stream"]
        _, ptr = self.resolve(media["x-sse-data"],
                              "/paths/~1events/get/responses/200/content/"
                              "text~1event-stream/x-sse-data")
        return ptr

    def sse_frame_errors(self, frame: dict) -> list:
        """One frame as {"id"?, "event"?, "data"} (the field values)."""
        checked["frames"] += 1
        try:
            data = json.loads(frame.get("data", ""))
        except ValueError as e:
            return [f"data is not JSON ({e})"]
        errors = [f"data {e}" for e in self.schema_errors(self.sse_data_pointer(), data)]
        kind = data.get("type") if isinstance(data, dict) else None
        if frame.get("event") != kind:
            errors.append(f"event {frame.get('event')!r} is not the data's type {kind!r}")
        if kind == "reset":
            if "id" in frame:
                errors.append("a reset frame has an id")
        elif not re.fullmatch(r"[1-9][0-9]*", frame.get("id", "")):
            errors.append(f"id {frame.get('id')!r} is not a positive integer")
        return errors

    def check_sse_frame(self, frame: dict) -> None:
        errors = self.sse_frame_errors(frame)
        if errors:
            raise AssertionError(f"docs/openapi.yaml: GET /events frame {frame}: " +
                                 "; ".join(errors))


# --------------------------------------------------------------------------- hook

_hook_lock = threading.Lock()
_hooked = False
checked = {"responses": 0, "frames": 0}  # what the hook and SseReader checked (a summary)


def active() -> bool:
    """The hook is installed and not switched off (EMBEDSTREAM_OPENAPI_CHECK=0)."""
    return _hooked and os.environ.get("EMBEDSTREAM_OPENAPI_CHECK", "1") != "0"


def _check_http_response(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse):
    request = getattr(conn, "_es_openapi_request", None)
    if request is None or resp.getheader("Server") != "embedstream" or not active():
        return
    method, target = request
    ctype = (resp.getheader("Content-Type") or "").lower()
    body = None
    streaming = ctype.startswith("text/event-stream") or resp.chunked
    if method.upper() != "HEAD" and not streaming and resp.getheader("Content-Length"):
        body = resp.read()
        # Hand the same bytes back to the caller, as if nothing had read them.
        resp.fp = io.BufferedReader(io.BytesIO(body))
        resp.length = len(body)
    OpenApi.load().check_response(method, target, resp.status, resp.getheaders(), body)
    checked["responses"] += 1


def install_http_hook() -> None:
    """Checks every embedstream response http.client receives (idempotent)."""
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        OpenApi.load()  # fail now, not in the middle of a test, if the document is broken
        putrequest = http.client.HTTPConnection.putrequest
        getresponse = http.client.HTTPConnection.getresponse

        def checked_putrequest(self, method, url, *args, **kwargs):
            self._es_openapi_request = (method, url)
            return putrequest(self, method, url, *args, **kwargs)

        def checked_getresponse(self):
            resp = getresponse(self)
            _check_http_response(self, resp)
            return resp

        http.client.HTTPConnection.putrequest = checked_putrequest
        http.client.HTTPConnection.getresponse = checked_getresponse
        _hooked = True


def check_recorded(path: pathlib.Path) -> list:
    """Every error of the responses recorded in `path` (JSON lines)."""
    import base64
    doc = OpenApi.load()
    errors, n = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        body = None if r.get("body_base64") is None else base64.b64decode(r["body_base64"])
        try:
            doc.check_response(r["method"], r["target"], int(r["status"]), r.get("headers") or {}, body)
        except AssertionError as e:
            errors.append(str(e))
        n += 1
    print(f"docs/openapi.yaml: {n} recorded responses checked, {len(errors)} not as documented")
    return errors


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: openapi_check.py RESPONSES.jsonl")
    problems = check_recorded(pathlib.Path(sys.argv[1]))
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)

