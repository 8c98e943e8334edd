"""The Redis test server itself (scripts/redis.sh + tests/e2e/redis_server.py,
label e2e;redis): Debian's redis-server on 127.0.0.1 answers PING (through
redis-cli and over a raw socket), stores and returns values, restarts on the
same port (empty: nothing is persisted), reports stopped servers with exit 3,
`start` is idempotent, a busy port is refused, and --owner-pid stops the server
when its owner dies."""
import os
import socket
import subprocess
import time

import pytest

from redis_server import (REDIS_SH, REPO, RedisServer, RedisServerError, free_port,
                          redis_server)  # noqa: F401  (pytest fixture)


def sh(*args, env_extra=None, timeout=60):
    env = dict(os.environ)
    env.pop("REDIS_PORT", None)
    env.update(env_extra or {})
    return subprocess.run(["bash", str(REDIS_SH), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def raw_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64)


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_start_answers_ping(redis_server):
    print(f"\n[redis] start {redis_server.start_seconds:.2f} s, {redis_server.url}, "
          f"data {redis_server.data_dir}")
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    assert redis_server.env()["REDIS_URL"] == redis_server.url
    assert redis_server.is_running()
    assert redis_server.cli("PING") == "PONG"
    assert raw_ping(redis_server.port) == b"+PONG\r\n"   # plain TCP on 127.0.0.1, no password
    # The settings scripts/redis.sh promises.
    def conf(key):
        name, _, value = redis_server.cli("CONFIG", "GET", key).partition("\n")
        assert name == key
        return value
    assert conf("bind") == "127.0.0.1"
    assert conf("port") == str(redis_server.port)
    assert conf("protected-mode") == "yes"
    assert conf("save") == ""
    assert conf("appendonly") == "no"
    assert conf("dir") == str(redis_server.data_dir)
    assert redis_server.pid and (redis_server.data_dir / "redis.pid").exists()
    assert "Ready to accept connections" in redis_server.logs()


def test_set_get_through_cli(redis_server):
    assert redis_server.cli("SET", "greeting", "hello world ü") == "OK"
    assert redis_server.cli("GET", "greeting") == "hello world ü"
    assert redis_server.cli("GET", "no-such-key") == ""          # nil
    assert redis_server.cli("INCR", "counter") == "1"
    assert redis_server.cli("INCR", "counter") == "2"
    assert redis_server.cli("DEL", "greeting", "counter") == "2"
    assert redis_server.cli("EXISTS", "greeting") == "0"
    assert redis_server.cli("NOSUCHCOMMAND").startswith("ERR unknown command")


def test_start_is_idempotent(redis_server):
    redis_server.cli("SET", "survives", "yes")
    pid = redis_server.pid
    res = sh("start", "--port", str(redis_server.port), "--data", str(redis_server.data_dir))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == redis_server.url
    assert "already running" in res.stderr
    assert redis_server.pid == pid
    assert redis_server.cli("GET", "survives") == "yes"     # the same server, not a new one
    redis_server.start()                                     # the wrapper too
    assert redis_server.pid == pid


def test_restart_on_the_same_port():
    with RedisServer() as redis:
        port, pid = redis.port, redis.pid
        assert redis.cli("SET", "k", "v") == "OK"
        redis.restart()
        assert redis.port == port and redis.url == f"redis://127.0.0.1:{port}"
        assert redis.pid != pid
        assert redis.cli("PING") == "PONG"
        assert redis.cli("GET", "k") == ""                  # nothing is persisted
        assert not list(redis.data_dir.glob("*.rdb")) and not list(redis.data_dir.glob("*.aof"))


def test_stop_then_status_says_not_running():
    redis = RedisServer()
    data_dir = redis.data_dir
    try:
        redis.start()
        assert sh("status", "--port", str(redis.port), "--data", str(data_dir)).returncode == 0
        redis.stop()
        assert not redis.is_running()
        res = sh("status", "--port", str(redis.port), "--data", str(data_dir))
        assert res.returncode == 3
        assert res.stdout.startswith("not running")
        assert port_closed(redis.port)
        assert redis.pid is None                            # pid file removed
        with pytest.raises(RedisServerError):
            redis.cli("PING")
        redis.stop()                                        # a second stop is a no-op
        redis.start()                                       # and it comes back
        assert redis.cli("PING") == "PONG"
    finally:
        redis.close()
    assert not data_dir.exists()                            # close() deletes its data dir


def test_busy_port_is_refused(tmp_path):
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        res = sh("start", "--port", str(port), "--data", str(tmp_path / "redis"))
    assert res.returncode == 1
    assert f"port {port} is in use" in res.stderr
    assert not (tmp_path / "redis").exists()


def test_owner_pid_stops_the_server(tmp_path):
    port, data = free_port(), tmp_path / "redis"
    owner = subprocess.Popen(["sleep", "300"])
    try:
        res = sh("start", "--port", str(port), "--data", str(data), "--owner-pid", str(owner.pid))
        assert res.returncode == 0, res.stderr
        assert raw_ping(port) == b"+PONG\r\n"
        owner.kill()
        owner.wait()
        # the watchdog polls once a second
        assert wait_for(lambda: sh("status", "--port", str(port), "--data", str(data)).returncode == 3, 15)
        assert port_closed(port)
    finally:
        owner.kill()
        sh("reset", "--port", str(port), "--data", str(data))


def test_default_port_and_data_dir():
    port = free_port()
    res = sh("status", env_extra={"REDIS_PORT": str(port)})
    assert res.returncode == 3
    assert str(REPO / ".cache" / "redis" / f"data-{port}") in res.stdout
    res = sh("status")
    assert res.returncode in (0, 3)
    assert str(REPO / ".cache" / "redis" / "data-6380") in res.stdout
    assert "COMMAND" in sh("--help").stdout
