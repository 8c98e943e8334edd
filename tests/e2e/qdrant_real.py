"""A real Qdrant server for the e2e tests, when this machine has one; else the
schema-validating test server (qdrant_server.py). Standard library only (pytest
is needed only for the fixtures).

The binary: $QDRANT_BIN, else ../shared/qdrant/bin/qdrant beside the repository
(a Qdrant built from source; see that folder's README). A user's clone has no
../shared: then every test runs against the test server and says so, loudly.

    from qdrant_real import qdrant, qdrant_test_server  # noqa: F401  (pytest fixtures)

    def test_x(qdrant):              # real when found, else the test server
        qdrant.url                   # http://127.0.0.1:<port>
        qdrant.points("c")           # {id: {"vector": [...], "payload": {...}}}
        qdrant.count("c")            # points in the collection (KeyError: none)
        qdrant.stop(); qdrant.start()  # down, and up again on the same port with the data

    def test_y(qdrant_test_server):  # always the test server (fault injection: fail, reject_when)

Without the fixtures: `with open_qdrant(real=True) as q: ...`.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Iterator, Optional

from ports import stable_free_port
from qdrant_server import QdrantTestServer

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO.parent / "shared" / "qdrant" / "bin" / "qdrant"

__all__ = ["RealQdrant", "find_binary", "open_qdrant", "point_count", "qdrant",
           "qdrant_test_server", "say"]


def say(line: str) -> None:
    """A line every log shows: stdout (pytest -s) and stderr (captured runs)."""
    for stream in (sys.stdout, sys.stderr):
        print(line, file=stream, flush=True)


def find_binary() -> Optional[pathlib.Path]:
    """$QDRANT_BIN (it must exist), else ../shared/qdrant/bin/qdrant, else None."""
    env = os.environ.get("QDRANT_BIN")
    if env:
        path = pathlib.Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"QDRANT_BIN={env} is not an executable file")
        return path
    if DEFAULT_BIN.is_file() and os.access(DEFAULT_BIN, os.X_OK):
        return DEFAULT_BIN
    return None


def _die_with_parent() -> None:  # preexec_fn: SIGTERM the server when the test process dies
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


_live: "set[RealQdrant]" = set()


@atexit.register
def _stop_leftovers() -> None:
    for q in list(_live):
        q.close()


class RealQdrant:
    """One `qdrant` process on free 127.0.0.1 ports (HTTP, gRPC = HTTP + 1), its
    storage in a temporary folder, telemetry off. stop() + start() keep the ports
    and the data (a restart, as after an outage)."""

    kind = "real"
    schema_errors: list = []  # the real server checks requests itself (4xx)

    def __init__(self, binary: pathlib.Path, start_timeout: float = 60):
        self.binary = pathlib.Path(binary)
        self.start_timeout = start_timeout
        self.port = stable_free_port(2)
        self.grpc_port = self.port + 1
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="qdrant-e2e-"))
        self.log_path = self.dir / "qdrant.log"
        self.proc: Optional[subprocess.Popen] = None
        self.version = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"RealQdrant({self.url}, version {self.version or '?'}, {self.binary})"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "RealQdrant":
        env = dict(os.environ)
        env.update({
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(self.port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__STORAGE__STORAGE_PATH": str(self.dir / "storage"),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.dir / "snapshots"),
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__LOG_LEVEL": "INFO",
        })
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary)], cwd=self.dir, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        log.close()
        _live.add(self)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qdrant exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status, _ = self.request("GET", "/readyz", timeout=1)
                if status == 200:
                    self.version = json.loads(self.request("GET", "/")[1])["version"]
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"qdrant not ready after {self.start_timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 30 s); the ports close, the storage stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """stop() and delete the storage."""
        self.stop()
        _live.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RealQdrant":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ REST
    def request(self, method: str, path: str, body=None, timeout: float = 60):
        """(status, body text); 4xx/5xx are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def _call(self, method: str, path: str, body=None):
        status, text = self.request(method, path, body)
        if status == 404:
            raise KeyError(f"qdrant {method} {path}: 404 {text}")
        assert status == 200, f"qdrant {method} {path}: {status} {text}"
        return json.loads(text)["result"]

    def count(self, collection: str) -> int:
        return self._call("POST", f"/collections/{collection}/points/count",
                          {"exact": True})["count"]

    def points(self, collection: str) -> dict:
        """{id: {"vector": [...], "payload": {...}}} for every point (scrolled), as the
        test server's points() gives them. A Cosine collection keeps vectors normalised."""
        out, offset = {}, None
        while True:
            body = {"limit": 1000, "with_payload": True, "with_vector": True}
            if offset is not None:
                body["offset"] = offset
            page = self._call("POST", f"/collections/{collection}/points/scroll", body)
            for p in page["points"]:
                out[p["id"]] = {"vector": p["vector"], "payload": p.get("payload")}
            offset = page.get("next_page_offset")
            if offset is None:
                return out

    def collections(self) -> dict:
        """{name: {"size", "distance", "points"}}"""
        out = {}
        for c in self._call("GET", "/collections")["collections"]:
            info = self._call("GET", f"/collections/{c['name']}")
            vectors = info["config"]["params"]["vectors"]
            out[c["name"]] = {"size": vectors.get("size"), "distance": vectors.get("distance"),
                              "points": info.get("points_count")}
        return out


def point_count(q, collection: str) -> int:
    """Points in a collection of either server; 0 when it does not exist yet."""
    try:
        return q.count(collection) if isinstance(q, RealQdrant) else len(q.points(collection))
    except KeyError:
        return 0


@contextlib.contextmanager
def open_qdrant(real: bool = True, why_not_real: str = "") -> Iterator:
    """A started Qdrant: the real server when real=True and one is found, else the
    test server. Prints which one runs."""
    binary = find_binary() if real else None
    if binary is not None:
        with RealQdrant(binary) as q:
            say(f"qdrant: real server {q.version} at {q.url} ({binary})")
            yield q
        return
    if real:
        say("qdrant: REAL QDRANT NOT FOUND (set QDRANT_BIN, or ../shared/qdrant/bin/qdrant), "
            "using the schema-validating test server")
    else:
        say(f"qdrant: the schema-validating test server ({why_not_real})")
    with QdrantTestServer(port=0) as q:
        q.kind = "test"
        yield q
        assert q.schema_errors == [], f"requests that broke the Qdrant schema: {q.schema_errors[:3]}"


try:
    import pytest
except ImportError:  # the module works without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture
    def qdrant():
        """The real Qdrant when found, else the test server (said in the log)."""
        with open_qdrant(real=True) as q:
            yield q

    @pytest.fixture
    def qdrant_test_server():
        """The test server: for faults a real Qdrant cannot be told to stage."""
        with open_qdrant(real=False, why_not_real="fault injection the real one cannot stage") as q:
            yield q
