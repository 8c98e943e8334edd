"""A real Kafka broker for the e2e tests: a thin wrapper around scripts/kafka.sh.

Standard library only (pytest is needed only for the fixture). In a conftest.py:

    from kafka_broker import kafka_broker  # noqa: F401  (the session fixture)

or, without the fixture:

    from kafka_broker import KafkaBroker
    with KafkaBroker() as kafka:            # a free port, a fresh data dir
        kafka.create_topic("events", partitions=3)
        kafka.produce("events", ['{"id": "1", "text": "hi"}'])
        kafka.stop()                        # keeps the data by default
        kafka.start()                       # same port, same topics and messages
        assert kafka.consume("events", max_messages=1) == ['{"id": "1", "text": "hi"}']

The first start in a fresh checkout downloads the Kafka jars from Maven Central
(~45 MB, ~10-20 s); later starts take ~4-8 s. See docs/KAFKA_TEST_BROKER.md.
"""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
from typing import Iterable, Optional, Sequence, Union

import script_server
from script_server import REPO, LiveSet, ScriptError, run_script

KAFKA_SH = REPO / "scripts" / "kafka.sh"
# Unit separator: cannot clash with JSON or ordinary text in keys/values.
KEY_SEPARATOR = "\x1f"

__all__ = ["KafkaBroker", "KafkaBrokerError", "free_port_pair", "kafka_broker"]


class KafkaBrokerError(ScriptError):
    """scripts/kafka.sh failed; the message carries its stderr (with the broker log tail)."""


def free_port_pair() -> int:
    """A port P with P and P+1 (the controller) free (see ports.stable_free_port)."""
    return script_server.free_port(2, KafkaBrokerError)


_live = LiveSet(lambda broker: broker.stop(keep_data=False))


