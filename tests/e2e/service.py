"""Starting and stopping `embedstream serve` in e2e tests (stdlib only).

Every response a Service or SseReader receives is checked against
docs/openapi.yaml when tests/e2e/openapi_check.py is active: conftest.py
installs its hook into http.client for every e2e test, so `get`, `request` and
`post` (urllib) are checked there; SseReader checks each SSE frame itself.
Without it (the benchmarks that import this file) nothing is checked.
"""
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def _openapi():
    """openapi_check once conftest.py has switched it on, else None (no import here:
    this file stays stdlib-only)."""
    module = sys.modules.get("openapi_check")
    return module if module is not None and module.active() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One `embedstream serve` process with its own HTTP port and log file."""

    def __init__(self, binary, model_dir, args, log_path, env_extra=None):
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ)
        env["EMBEDSTREAM_MODEL_DIR"] = str(model_dir)
        env.update(env_extra or {})
        if "--data-dir" not in args and "--no-store" not in args:
            # Each instance its own embedded store (one process per store dir).
            args = [*args, "--data-dir", str(pathlib.Path(log_path).with_suffix(".data"))]
        self.args = list(args)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def get(self, path, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            body = r.read().decode()
            return r.status, body

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, body text); 4xx/5xx are returned, not raised. `body`: bytes, str or JSON."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        headers = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"  # serve answers 415 to anything else
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path, obj, headers=None):
        """POST JSON; the parsed 2xx reply (anything else raises)."""
        status, body = self.request("POST", path, obj, headers)
        assert 200 <= status < 300, f"POST {path} -> {status} {body}"
        return json.loads(body)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.tail()}")
            try:
                status, _ = self.get("/ready", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve not ready after {timeout}s: {self.tail()}")

    def stats(self):
        return json.loads(self.get("/stats")[1])

    def stop(self, timeout=60):
        """SIGTERM: drain, commit, exit 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


class SseReader:
    """Follows GET /events in a thread; collects (id, event, data) frames."""

    def __init__(self, port, query="", last_event_id=None):
        self.events = []
        self.invalid = []  # frames docs/openapi.yaml does not allow, with why
        self.lock = threading.Lock()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/events" + query, headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type").startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        frame = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n").rstrip("\r")
                if not line:
                    if "data" in frame:
                        checker = _openapi()
                        errors = checker.OpenApi.load().sse_frame_errors(frame) if checker else []
                        with self.lock:
                            self.events.append(frame)
                            if errors:
                                self.invalid.append(f"{frame}: {'; '.join(errors)}")
                    frame = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    frame[key] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def snapshot(self):
        with self.lock:
            if self.invalid:
                raise AssertionError("GET /events sent frames docs/openapi.yaml does not allow: " +
                                     " | ".join(self.invalid[:5]))
            return list(self.events)

    def wait_for(self, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.snapshot()):
                return self.snapshot()
            time.sleep(0.05)
        raise AssertionError(f"SSE condition not met; got {len(self.snapshot())} events")

    def close(self):
        self.conn.close()
