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

import os
import pathlib
from typing import Optional, Union

import script_server
from script_server import REPO, ScriptError, ScriptServer

REDIS_SH = REPO / "scripts" / "redis.sh"
CACHE = pathlib.Path(os.environ.get("EMBEDSTREAM_REDIS_CACHE", REPO / ".cache" / "redis"))

__all__ = ["RedisServer", "RedisServerError", "free_port", "redis_server"]


class RedisServerError(ScriptError):
    """scripts/redis.sh or redis-cli failed; the message carries stderr (with the server log tail)."""


def free_port() -> int:
    """A free port below the ephemeral range (see ports.stable_free_port)."""
    return script_server.free_port(1, RedisServerError)


class RedisServer(ScriptServer):
    """One Redis server on 127.0.0.1 run by scripts/redis.sh, with its own data dir
    (conf, pid file, log; no data is persisted). Without data_dir, a fresh
    directory under .cache/redis; close() deletes it.

    start() installs redis-server first if needed and waits until PING answers
    (a no-op when it already runs); stop() is SIGTERM (SIGKILL after 30 s), and
    the keys are gone (nothing is persisted); restart() starts empty."""

    SCRIPT = REDIS_SH
    Error = RedisServerError
    SH_TIMEOUT = 60
    STOP_TIMEOUT = 90

    def __init__(self, port: Optional[int] = None, data_dir: Union[str, os.PathLike, None] = None,
                 start_timeout: float = 30):
        super().__init__(port, data_dir, start_timeout, CACHE)

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

    def _script_env(self) -> "dict[str, str]":
        return {"REDIS_PORT": str(self.port)}

    # ------------------------------------------------------------------ commands
    def cli(self, *args: str, input: Optional[str] = None, timeout: float = 60) -> str:
        """redis-cli -h 127.0.0.1 -p PORT ARGS... (not a tty: raw replies, one per
        line); returns stdout without the final newline ("" for a nil reply).
        Raises RedisServerError when redis-cli fails (e.g. no server). An error
        reply is output, not an exception: it starts with "ERR " / "WRONGTYPE "."""
        return self._sh("cli", "--", *[str(a) for a in args], input=input,
                        timeout=timeout).stdout.rstrip("\n")


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
