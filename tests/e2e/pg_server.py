"""A real PostgreSQL 16 + pgvector server for the e2e tests: a thin wrapper around
scripts/pg.sh (which runs the binaries of the PyPI wheel `pgserver`).

Standard library only (pytest is needed only for the fixture). In a test module
or conftest.py:

    from pg_server import pg_server  # noqa: F401  (the session fixture)

    def test_x(pg_server):
        pg_server.dsn                       # postgresql://postgres:postgres@127.0.0.1:<port>/text_messages_db
        pg_server.env()                     # DATABASE_HOST/PORT/NAME/USER/PASSWORD, PG*
        pg_server.psql("SELECT 1")          # -> "1"

or, without the fixture:

    from pg_server import PgServer
    with PgServer() as pg:                  # a free port, a fresh data dir (deleted at the end)
        pg.psql("CREATE TABLE t (v vector(3))")
        pg.restart()                        # same port, same data

The first start in a fresh checkout installs pgserver into .cache/pg/venv
(~11 MB wheel, a few seconds); later starts take well under a second.
See docs/POSTGRES_TEST_DB.md.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import subprocess
import tempfile
import time
from typing import Optional, Sequence, Union
from urllib.parse import quote

from ports import stable_free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
PG_SH = REPO / "scripts" / "pg.sh"
CACHE = pathlib.Path(os.environ.get("EMBEDSTREAM_PG_CACHE", REPO / ".cache" / "pg"))

__all__ = ["PgServer", "PgServerError", "free_port", "pg_server"]


class PgServerError(RuntimeError):
    """scripts/pg.sh or psql failed; the message carries stderr (with the server log tail)."""


def free_port() -> int:
    """A free port below the ephemeral range (see ports.stable_free_port)."""
    try:
        return stable_free_port(1)
    except RuntimeError as e:
        raise PgServerError(str(e)) from e


_live: "set[PgServer]" = set()


@atexit.register
def _stop_leftovers() -> None:  # e.g. after Ctrl-C; a SIGKILL is covered by --owner-pid
    for server in list(_live):
        try:
            server.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class PgServer:
    """One PostgreSQL server on 127.0.0.1 run by scripts/pg.sh, with its own data dir.

    Without data_dir, a fresh directory under .cache/pg (it must be reachable by the
    unprivileged user postgres runs as when the tests run as root, which a pytest
    tmp_path under /tmp/pytest-of-root is not); close() deletes it."""

    def __init__(self, port: Optional[int] = None, data_dir: Union[str, os.PathLike, None] = None,
                 user: str = "postgres", password: str = "postgres",
                 dbname: str = "text_messages_db", start_timeout: float = 60):
        self.host = "127.0.0.1"
        self.port = int(port) if port else free_port()
        self.user = user
        self.password = password
        self.dbname = dbname
        self.start_timeout = start_timeout
        self._own_dir = data_dir is None
        if data_dir is None:
            CACHE.mkdir(parents=True, exist_ok=True)
            data_dir = tempfile.mkdtemp(prefix=f"test-{self.port}-", dir=CACHE)
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.fetch_seconds: Optional[float] = None   # the last fetch() call
        self.start_seconds: Optional[float] = None   # the last start() call

    # ------------------------------------------------------------------ connection
    @property
    def dsn(self) -> str:
        """postgresql://user:password@127.0.0.1:port/dbname (libpq URI)."""
        return "postgresql://%s:%s@%s:%d/%s" % (
            quote(self.user, safe=""), quote(self.password, safe=""), self.host, self.port,
            quote(self.dbname, safe=""))

    def env(self) -> "dict[str, str]":
        """Seed 001's DATABASE_* variables and libpq's PG* for this server."""
        return {
            "DATABASE_HOST": self.host, "DATABASE_PORT": str(self.port),
            "DATABASE_NAME": self.dbname, "DATABASE_USER": self.user,
            "DATABASE_PASSWORD": self.password, "DATABASE_URL": self.dsn,
            "PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.dbname,
            "PGUSER": self.user, "PGPASSWORD": self.password,
        }

    def __repr__(self) -> str:
        return f"PgServer({self.host}:{self.port}, data_dir={str(self.data_dir)!r})"

    # ------------------------------------------------------------------ scripts/pg.sh
    def _sh(self, command: str, *args: str, input: Optional[str] = None, timeout: float = 120,
            ok_codes: Sequence[int] = (0,), where: bool = True) -> subprocess.CompletedProcess:
        cmd = ["bash", str(PG_SH), command]
        if where:
            cmd += ["--port", str(self.port), "--data", str(self.data_dir)]
        cmd += list(args)
        env = dict(os.environ)
        env.update({"DATABASE_USER": self.user, "DATABASE_PASSWORD": self.password,
                    "DATABASE_NAME": self.dbname, "DATABASE_PORT": str(self.port)})
        try:
            res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                                 timeout=timeout, cwd=REPO, env=env)
        except subprocess.TimeoutExpired as e:
            raise PgServerError(f"{' '.join(cmd)}: no answer in {timeout} s\n{e.stderr or ''}") from e
        if res.returncode not in ok_codes:
            raise PgServerError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
        return res

    def fetch(self) -> pathlib.Path:
        """Install pgserver into .cache/pg/venv if needed; the pginstall path."""
        t0 = time.monotonic()
        out = self._sh("fetch", where=False, timeout=900).stdout.strip()
        self.fetch_seconds = time.monotonic() - t0
        return pathlib.Path(out)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "PgServer":
        """Fetch if needed, initdb once, start, wait until ready; the data dir is kept
        across stop()/start()."""
        t0 = time.monotonic()
        self._sh("start", "--timeout", str(int(self.start_timeout)), "--owner-pid", str(os.getpid()),
                 timeout=self.start_timeout + 900)  # the first start may install pgserver
        self.start_seconds = time.monotonic() - t0
        _live.add(self)
        return self

    def stop(self) -> None:
        """pg_ctl stop -m fast; keeps the data."""
        self._sh("stop", timeout=120)
        _live.discard(self)

    def restart(self) -> "PgServer":
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        return self._sh("status", ok_codes=(0, 3)).returncode == 0

    def close(self) -> None:
        """Stop; delete the data dir if this object made it."""
        if self._own_dir:
            self._sh("reset", timeout=120)
        else:
            self._sh("stop", timeout=120)
        _live.discard(self)

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ queries
    def psql(self, sql: str, *args: str, dsn: Optional[str] = None, timeout: float = 120) -> str:
        """Run SQL (one or more statements, read from stdin) with the bundled psql over
        TCP with password auth: unaligned, tuples only, ON_ERROR_STOP; returns stdout
        without the final newline (rows one per line, columns separated by '|').
        dsn: connect with this URI instead (e.g. a wrong password). Raises
        PgServerError (with psql's stderr) when psql fails."""
        cmd = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args]
        if dsn:
            cmd += ["-d", dsn]
        cmd += ["-f", "-"]
        return self._sh("psql", "--", *cmd, input=sql, timeout=timeout).stdout.rstrip("\n")

    def logs(self, lines: int = 80) -> str:
        """The tail of the server log (for assertion messages)."""
        return self._sh("logs", "-n", str(int(lines)), ok_codes=(0, 1)).stdout


try:
    import pytest
except ImportError:  # the class works without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def pg_server():
        """A running PgServer for the whole session (free port, fresh data dir under
        .cache/pg, deleted at the end). Tests that stop it must start it again."""
        server = PgServer()
        server.fetch()
        server.start()
        try:
            yield server
        finally:
            server.close()
