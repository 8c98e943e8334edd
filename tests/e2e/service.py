"""Starting and stopping `embedstream serve` in e2e tests (stdlib only)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request


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
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def get(self, path, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            body = r.read().decode()
            return r.status, body

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
