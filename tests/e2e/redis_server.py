"""A real Redis server for the e2e tests: a thin wrapper around scripts/redis.sh
(which runs Debian's redis-server on 127.0.0.1, without persistence).

Standard library only (pytest is needed only for the fixture). In a test module
or conftest.py:

    from redis_server import redis_server  # noqa: F401  (the session fixture)

    def test_x(redis_server):
        redis_server.url                    # redis://127.0.0.1:<port>
        redis_server.env()                  # REDIS_URL, REDIS_HOST, REDIS_PORT
        redis_server.cli("SET", "k", "v")   # -> "OK" (redis-cli's output)

or, without the fixture:

    from redis_server import RedisServer
    with RedisServer() as redis:            # a free port, a fresh data dir (deleted at the end)
        redis.cli("PING")                   # -> "PONG"
        redis.restart()                     # same port; empty again (nothing is persisted)

A start takes well under a second; scripts/redis.sh installs redis-server
(scripts/install_deps.sh test) when it is missing. See docs/REDIS_TEST_SERVER.md.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import subprocess
import tempfile
import time
from typing import Optional, Sequence, Union

from ports import stable_free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
REDIS_SH = REPO / "scripts" / "redis.sh"
CACHE = pathlib.Path(os.environ.get("EMBEDSTREAM_REDIS_CACHE", REPO / ".cache" / "redis"))

__all__ = ["RedisServer", "RedisServerError", "free_port", "redis_server"]


class RedisServerError(RuntimeError):
    """scripts/redis.sh or redis-cli failed; the message carries stderr (with the server log tail)."""


def free_port() -> int:
    """A free port below the ephemeral range (see ports.stable_free_port)."""
    try:
        return stable_free_port(1)
    except RuntimeError as e:
        raise RedisServerError(str(e)) from e


_live: "set[RedisServer]" = set()


@atexit.register
def _stop_leftovers() -> None:  # e.g. after Ctrl-C; a SIGKILL is covered by --owner-pid
    for server in list(_live):
        try:
            server.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class RedisServer:
    """One Redis server on 127.0.0.1 run by scripts/redis.sh, with its own data dir
    (conf, pid file, log; no data is persisted). Without data_dir, a fresh
    directory under .cache/redis; close() deletes it."""

    def __init__(self, port: Optional[int] = None, data_dir: Union[str, os.PathLike, None] = None,
                 start_timeout: float = 30):
        self.host = "127.0.0.1"
        self.port = int(port) if port else free_port()
        self.start_timeout = start_timeout
        self._own_dir = data_dir is None
        if data_dir is None:
            CACHE.mkdir(parents=True, exist_ok=True)
            data_dir = tempfile.mkdtemp(prefix=f"test-{self.port}-", dir=CACHE)
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.start_seconds: Optional[float] = None   # the last start() call

    # ------------------------------------------------------------------ connection
    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT (no password, database 0)."""
        return f"redis://{self.host}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        """The server's pid from its pid file (None when stopped)."""
        try:
            return int((self.data_dir / "redis.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def env(self) -> "dict[str, str]":
        """REDIS_URL, REDIS_HOST, REDIS_PORT for a process under test."""
        return {"REDIS_URL": self.url, "REDIS_HOST": self.host, "REDIS_PORT": str(self.port)}

    def __repr__(self) -> str:
        return f"RedisServer({self.url}, data_dir={str(self.data_dir)!r})"

    # ------------------------------------------------------------------ scripts/redis.sh
    def _sh(self, command: str, *args: str, input: Optional[str] = None, timeout: float = 60,
            ok_codes: Sequence[int] = (0,)) -> subprocess.CompletedProcess:
        cmd = ["bash", str(REDIS_SH), command, "--port", str(self.port), "--data", str(self.data_dir),
               *args]
        env = dict(os.environ)
        env["REDIS_PORT"] = str(self.port)
        try:
            res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                 timeout=timeout, cwd=REPO, env=env)
        except subprocess.TimeoutExpired as e:
            raise RedisServerError(f"{' '.join(cmd)}: no answer in {timeout} s\n{e.stderr or ''}") from e
        if res.returncode not in ok_codes:
            raise RedisServerError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
        return res

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "RedisServer":
        """Start (installing redis-server first if needed) and wait until PING
        answers; a no-op when it already runs."""
        t0 = time.monotonic()
        self._sh("start", "--timeout", str(int(self.start_timeout)), "--owner-pid", str(os.getpid()),
                 timeout=self.start_timeout + 900)  # the first start may apt-get install
        self.start_seconds = time.monotonic() - t0
        _live.add(self)
        return self

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 30 s); the keys are gone (nothing is persisted)."""
        self._sh("stop", timeout=90)
        _live.discard(self)

    def restart(self) -> "RedisServer":
        """Stop and start again on the same port (and data dir); starts empty."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        return self._sh("status", ok_codes=(0, 3)).returncode == 0

    def close(self) -> None:
        """Stop; delete the data dir if this object made it."""
        if self._own_dir:
            self._sh("reset", timeout=90)
        else:
            self._sh("stop", timeout=90)
        _live.discard(self)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ commands
    def cli(self, *args: str, input: Optional[str] = None, timeout: float = 60) -> str:
        """redis-cli -h 127.0.0.1 -p PORT ARGS... (not a tty: raw replies, one per
        line); returns stdout without the final newline ("" for a nil reply).
        Raises RedisServerError when redis-cli fails (e.g. no server). An error
        reply is output, not an exception: it starts with "ERR " / "WRONGTYPE "."""
        return self._sh("cli", "--", *[str(a) for a in args], input=input,
                        timeout=timeout).stdout.rstrip("\n")

    def logs(self, lines: int = 80) -> str:
        """The tail of the server log (for assertion messages)."""
        return self._sh("logs", "-n", str(int(lines)), ok_codes=(0, 1)).stdout


try:
    import pytest
except ImportError:  # the class works without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def redis_server():
        """A running RedisServer for the whole session (free port, fresh data dir
        under .cache/redis, deleted at the end). Tests that stop it must start it
        again."""
        server = RedisServer()
        server.start()
        try:
            yield server
        finally:
            server.close()
