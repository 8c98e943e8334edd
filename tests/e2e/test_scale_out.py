"""Many instances, one system (issue 16), against a real Kafka broker, a real
Redis (Debian's redis-server, scripts/redis.sh) and a real PostgreSQL +
pgvector: three `embedstream serve` instances with `--ingest kafka` (POST
/messages -> the input topic, keyed by user_id) in one consumer group over a
4-partition topic, sinks = pgvector (the shared store every instance
searches), lifecycle events over the events bus (kafka or redis; every test
runs on both). SSE clients on one instance see what the others process, in
order, exactly once; a client resumes with Last-Event-ID on any instance; a
worker killed with -9 loses no message."""
import concurrent.futures
import json
import urllib.error
import random
import time
import uuid

import pytest

from kafka_broker import kafka_broker  # noqa: F401  (pytest fixture)
from pg_server import pg_server  # noqa: F401  (pytest fixture)
from redis_server import redis_server  # noqa: F401  (pytest fixture)
from service import Service, SseReader

BUSES = ["kafka", "redis"]
LIFECYCLE = ["message_received", "message_processing", "stage_completed", "stage_completed",
             "stage_completed", "message_completed"]
WORDS = ("stream vector search kafka message event order customer product price latency "
         "throughput model embedding sentence database index query result user session "
         "machine learning network server replica partition offset consumer producer").split()


def sentence(rng, user, j):
    return f"{user} says {j}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20)))