class KafkaBroker:
    """One single-node KRaft broker on 127.0.0.1 run by scripts/kafka.sh."""

    def __init__(self, port: Optional[int] = None, data_dir: Union[str, os.PathLike, None] = None,
                 start_timeout: float = 90, config: Optional[dict] = None):
        self.port = int(port) if port else free_port_pair()
        self.data_dir = pathlib.Path(data_dir) if data_dir else REPO / ".cache" / "kafka" / f"data-{self.port}"
        self.start_timeout = start_timeout
        self.config = dict(config or {})
        self._started_once = False

    # ------------------------------------------------------------------ basics
    @property
    def bootstrap(self) -> str:
        """"127.0.0.1:PORT", for bootstrap.servers / --brokers."""
        return f"127.0.0.1:{self.port}"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def pid(self) -> Optional[int]:
        try:
            return int((self.data_dir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap}, data_dir={str(self.data_dir)!r})"

    def _sh(self, command: str, *args: str, input: Optional[str] = None, timeout: float = 120,
            ok_codes: Sequence[int] = (0,)) -> subprocess.CompletedProcess:
        return run_script(KAFKA_SH, command, "--port", str(self.port), "--dir", str(self.data_dir), *args,
                          error=KafkaBrokerError, input=input, timeout=timeout, ok_codes=ok_codes)

    # ------------------------------------------------------------------ lifecycle
    def start(self, keep_data: Optional[bool] = None) -> "KafkaBroker":
        """Start and wait until ready. keep_data: reuse the data dir (default: True
        after this object's first start, so stop()+start() keeps topics and messages)."""
        if keep_data is None:
            keep_data = self._started_once
        args = ["--timeout", str(int(self.start_timeout)), "--owner-pid", str(os.getpid())]
        if keep_data:
            args.append("--keep-data")
        for k, v in self.config.items():
            args += ["--config", f"{k}={v}"]
        # the first start may download the jars (Maven) before the broker's own timeout
        self._sh("start", *args, timeout=self.start_timeout + 600)
        self._started_once = True
        _live.add(self)
        return self

    def stop(self, keep_data: bool = True) -> None:
        """SIGTERM (SIGKILL after 30 s). keep_data=False also deletes topics and messages."""
        args = ["--keep-data"] if keep_data else []
        self._sh("stop", *args, timeout=90)
        _live.discard(self)

    def restart(self, downtime: float = 0.0) -> "KafkaBroker":
        """Stop (keeping the data), wait `downtime` seconds, start again on the same port."""
        self.stop(keep_data=True)
        if downtime > 0:
            time.sleep(downtime)
        return self.start(keep_data=True)

    def kill(self) -> None:
        """SIGKILL the broker (a crash); start() afterwards recovers on the same data."""
        pid = self.pid
        if pid and self.is_running():
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and pathlib.Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
        self._sh("stop", "--keep-data", timeout=90)  # removes the pid file
        _live.discard(self)

    def is_running(self) -> bool:
        return self._sh("status", ok_codes=(0, 3)).returncode == 0

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(keep_data=False)

    # ------------------------------------------------------------------ topics and messages
    def create_topic(self, name: str, partitions: int = 3) -> None:
        """Create a topic (replication 1); no error if it exists."""
        self._sh("create-topic", name, "--partitions", str(int(partitions)))

    def run_class(self, *args: str, ok_codes: Sequence[int] = (0,),
                  timeout: float = 120) -> subprocess.CompletedProcess:
        """A Kafka CLI tool: scripts/kafka.sh run-class CLASS ARGS..."""
        return run_script(KAFKA_SH, "run-class", *args, error=KafkaBrokerError, timeout=timeout,
                          ok_codes=ok_codes)

    def set_topic_config(self, topic: str, **configs: Union[str, int]) -> None:
        """Alter topic configs, e.g. set_topic_config("t", **{"max.message.bytes": 1024})."""
        pairs = ",".join(f"{k}={v}" for k, v in configs.items())
        self.run_class("kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap,
                       "--alter", "--entity-type", "topics", "--entity-name", topic,
                       "--add-config", pairs)

    def committed_offsets(self, group: str) -> "dict[tuple[str, int], int]":
        """{(topic, partition): committed offset} of a consumer group; partitions
        without a committed offset are left out ({} when the group has none)."""
        res = self.run_class("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                             "--bootstrap-server", self.bootstrap, "--describe", "--group", group,
                             "--offsets", ok_codes=(0, 1))
        out = {}
        for line in res.stdout.splitlines():
            cols = line.split()
            # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
            if len(cols) >= 4 and cols[0] == group and cols[2].isdigit() and cols[3].isdigit():
                out[(cols[1], int(cols[2]))] = int(cols[3])
        if res.returncode != 0 and "does not exist" not in res.stdout + res.stderr:
            raise KafkaBrokerError(f"describe group {group}: {res.stderr}")
        return out

    def topics(self) -> "list[str]":
        out = self._sh("topics").stdout
        return [t for t in out.splitlines() if t.strip()]

    def describe(self, topic: Optional[str] = None) -> str:
        return self._sh("describe", *([topic] if topic else [])).stdout

    def produce(self, topic: str, messages: Iterable[Union[str, "tuple[Optional[str], str]"]]) -> None:
        """Send messages: str values, or (key, value) pairs (a None key is sent as an
        empty key). acks=all; one message per line, so no newlines in them."""
        messages = list(messages)
        keyed = bool(messages) and isinstance(messages[0], tuple)
        if any(isinstance(m, tuple) != keyed for m in messages):
            raise ValueError("give either all (key, value) pairs or all plain values")
        if keyed:  # a None key is sent as an empty key
            lines = [("" if k is None else k) + KEY_SEPARATOR + v for k, v in messages]
        else:
            lines = list(messages)
        if any("\n" in line for line in lines):
            raise ValueError("a message contains a newline")
        args = ["--key-separator", KEY_SEPARATOR] if keyed else []
        self._sh("produce", topic, *args, input="".join(line + "\n" for line in lines), timeout=300)

    def consume(self, topic: str, max_messages: Optional[int] = None, timeout: float = 10.0,
                group: Optional[str] = None, keys: bool = False) -> list:
        """Read from the beginning (or the group's committed offsets) until max_messages
        or `timeout` seconds without a new message. Values as str; with keys=True,
        (key, value) pairs (key None when the record has none)."""
        args = ["--timeout-ms", str(int(timeout * 1000))]
        if max_messages is not None:
            args += ["--max-messages", str(int(max_messages))]
        if group:
            args += ["--group", group]
        if keys:
            args += ["--key-separator", KEY_SEPARATOR]
        out = self._sh("consume", topic, *args, timeout=timeout + 120).stdout
        lines = out.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not keys:
            return lines
        pairs = []
        for line in lines:
            key, _, value = line.partition(KEY_SEPARATOR)
            pairs.append((None if key == "null" else key, value))
        return pairs

    def logs(self, lines: int = 80) -> str:
        """The tail of the broker's log files (for assertion messages)."""
        return self._sh("logs", "-n", str(int(lines)), ok_codes=(0, 1)).stdout


try:
    import pytest
except ImportError:  # the class works without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def kafka_broker():
        """A running KafkaBroker for the whole session (free port, fresh data).
        Tests that stop it must start it again before they return."""
        broker = KafkaBroker()
        broker.start()
        try:
            yield broker
        finally:
            broker.stop(keep_data=False)
