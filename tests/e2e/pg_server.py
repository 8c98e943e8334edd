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

import os
import pathlib
import time
from typing import Optional, Union
from urllib.parse import quote

import script_server
from script_server import REPO, ScriptError, ScriptServer

PG_SH = REPO / "scripts" / "pg.sh"
CACHE = pathlib.Path(os.environ.get("EMBEDSTREAM_PG_CACHE", REPO / ".cache" / "pg"))

__all__ = ["PgServer", "PgServerError", "free_port", "pg_server"]


class PgServerError(ScriptError):
    """scripts/pg.sh or psql failed; the message carries stderr (with the server log tail)."""


def free_port() -> int:
    """A free port below the ephemeral range (see ports.stable_free_port)."""
    return script_server.free_port(1, PgServerError)


class PgServer(ScriptServer):
    """One PostgreSQL server on 127.0.0.1 run by scripts/pg.sh, with its own data dir.

    Without data_dir, a fresh directory under .cache/pg (it must be reachable by the
    unprivileged user postgres runs as when the tests run as root, which a pytest
    tmp_path under /tmp/pytest-of-root is not); close() deletes it.

    start() fetches if needed, runs initdb once, starts and waits until ready (the
    data dir is kept across stop()/start()); stop() is pg_ctl stop -m fast and
    keeps the data."""

    SCRIPT = PG_SH
    Error = PgServerError

    def __init__(self, port: Optional[int] = None, data_dir: Union[str, os.PathLike, None] = None,
                 user: str = "postgres", password: str = "postgres",
                 dbname: str = "text_messages_db", start_timeout: float = 60):
        self.user = user
        self.password = password
        self.dbname = dbname
        super().__init__(port, data_dir, start_timeout, CACHE)
        self.fetch_seconds: Optional[float] = None   # the last fetch() call

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
    def _script_env(self) -> "dict[str, str]":
        return {"DATABASE_USER": self.user, "DATABASE_PASSWORD": self.password,
                "DATABASE_NAME": self.dbname, "DATABASE_PORT": str(self.port)}

    def fetch(self) -> pathlib.Path:
        """Install pgserver into .cache/pg/venv if needed; the pginstall path."""
        t0 = time.monotonic()
        out = self._sh("fetch", where=False, timeout=900).stdout.strip()
        self.fetch_seconds = time.monotonic() - t0
        return pathlib.Path(out)

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
