"""The embedded default: `embedstream serve` with no external services.

Black-box tests of the built binary: POST /messages -> store -> embedding
worker -> search, lifecycle events over SSE, restart and kill -9, bad input.
"""
import concurrent.futures
import http.client
import json
import random
import socket
import threading
import time

import pytest

from service import Service, SseReader

PLANTED = "Machine learning models learn patterns from large amounts of training data."
TOPICS = {
    "food": ["The soup needs more salt and a little pepper.",
             "Fresh bread from the bakery smells wonderful in the morning.",
             "We grilled vegetables and fish for dinner on the terrace.",
             "This pasta recipe uses garlic, olive oil and basil."],
    "sport": ["The striker scored twice in the second half.",
              "She runs ten kilometres every Sunday along the river.",
              "The tennis final went to a fifth set tie-break.",
              "Our cycling club rides over the mountain pass in June."],
    "travel": ["The night train to Vienna leaves at ten past eleven.",
               "Pack a raincoat, the coast is windy in autumn.",
               "The old town has narrow streets and a market square.",
               "Our flight was delayed by fog at the airport."],
}


def corpus(n, seed=7):
    """n (id, text, category) triples with varied texts; ids are unique."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cat = rng.choice(sorted(TOPICS))
        base = rng.choice(TOPICS[cat])
        out.append((f"msg-{i:05d}", f"{base} (note {i}, {rng.randint(0, 10**6)})", cat))
    return out


def wait_status(svc, pred, timeout=300):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = json.loads(svc.get("/status")[1])
        if pred(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"status never reached the condition: {last}\n{svc.tail()}")


def post_all(svc, items, workers=8):
    """POST every (id, text, category) concurrently; returns the replies by id."""
    def one(item):
        mid, text, cat = item
        return mid, svc.post("/messages", {"id": mid, "message": text,
                                           "metadata": {"category": cat}})
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, items))


@pytest.fixture
def serve(binary, model_dir, tmp_path):
    """serve(*args, name=...) starts a ready `embedstream serve`; all stopped at the end."""
    started = []

    def _serve(*args, name="serve", data_dir=None, env_extra=None):
        data = data_dir or tmp_path / "data"
        svc = Service(binary, model_dir, ["--data-dir", str(data), *args],
                      tmp_path / f"{name}.log", env_extra=env_extra)
        started.append(svc)
        svc.wait_ready()
        return svc

    yield _serve
    for svc in started:
        if svc.proc.poll() is None:
            svc.stop()


def test_1000_messages_embedded_searchable_filtered_and_kept_across_restart(serve, run):
    svc = serve()
    items = corpus(999) + [("planted-ml", PLANTED, "ai")]
    replies = post_all(svc, items)
    assert all(r["status"] == "pending" and r["created"] for r in replies.values())
    assert replies["planted-ml"]["id"] == "planted-ml"
    st = wait_status(svc, lambda s: s["embedded"] == 1000)
    assert st["total"] == 1000 and st["pending"] == 0 and st["failed"] == 0
    assert st["indexed"] == 1000

    # Search: the planted ML sentence ranks first for "machine learning".
    res = svc.post("/embeddings/search", {"query": "machine learning", "limit": 5})
    assert res["results"][0]["id"] == "planted-ml", res
    assert res["results"][0]["metadata"] == {"category": "ai"}
    scores = [h["score"] for h in res["results"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5

    # A filter narrows the results to that category only.
    res = svc.post("/embeddings/search", {"query": "machine learning", "limit": 20,
                                          "filter": {"metadata.category": "travel"}})
    assert len(res["results"]) == 20
    assert {h["metadata"]["category"] for h in res["results"]} == {"travel"}
    # A filter nothing matches: no results, not an error.
    res = svc.post("/embeddings/search", {"query": "x", "filter": {"category": "none"}})
    assert res["results"] == []

    # Stored vectors equal `embedstream embed`'s: searching by that vector
    # finds the message with cosine 1.
    out = run(["embed"], (json.dumps({"id": "p", "text": PLANTED}) + "\n").encode())
    vec = json.loads(out.stdout.decode().split("\n")[0])["embedding"]
    res = svc.post("/embeddings/search", {"vector": vec, "limit": 1})
    assert res["results"][0]["id"] == "planted-ml" and res["results"][0]["score"] > 0.99999

    # Reads: newest first, paging, one message with its status.
    status, body = svc.get("/messages?limit=10&offset=0")
    page = json.loads(body)
    assert page["total"] == 1000 and len(page["messages"]) == 10
    one = json.loads(svc.get("/messages/planted-ml")[1])
    assert one["status"] == "embedded" and one["text"] == PLANTED
    assert one["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert one["embedded_at"] >= one["created_at"] > 0

    # Replays change nothing; a changed text is re-embedded.
    again = svc.post("/messages", {"id": "planted-ml", "message": PLANTED,
                                   "metadata": {"category": "ai"}})
    assert again == {"id": "planted-ml", "status": "embedded", "created": False}
    changed = svc.post("/messages", {"id": "msg-00000", "message": "Quarks are held together by the strong nuclear force."})
    assert changed["created"] is False and changed["status"] == "pending"
    wait_status(svc, lambda s: s["embedded"] == 1000 and s["pending"] == 0)
    res = svc.post("/embeddings/search", {"query": "quarks and gluons", "limit": 1})
    assert res["results"][0]["id"] == "msg-00000"

    # Restart: everything is still there, searchable without re-embedding.
    assert svc.stop() == 0, svc.tail()
    svc2 = serve(name="serve2")
    st = json.loads(svc2.get("/status")[1])
    assert (st["total"], st["embedded"], st["indexed"], st["pending"]) == (1000, 1000, 1000, 0)
    res = svc2.post("/embeddings/search", {"query": "machine learning", "limit": 1})
    assert res["results"][0]["id"] == "planted-ml"
    assert svc2.stats()["embedded"] == 0, "nothing was embedded again after the restart"


def test_kill9_during_burst_loses_no_acknowledged_message(serve, tmp_path):
    svc = serve()
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            mid = f"w{w}-{i}"
            try:
                status, body = svc.request("POST", "/messages",
                                           {"id": mid, "message": f"burst message {w} {i}"},
                                           timeout=10)
            except OSError:
                return  # the server died mid-request: not acknowledged
            if status == 202:
                with lock:
                    acked.append(mid)
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    time.sleep(3)
    svc.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 100, f"too few writes acknowledged before the kill: {len(acked)}"

    svc2 = serve(name="after-kill")
    st = wait_status(svc2, lambda s: s["pending"] == 0)
    assert st["total"] >= len(acked) and st["failed"] == 0
    missing = [m for m in acked if svc2.request("GET", f"/messages/{m}")[0] != 200]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:5]}"
    for mid in acked[:: max(1, len(acked) // 50)]:
        assert json.loads(svc2.get(f"/messages/{mid}")[1])["status"] == "embedded"


LIFECYCLE = ["message_received", "message_processing", "stage_completed", "stage_completed",
             "stage_completed", "message_completed"]


def test_sse_delivers_each_lifecycle_in_order_filtered_and_resumable(serve):
    svc = serve()
    mine = SseReader(svc.port, "?user_id=alice")
    one_key = SseReader(svc.port, "?key=a-3")
    try:
        ids = [f"a-{i}" for i in range(20)]
        others = [f"b-{i}" for i in range(10)]
        for i, mid in enumerate(ids):
            svc.post("/messages", {"id": mid, "message": f"alice writes number {i}",
                                   "user_id": "alice"})
            if i < len(others):
                svc.post("/messages", {"id": others[i], "message": f"bob {i}", "user_id": "bob"})
        done = lambda evs: sum(e["event"] == "message_completed" for e in evs) == len(ids)
        events = mine.wait_for(done)
        time.sleep(0.3)  # nothing else may arrive for alice
        events = mine.snapshot()
    finally:
        mine.close()

    by_msg = {}
    for e in events:
        data = json.loads(e["data"])
        assert data["type"] == e["event"] and data["user_id"] == "alice"
        by_msg.setdefault(data["message_id"], []).append((int(e["id"]), e["event"], data))
    assert sorted(by_msg) == sorted(ids), "only alice's messages"
    for mid, evs in by_msg.items():
        assert [t for _, t, _ in evs] == LIFECYCLE, f"{mid}: {[t for _, t, _ in evs]}"
        stages = [(d["stage"], d["stages"]) for _, t, d in evs if t == "stage_completed"]
        assert stages == [(1, 3), (2, 3), (3, 3)]
        assert evs[-1][2]["dim"] == 384
    all_ids = [i for i, _, _ in sorted(x for evs in by_msg.values() for x in evs)]
    assert all_ids == [int(e["id"]) for e in events], "ids increase along the stream"

    key_events = one_key.wait_for(lambda evs: any(e["event"] == "message_completed" for e in evs))
    one_key.close()
    assert {json.loads(e["data"])["message_id"] for e in key_events} == {"a-3"}

    # Resume: Last-Event-ID replays exactly what followed it.
    cut = int(events[len(events) // 2]["id"])
    resumed = SseReader(svc.port, "?user_id=alice", last_event_id=cut)
    try:
        want = [e["id"] for e in events if int(e["id"]) > cut]
        got = resumed.wait_for(lambda evs: len(evs) >= len(want))
        assert [e["id"] for e in got[:len(want)]] == want
    finally:
        resumed.close()


def test_bad_inputs_get_clear_4xx_and_the_server_stays_healthy(serve):
    svc = serve()
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "wrong_type"),
        (b'{"id": "x"}', 400, "missing_text"),
        (b'{"message": 42}', 400, "wrong_type"),
        (b'{"message": "   "}', 400, "empty_text"),
        (b'{"message": "a", "text": "b"}', 400, "conflicting_fields"),
        (b'{"message": "a", "id": 7}', 400, "wrong_type"),
        (b'{"message": "a", "id": ""}', 400, "invalid_id"),
        (b'{"message": "a", "metadata": [1]}', 400, "invalid_metadata"),
        (b'{"message": "a", "user_id": 3}', 400, "wrong_type"),
        (b'{"message": "a", "colour": "red"}', 400, "unknown_field"),
        (b'{"message": "caf\xc3"}', 400, "invalid_utf8"),
    ]
    for body, code, error in cases:
        status, text = svc.request("POST", "/messages", body,
                                   {"Content-Type": "application/json"})
        assert status == code, (body[:60], status, text)
        reply = json.loads(text)
        assert reply["detail"], reply
        if error:
            assert reply["error"] == error, (body[:60], reply)

    # Oversize: the server answers 413 from the headers, without reading the body.
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as sock:
        sock.sendall(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2097152\r\n\r\n" + b'{"message": "' + b"x" * 65536)
        reply = sock.recv(65536).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert '"error"' in reply

    search_cases = [
        ({}, "missing_query"),
        ({"query": "a", "vector": [1.0]}, "missing_query"),
        ({"query": 5}, "wrong_type"),
        ({"vector": [0.5] * 10}, "invalid_vector"),
        ({"query": "a", "limit": 0}, "invalid_limit"),
        ({"query": "a", "limit": "ten"}, "invalid_limit"),
        ({"query": "a", "filter": {"metadata.x": {"gt": 1}}}, "invalid_filter"),
        ({"query": "a", "filter": ["x"]}, "invalid_filter"),
        ({"query": "a", "top_k": 3}, "unknown_field"),
    ]
    for body, error in search_cases:
        status, text = svc.request("POST", "/embeddings/search", body)
        assert status == 400 and json.loads(text)["error"] == error, (body, status, text)

    for method, path, code in [("GET", "/messages?limit=abc", 400),
                               ("GET", "/messages?limit=100000", 400),
                               ("GET", "/messages/no-such-id", 404),
                               ("GET", "/no/such/route", 404),
                               ("DELETE", "/messages", 405)]:
        status, text = svc.request(method, path)
        assert status == code, (method, path, status, text)
        assert "error" in json.loads(text)

    # Still healthy, and nothing of the above was stored.
    assert svc.get("/health")[0] == 200
    assert svc.post("/messages", {"message": "still works"})["created"] is True
    st = wait_status(svc, lambda s: s["embedded"] == 1)
    assert st["total"] == 1


def test_auth_token_guards_every_route_but_health_and_ready(serve):
    svc = serve("--auth-token", "s3cret", env_extra={"EMBEDSTREAM_AUTH_READ_TOKEN": "r3ad"})
    body = {"message": "hello"}
    assert svc.request("POST", "/messages", body)[0] == 401
    status, text = svc.request("POST", "/messages", body, {"Authorization": "Bearer wrong"})
    assert status == 401 and json.loads(text)["error"] == "unauthorized"
    reply = svc.post("/messages", body, {"Authorization": "Bearer s3cret"})
    assert reply["created"] is True
    # Reads are guarded too, unknown paths included; /health and /ready are not.
    for path in ("/messages", f"/messages/{reply['id']}", "/status", "/stats", "/metrics",
                 "/config", "/events", "/", "/no-such-route"):
        status, _ = svc.request("GET", path)
        assert status == 401, path
    assert svc.request("POST", "/embeddings/search", {"query": "hello"})[0] == 401
    assert svc.request("GET", "/health")[0] == 200
    assert svc.request("GET", "/ready")[0] == 200
    # The full token and ?access_token= (for EventSource) open reads.
    assert svc.request("GET", "/messages", headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert svc.request("GET", "/status?access_token=s3cret")[0] == 200
    # The read token reads and searches, and cannot write.
    read = {"Authorization": "Bearer r3ad"}
    assert svc.request("GET", "/stats", headers=read)[0] == 200
    assert svc.request("POST", "/embeddings/search", {"query": "hello"}, read)[0] == 200
    status, text = svc.request("POST", "/messages", body, read)
    assert status == 403 and json.loads(text)["error"] == "forbidden"
    status, cfg = svc.request("GET", "/config", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and "s3cret" not in cfg and "r3ad" not in cfg


def test_cli_commands_talk_to_a_running_server(serve, run):
    svc = serve()
    env = {"EMBEDSTREAM_URL": f"http://127.0.0.1:{svc.port}"}

    def cli(*args):
        p = run(list(args), env_extra=env, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    rc, out, err = cli("messages", "create", "The cat sat on the mat", "--id", "c1",
                       "--user-id", "u1", "--metadata", '{"lang": "en"}')
    assert (rc, out.strip()) == (0, "c1"), err
    rc, out, err = cli("messages", "create", "Gradient descent trains neural networks", "--json")
    assert rc == 0, err
    ml_id = json.loads(out)["id"]
    wait_status(svc, lambda s: s["embedded"] == 2)

    rc, out, err = cli("messages", "list", "--json")
    assert rc == 0, err
    assert {m["id"] for m in json.loads(out)["messages"]} == {"c1", ml_id}
    rc, out, err = cli("messages", "get", "c1", "--json")
    got = json.loads(out)
    assert rc == 0 and got["status"] == "embedded"
    assert got["metadata"] == {"lang": "en", "user_id": "u1"}
    rc, out, err = cli("messages", "stats", "--json")
    assert rc == 0 and json.loads(out)["status"]["embedded"] == 2, out

    rc, out, err = cli("search", "machine learning", "--limit", "2", "--json")
    assert rc == 0, err
    assert json.loads(out)["results"][0]["id"] == ml_id
    rc, out, err = cli("search", "machine learning", "--filter", "metadata.lang=en", "--json")
    assert [h["id"] for h in json.loads(out)["results"]] == ["c1"]
    rc, out, err = cli("search", "machine learning")  # the human-readable table
    assert rc == 0 and "RANK" in out and ml_id in out

    # events: resume from the start of the stream, the whole lifecycle of c1.
    rc, out, err = cli("events", "--user-id", "u1", "--last-event-id", "0", "--count", "6",
                       "--timeout", "20", "--json")
    assert rc == 0, err
    types = [json.loads(line)["type"] for line in out.strip().split("\n")]
    assert types == LIFECYCLE

    # Errors: the server's 4xx -> exit 1 with its error; no server -> exit 2.
    rc, out, err = cli("messages", "get", "no-such-id")
    assert rc == 1 and "not_found" in err
    rc, out, err = cli("messages", "create", "   ")
    assert rc == 1 and "empty_text" in err
    p = run(["messages", "list"], env_extra={"EMBEDSTREAM_URL": "http://127.0.0.1:1"})
    assert p.returncode == 2 and b"cannot connect" in p.stderr

    # health (the Docker image's HEALTHCHECK): 0 healthy, 2 nothing listening.
    rc, out, err = cli("health")
    assert (rc, out.strip()) == (0, "/health: 200"), err
    rc, out, err = cli("health", "--ready", "--json")
    assert rc == 0 and json.loads(out) == {"status": "ready"}, out
    p = run(["health", "--timeout", "2"], env_extra={"EMBEDSTREAM_URL": "http://127.0.0.1:1"})
    assert p.returncode == 2 and b"cannot connect" in p.stderr


def test_write_queue_is_bounded_in_bytes_and_loses_nothing(serve, tmp_path):
    """store.max_queue_bytes: POSTs whose bytes would take the queue over are 503
    overloaded (Retry-After), and every 202 is stored and embedded."""
    cfg = tmp_path / "queue.yaml"
    # Room for two ~30 KB messages: bodies arrive far faster than fsynced commits.
    cfg.write_text("http:\n  max_body_bytes: 65536\nstore:\n  max_queue_bytes: 65536\n"
                   "chunking:\n  on_overflow: truncate\n")  # the queue is tested, not chunking
    svc = serve("-c", str(cfg))
    word = "lorem ipsum dolor sit amet " * 1100  # ~30 KB of text

    def one(i):
        return i, svc.request("POST", "/messages", {"id": f"big-{i}", "message": f"{i} {word}"},
                              timeout=120)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        replies = dict(pool.map(one, range(200)))
    codes = [status for status, _ in replies.values()]
    assert set(codes) <= {202, 503}, codes
    refused = [i for i, (status, body) in replies.items() if status == 503]
    accepted = [i for i, (status, body) in replies.items() if status == 202]
    assert refused, "200 POSTs from 32 threads never filled a 64 KiB queue"
    assert accepted
    for i in refused:
        assert json.loads(replies[i][1])["error"] == "overloaded"
    st = wait_status(svc, lambda s: s["pending"] == 0 and s["total"] == len(accepted), timeout=900)
    assert st["embedded"] + st["failed"] == len(accepted)
    for i in accepted:
        status, body = svc.request("GET", f"/messages/big-{i}")
        assert status == 200 and json.loads(body)["text"].startswith(f"{i} lorem")
    stats = json.loads(svc.get("/stats")[1])
    assert stats["refused"] == len(refused) and stats["queued_bytes"] == 0
