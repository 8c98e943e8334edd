"""What the e2e wrappers around the service scripts share: redis_server.py
(scripts/redis.sh), pg_server.py (scripts/pg.sh) and kafka_broker.py
(scripts/kafka.sh). Standard library only.

- ScriptError: the base of RedisServerError, PgServerError, KafkaBrokerError.
- free_port(): ports.stable_free_port, raising the wrapper's error.
- run_script(): `bash scripts/X.sh ARGS...` from the repository root; raises the
  wrapper's error with the script's stderr when it fails or hangs.
- LiveSet: the servers a wrapper started and has not stopped, stopped at exit.
- ScriptServer: the base of RedisServer and PgServer, whose scripts take
  `COMMAND --port P --data DIR` and have start/stop/status/reset/logs.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import subprocess
import tempfile
import time
from typing import Callable, Optional, Sequence, Union

from ports import stable_free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


class ScriptError(RuntimeError):
    """A scripts/*.sh call failed; the message carries its stderr."""


def free_port(span: int = 1, error: type = ScriptError) -> int:
    """A port P with P..P+span-1 free, below the ephemeral range (see
    ports.stable_free_port); raises `error` when there is none."""
    try:
        return stable_free_port(span)
    except RuntimeError as e:
        raise error(str(e)) from e


def run_script(script: Union[str, os.PathLike], *args: str, error: type = ScriptError,
               input: Optional[str] = None, timeout: float = 120, ok_codes: Sequence[int] = (0,),
               env: Optional["dict[str, str]"] = None) -> subprocess.CompletedProcess:
    """bash SCRIPT ARGS... in the repository root, output captured as text; raises
    `error` (with the command and its stderr) on an exit code not in ok_codes or
    when it has not ended after `timeout` seconds."""
    cmd = ["bash", str(script), *args]
    try:
        res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                             timeout=timeout, cwd=REPO, env=env)
    except subprocess.TimeoutExpired as e:
        raise error(f"{' '.join(cmd)}: no answer in {timeout} s\n{e.stderr or ''}") from e
    if res.returncode not in ok_codes:
        raise error(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
    return res


class LiveSet:
    """The servers a wrapper has started and not stopped yet. At exit (e.g. after
    Ctrl-C; a SIGKILL is covered by --owner-pid) each is stopped with `stop`."""

    def __init__(self, stop: Callable[[object], None]):
        self._servers: set = set()
        self._stop = stop
        atexit.register(self.stop_all)

    def add(self, server) -> None:
        self._servers.add(server)

    def discard(self, server) -> None:
        self._servers.discard(server)

    def stop_all(self) -> None:
        for server in list(self._servers):
            try:
                self._stop(server)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


_live = LiveSet(lambda server: server.close())


class ScriptServer:
    """One server on 127.0.0.1 run by a scripts/*.sh (SCRIPT) with its own port
    and data dir. Without data_dir, a fresh directory under `cache`; close()
    deletes it. Subclasses set SCRIPT and Error, and may add environment
    variables for the script (_script_env)."""

    SCRIPT: pathlib.Path
    Error: type = ScriptError
    SH_TIMEOUT: float = 120     # a script call's timeout unless given
    STOP_TIMEOUT: float = 120   # stop / reset
    INSTALL_TIMEOUT: float = 900  # added to start_timeout: the first start may install the server

    def __init__(self, port: Optional[int], data_dir: Union[str, os.PathLike, None],
                 start_timeout: float, cache: pathlib.Path):
        self.host = "127.0.0.1"
        self.port = int(port) if port else free_port(error=self.Error)
        self.start_timeout = start_timeout
        self._own_dir = data_dir is None
        if data_dir is None:
            cache.mkdir(parents=True, exist_ok=True)
            data_dir = tempfile.mkdtemp(prefix=f"test-{self.port}-", dir=cache)
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.start_seconds: Optional[float] = None   # the last start() call

    # ------------------------------------------------------------------ the script
    def _script_env(self) -> "dict[str, str]":
        """Variables set for every script call (on top of os.environ)."""
        return {}

    def _sh(self, command: str, *args: str, input: Optional[str] = None,
            timeout: Optional[float] = None, ok_codes: Sequence[int] = (0,),
            where: bool = True) -> subprocess.CompletedProcess:
        """SCRIPT COMMAND [--port P --data DIR] ARGS... (where=False: without them)."""
        where_args = ["--port", str(self.port), "--data", str(self.data_dir)] if where else []
        env = dict(os.environ)
        env.update(self._script_env())
        return run_script(self.SCRIPT, command, *where_args, *args, error=self.Error, input=input,
                          timeout=self.SH_TIMEOUT if timeout is None else timeout,
                          ok_codes=ok_codes, env=env)

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Start (installing the server first if needed) and wait until it answers;
        a no-op when it already runs."""
        t0 = time.monotonic()
        self._sh("start", "--timeout", str(int(self.start_timeout)), "--owner-pid", str(os.getpid()),
                 timeout=self.start_timeout + self.INSTALL_TIMEOUT)
        self.start_seconds = time.monotonic() - t0
        _live.add(self)
        return self

    def stop(self) -> None:
        self._sh("stop", timeout=self.STOP_TIMEOUT)
        _live.discard(self)

    def restart(self):
        """Stop and start again on the same port (and data dir)."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        return self._sh("status", ok_codes=(0, 3)).returncode == 0

    def close(self) -> None:
        """Stop; delete the data dir if this object made it."""
        if self._own_dir:
            self._sh("reset", timeout=self.STOP_TIMEOUT)
        else:
            self._sh("stop", timeout=self.STOP_TIMEOUT)
        _live.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def logs(self, lines: int = 80) -> str:
        """The tail of the server log (for assertion messages)."""
        return self._sh("logs", "-n", str(int(lines)), ok_codes=(0, 1)).stdout