class Cluster:
    """Instances sharing one input topic, one group, one events namespace."""

    def __init__(self, binary, model_dir, tmp_path, kafka, pg, redis, bus):
        self.tag = uuid.uuid4().hex[:8]
        self.binary, self.model_dir, self.tmp_path = binary, model_dir, tmp_path
        self.topic = f"scale-in-{self.tag}"
        kafka.create_topic(self.topic, partitions=4)
        config = tmp_path / f"scale-{self.tag}.yaml"
        # A fresh events topic / Redis key prefix per test: ids start at 1.
        config.write_text(f"events:\n  topic: events-{self.tag}\n  redis_prefix: 'es:{self.tag}'\n"
                          "kafka:\n  properties:\n    session.timeout.ms: '6000'\n")
        self.args = ["-c", str(config), "--kafka-brokers", kafka.bootstrap,
                     "--group", f"scale-{self.tag}", "--input-topic", self.topic,
                     "--ingest", "kafka", "--events-bus", bus,
                     "--pg-sink", "embeddings", "--search-backend", "postgres"]
        self.env = {**pg.env(), "EMBEDSTREAM_KAFKA_SINKS": "postgres", "REDIS_URL": redis.url}
        self.started = []

    def start(self, *names):
        svcs = [Service(self.binary, self.model_dir, self.args, self.tmp_path / f"{n}.log",
                        env_extra=self.env) for n in names]
        self.started += svcs
        for s in svcs:
            s.wait_ready(timeout=90)
        self.wait_balanced()
        return svcs

    def wait_balanced(self, partitions=4, timeout=60):
        """Until every live instance owns a partition and they own all 4 between them,
        so no rebalance (and its at-least-once re-reads) runs while a test posts."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            live = [s for s in self.started if s.proc.poll() is None]
            owned = [len(s.stats().get("partitions", [])) for s in live]
            if sum(owned) == partitions and all(owned):
                return
            time.sleep(0.2)
        raise AssertionError(f"consumer group not balanced after {timeout}s: {owned}")

    def stop_all(self):
        for s in self.started:
            if s.proc.poll() is None:
                s.stop()


@pytest.fixture
def cluster(binary, model_dir, tmp_path, kafka_broker, pg_server, redis_server, run):
    rc = run(["pg", "install"], env_extra=pg_server.env())
    assert rc.returncode == 0, rc.stderr.decode()
    made = []

    def _make(bus):
        c = Cluster(binary, model_dir, tmp_path, kafka_broker, pg_server, redis_server, bus)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.stop_all()


def data(e):
    return json.loads(e["data"])


def completed(events):
    return {data(e)["message_id"] for e in events if e.get("event") == "message_completed"}


def post(svc, mid, text, user):
    status, body = svc.request("POST", "/messages", {"id": mid, "message": text, "user_id": user})
    assert status == 202, f"POST to :{svc.port} -> {status} {body}"
    reply = json.loads(body)
    assert reply["ingest"] == "kafka" and reply["id"] == mid


@pytest.mark.parametrize("bus", BUSES)
def test_1000_posts_to_b_and_c_every_lifecycle_on_a_in_order_exactly_once(bus, cluster):
    c = cluster(bus)
    a, b, cc = c.start("a", "b", "c")
    rng = random.Random(16)
    users = [f"user-{k:02d}" for k in range(50)]
    readers = {u: SseReader(a.port, f"?user_id={u}") for u in users}
    posted = {u: [] for u in users}   # in post order (each user posts one at a time)
    texts = {}
    for u in users:
        for j in range(20):
            mid = f"{c.tag}-{u}-{j:02d}"
            texts[mid] = sentence(rng, f"{c.tag} {u}", j)
            posted[u].append(mid)

    def post_user(k):
        u = users[k]
        for j, mid in enumerate(posted[u]):
            post(b if (j + k) % 2 == 0 else cc, mid, texts[mid], u)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(post_user, range(len(users))))
    for u, r in readers.items():
        r.wait_for(lambda ev, u=u: len(completed(ev)) >= len(posted[u]), timeout=240)
    took = time.time() - t0
    time.sleep(1.0)  # anything late (a duplicate) would show now

    for u, r in readers.items():
        events = r.snapshot()
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(set(ids)), f"{u}: ids not strictly increasing"
        assert all(data(e)["user_id"] == u for e in events), f"{u}: another user's event"
        by_msg = {}
        for e in events:
            by_msg.setdefault(data(e)["message_id"], []).append(e["event"])
        assert set(by_msg) == set(posted[u]), f"{u}: messages seen != posted"
        for mid, types in by_msg.items():
            assert types == LIFECYCLE, f"{u}/{mid}: lifecycle {types}"
        # One user's messages stay in post order end to end.
        for kind in ("message_received", "message_completed"):
            order = [data(e)["message_id"] for e in events if e["event"] == kind]
            assert order == posted[u], f"{u}: {kind} order {order} != {posted[u]}"
    for r in readers.values():
        r.close()

    # Search on A finds messages posted to B and C (the shared pgvector sink).
    for mid in (posted["user-00"][0], posted["user-01"][0], posted["user-49"][19]):
        status, body = a.request("POST", "/embeddings/search", {"query": texts[mid], "limit": 1})
        assert status == 200, body
        assert json.loads(body)["results"][0]["id"] == mid

    stats = a.stats()
    assert stats["events_bus"]["bus"] == bus and stats["events_bus"]["up"] is True
    assert stats["events_bus"]["received"] >= 6000 and stats["events_bus"]["lag"] == 0
    assert b.stats()["ingest"]["acked"] + cc.stats()["ingest"]["acked"] == 1000
    metrics = a.get("/metrics")[1]
    assert f'embedstream_events_bus_delay_seconds_count{{bus="{bus}"}}' in metrics
    assert f'embedstream_events_bus_received_total{{bus="{bus}"}}' in metrics
    consumed = [s.stats()["consumed"] for s in (a, b, cc)]
    assert sum(consumed) >= 1000 and all(n > 0 for n in consumed), consumed
    print(f"{bus}: 1000 messages from 50 users, every lifecycle on A, {took:.1f} s; "
          f"consumed per instance {consumed}")


@pytest.mark.parametrize("bus", BUSES)
def test_reconnect_to_another_instance_with_last_event_id_gets_exactly_what_was_missed(
        bus, cluster):
    c = cluster(bus)
    a, b, cc = c.start("a", "b", "c")
    rng = random.Random(161)
    u = "resume-user"
    reference = SseReader(cc.port, f"?user_id={u}")  # connected all along
    first = SseReader(a.port, f"?user_id={u}")
    batch1 = [f"{c.tag}-r1-{j}" for j in range(10)]
    for j, mid in enumerate(batch1):
        post(b, mid, sentence(rng, u, j), u)
    first.wait_for(lambda ev: completed(ev) >= set(batch1), timeout=120)
    last_id = first.snapshot()[-1]["id"]
    first.close()

    batch2 = [f"{c.tag}-r2-{j}" for j in range(10)]
    for j, mid in enumerate(batch2):
        post(cc if j % 2 else b, mid, sentence(rng, u, 100 + j), u)
    reference.wait_for(lambda ev: completed(ev) >= set(batch1 + batch2), timeout=120)
    missed = [(e["id"], e["event"], e["data"]) for e in reference.snapshot()
              if int(e["id"]) > int(last_id)]
    assert len(missed) == 6 * len(batch2)

    # On B (running all along), and on D, started after the events happened.
    (d,) = c.start("d")
    resumed = {name: SseReader(svc.port, f"?user_id={u}", last_event_id=last_id)
               for name, svc in (("b", b), ("d", d))}
    for name, r in resumed.items():
        got = r.wait_for(lambda ev: completed(ev) >= set(batch2), timeout=60)
        time.sleep(0.5)
        got = [(e["id"], e.get("event"), e["data"]) for e in r.snapshot()]
        assert got == missed, f"{bus}: resume on {name}: {len(got)} events, {len(missed)} missed"
    # And the streams go on live.
    post(b, f"{c.tag}-r3", sentence(rng, u, 999), u)
    for r in (*resumed.values(), reference):
        r.wait_for(lambda ev: f"{c.tag}-r3" in completed(ev), timeout=60)
        r.close()


@pytest.mark.parametrize("bus", BUSES)
def test_kill9_of_a_worker_mid_run_every_message_completes(bus, cluster, pg_server):
    c = cluster(bus)
    a, b, cc = c.start("a", "b", "c")
    rng = random.Random(162)
    watcher = SseReader(a.port)  # every event of this test (its own events namespace)
    ids = []
    users = [f"k-user-{k}" for k in range(20)]
    work = [(f"{c.tag}-k-{i:03d}", users[i % len(users)]) for i in range(400)]

    def post_all():
        for i, (mid, user) in enumerate(work):
            post(b, mid, sentence(rng, user, i), user)
            ids.append(mid)
            time.sleep(0.01)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        poster = pool.submit(post_all)
        watcher.wait_for(lambda ev: len(completed(ev)) >= 80, timeout=120)
        assert cc.stats()["consumed"] > 0, "the victim holds a partition"
        cc.kill9()
        poster.result(timeout=180)
    want = {mid for mid, _ in work}
    watcher.wait_for(lambda ev: completed(ev) >= want, timeout=180)
    events = watcher.snapshot()
    ids_seen = [int(e["id"]) for e in events]
    assert ids_seen == sorted(set(ids_seen))
    first = {}
    for k, e in enumerate(events):
        first.setdefault((data(e)["message_id"], e["event"]), k)
    for mid in want:
        assert first[(mid, "message_received")] < first[(mid, "message_processing")] \
            < first[(mid, "message_completed")], mid
    dup = sum(1 for e in events if e["event"] == "message_completed") - len(want)
    rows = pg_server.psql("SELECT count(*) FROM message_embeddings e JOIN text_messages t "
                          f"USING (id) WHERE t.metadata->>'source_id' LIKE '{c.tag}-k-%'")
    assert int(rows) == len(want)
    print(f"{bus}: kill -9 of a worker: {len(want)} of {len(want)} completed, "
          f"{dup} duplicate completions (at-least-once)")


class RedisSubscriber:
    """SUBSCRIBE over a raw socket (RESP2 by hand): the seed 003 side of the redis bus."""

    def __init__(self, port, *channels):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        cmd = ["SUBSCRIBE", *channels]
        self.sock.sendall(("*%d\r\n" % len(cmd) + "".join(
            "$%d\r\n%s\r\n" % (len(a.encode()), a) for a in cmd)).encode())
        self.buf = b""
        for _ in channels:
            assert self.reply()[0] == b"subscribe"

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "redis closed the connection"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self):
        line = self._line()
        if line[:1] == b"*":
            return [self.reply() for _ in range(int(line[1:]))]
        if line[:1] == b"$":
            n = int(line[1:])
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        if line[:1] == b":":
            return int(line[1:])
        return line[1:]

    def message(self):
        kind, channel, payload = self.reply()
        assert kind == b"message"
        return channel.decode(), json.loads(payload)


def test_redis_bus_publishes_seed_003_channels_and_a_too_large_post_is_413(
        cluster, redis_server):
    c = cluster("redis")
    (a,) = c.start("a")
    prefix = f"es:{c.tag}"
    sub = RedisSubscriber(redis_server.port, f"{prefix}:chan-user", prefix)
    sse = SseReader(a.port, "?user_id=chan-user")
    post(a, f"{c.tag}-p1", "a message for the channels", "chan-user")
    got = [sub.message() for _ in range(12)]  # 6 events, each on both channels
    per_user = [m for ch, m in got if ch == f"{prefix}:chan-user"]
    firehose = [m for ch, m in got if ch == prefix]
    assert [m["type"] for m in per_user] == LIFECYCLE
    assert per_user == firehose
    assert all(m["message_id"] == f"{c.tag}-p1" and m["user_id"] == "chan-user" for m in per_user)
    events = sse.wait_for(lambda ev: len(ev) >= 6, timeout=60)
    # The same ids on the channels as on every instance's SSE stream.
    assert [m["id"] for m in per_user] == [int(e["id"]) for e in events]
    sse.close()

    # ingest kafka: a record the workers would dead-letter (over
    # pipeline.max_record_bytes, 1 MiB) is refused before the 202.
    import urllib.request
    req = urllib.request.Request(
        f"http://127.0.0.1:{a.port}/documents?id={c.tag}-big&user_id=x",
        data=("Words in a sentence. " * 60000).encode(), method="POST",
        headers={"Content-Type": "text/plain"})
    try:
        urllib.request.urlopen(req, timeout=120)
        raise AssertionError("a 1.2 MB document was accepted")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        assert e.code == 413 and json.loads(body)["error"] == "too_large", body[:300]
        assert "max_record_bytes" in body


def request_with_headers(svc, method, path, body=None, timeout=30):
    """(status, headers, body text) without raising on 4xx/5xx."""
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{svc.port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def wait_status(svc, path, want, timeout, contains=""):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = request_with_headers(svc, "GET", path, timeout=5)
        if last[0] == want and contains in last[2]:
            return last
        time.sleep(0.2)
    raise AssertionError(f"GET {path}: wanted {want} ({contains!r}), last {last}")


def test_outages_redis_down_pauses_events_broker_down_is_503_then_both_recover(
        cluster, redis_server, kafka_broker, pg_server):
    """Runs last: it stops and restarts the session's Redis and Kafka broker."""
    c = cluster("redis")
    a, b = c.start("a", "b")
    watcher = SseReader(a.port, "?user_id=outage-user")
    rng = random.Random(163)

    def post_and_complete(mid):
        post(b, mid, sentence(rng, f"{c.tag} outage", 1), "outage-user")
        watcher.wait_for(lambda ev: mid in completed(ev), timeout=120)

    post_and_complete(f"{c.tag}-o1")
    before = int(watcher.snapshot()[-1]["id"])

    # Redis down: /ready says why, POSTs are still taken (ingest is Kafka), the
    # events wait (and the acks with them), nothing is lost.
    redis_server.stop()
    try:
        wait_status(a, "/ready", 503, 30, contains="redis events bus")
        post(b, f"{c.tag}-o2", sentence(rng, f"{c.tag} outage", 2), "outage-user")
        time.sleep(2)
        assert f"{c.tag}-o2" not in completed(watcher.snapshot())
    finally:
        redis_server.start()
    wait_status(a, "/ready", 200, 60)
    watcher.wait_for(lambda ev: f"{c.tag}-o2" in completed(ev), timeout=120)
    o2 = [e for e in watcher.snapshot() if data(e)["message_id"] == f"{c.tag}-o2"]
    assert [e["event"] for e in o2] == LIFECYCLE
    # Redis came back empty (no persistence): ids go on above the old ones.
    assert all(int(e["id"]) > before for e in o2)

    # DELETE through Kafka: message_deleted on A, the row gone from pgvector.
    status, _, body = request_with_headers(b, "DELETE", f"/messages/{c.tag}-o1?user_id=outage-user")
    assert status == 202 and json.loads(body)["status"] == "deleted", body
    watcher.wait_for(lambda ev: any(e["event"] == "message_deleted" and
                                    data(e)["message_id"] == f"{c.tag}-o1" for e in ev), 60)
    assert pg_server.psql("SELECT count(*) FROM text_messages "
                          f"WHERE metadata->>'source_id' = '{c.tag}-o1'") == "0"

    # The broker down: a POST is refused with 503 + Retry-After once the
    # ingest timeout passes (never a silent 202).
    kafka_broker.stop(keep_data=True)
    try:
        t0 = time.time()
        status, headers, body = request_with_headers(
            b, "POST", "/messages", {"id": f"{c.tag}-o3", "message": "lost?", "user_id": "x"})
        assert status == 503, body
        assert headers.get("Retry-After") == "1"
        assert "kafka" in body.lower()
        assert time.time() - t0 < 20
        wait_status(b, "/ready", 503, 30)
    finally:
        kafka_broker.start(keep_data=True)
    wait_status(b, "/ready", 200, 90)
    post_and_complete(f"{c.tag}-o4")
