"""Deletes and documents through the Kafka pipeline (issue 14), black-box against
the built binary, a real Kafka broker, a real PostgreSQL 16 + pgvector, the real
model and Qdrant (the real server when found, else the schema-validating test
server; the log says which).

What these tests prove:

* A document of 10 chunks (the model takes 256 tokens) reaches every sink of the
  Kafka pipeline [store, kafka, postgres, qdrant] as 10 chunks: output records
  keyed by the document id with id "<id>#<n>", parent_id, chunk_index,
  chunk_count, char_start, char_end (the spans of `embed --chunk`); the store's
  search (group_by none) lists 10 chunks; pgvector holds one text row (the whole
  text), one message_embeddings row (seed 001's read model: the first chunk's
  vector, chunk_count 10) and 10 rows in message_embeddings_chunks; Qdrant
  10 points (uuid5 of "<id>#<n>") with parent_id, chunk_index, chunk_count and
  the span. The same id again with a 3-chunk text leaves exactly the 3 new
  chunks in every sink, in one step per sink: no sink is ever seen holding old
  and new chunks together (Qdrant behind a proxy that holds each points/delete
  2 s, so a replacement made of an upsert and then a delete shows). A tombstone
  then leaves nothing anywhere (the text row is gone, its chunks and progress
  with it), and the output topic ends that key with a tombstone.
* ~300 operations over 40 ids (upserts short and long, tombstones, {"op":
  "delete"} values) with serve killed (-9) mid-run and started again on the
  same data dir and group: once the group has committed everything, every sink
  holds, for every id, exactly what its last operation says.
* An upsert and a delete of one id back to back: absent everywhere; a delete
  and an upsert back to back: present with that text (for new ids, and for ids
  that were already there, whole texts and chunked ones).
"""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import time
import uuid

import pytest

import test_kafka as tk
from kafka_broker import KAFKA_SH, KEY_SEPARATOR, REPO, kafka_broker  # noqa: F401  (fixture)
from pg_server import pg_server  # noqa: F401  (pytest fixture)
from qdrant_real import qdrant, say  # noqa: F401  (pytest fixture)
from service import Service
from test_postgres import EMB, TEXT, TOPICAL, WORDS, pg, pg_messages, wait_until  # noqa: F401
from test_resilience import TooLargeProxy

CHUNKS = f"{EMB}_chunks"
COLLECTION = "document_points"
# EmbedstreamNamespace(): uuid5(NAMESPACE_URL, "https://github.com/embedstream")
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/embedstream")
NULL = "\x01null\x01"  # the console producer's / consumer's marker for a null value
HEX = set("0123456789abcdefABCDEF")


# ---------------------------------------------------------------- ids
def is_uuid(s: str) -> bool:
    """ParseUuid's rule: 36 characters, dashes at 8, 13, 18, 23, hex elsewhere."""
    return len(s) == 36 and all(
        (c == "-") if i in (8, 13, 18, 23) else (c in HEX) for i, c in enumerate(s))


def stored_id(doc_id: str) -> str:
    """PostgresSink::StoredId / QdrantSink::PointId: the UUID (lower case), else uuid5."""
    return doc_id.lower() if is_uuid(doc_id) else str(uuid.uuid5(NAMESPACE, doc_id))


def chunk_point_id(doc_id: str, n: int) -> str:
    return stored_id(f"{doc_id}#{n}")


# ---------------------------------------------------------------- texts
def prose(rng: random.Random, words: int) -> str:
    """Sentences of 6-24 words, now and then a topical one, about `words` words."""
    out, n = [], 0
    while n < words:
        if rng.random() < 0.08:
            s = rng.choice(TOPICAL)
        else:
            s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))).capitalize() + "."
        out.append(s)
        n += len(s.split())
    return " ".join(out)


def chunk_spans(run, texts: dict) -> dict:
    """{id: [(char_start, char_end), ...]} as `embed --chunk` cuts each text (one
    span (0, len) for a text that fits the model)."""
    stdin = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts.items()).encode()
    p = run(["embed", "--chunk"], stdin)
    assert p.returncode == 0, p.stderr.decode()
    spans = {i: [] for i in texts}
    for line in p.stdout.decode().split("\n"):
        if not line.strip():
            continue
        r = json.loads(line)
        if "parent_id" in r:
            assert r["id"] == f"{r['parent_id']}#{r['chunk_index']}", r
            spans[r["parent_id"]].append((r["chunk_index"], r["chunk_count"], r["char_start"],
                                          r["char_end"]))
        else:
            spans[r["id"]].append((0, 1, 0, len(texts[r["id"]])))
    out = {}
    for i, s in spans.items():
        s.sort()
        assert [c[0] for c in s] == list(range(len(s))) and all(c[1] == len(s) for c in s), s
        out[i] = [(c[2], c[3]) for c in s]
    return out


def document(run, seed: int, chunks: int) -> "tuple[str, list]":
    """A text of varied prose that the model's 256 tokens cut into exactly
    `chunks` chunks, and its spans (embed --chunk's)."""
    rng = random.Random(seed)
    base = prose(rng, 190 * chunks + 200).split(". ")
    # Candidates of a growing number of sentences; one of them has `chunks` chunks.
    cands = {}
    for k in range(len(base) * (chunks - 1) // chunks, len(base) + 1, 2):
        t = ". ".join(base[:k]).rstrip(".") + "."
        cands[str(k)] = t
    spans = chunk_spans(run, cands)
    for k in sorted(cands, key=int):
        if len(spans[k]) == chunks:
            return cands[k], spans[k]
    raise AssertionError(f"no text of {chunks} chunks: {[len(s) for s in spans.values()]}")


# ---------------------------------------------------------------- Kafka
def produce(broker, topic: str, records) -> None:
    """(key, value) pairs in this order through one producer (acks=all,
    idempotent): a key's records go to one partition, in order. A None value is
    a tombstone; a dict value is sent as JSON."""
    lines = []
    for key, value in records:
        if isinstance(value, dict):
            value = json.dumps(value)
        v = NULL if value is None else value
        assert "\n" not in key + v and KEY_SEPARATOR not in key, (key, v[:80])
        lines.append(key + KEY_SEPARATOR + v + "\n")
    p = subprocess.run(
        ["bash", str(KAFKA_SH), "run-class", "org.apache.kafka.tools.ConsoleProducer",
         "--bootstrap-server", broker.bootstrap, "--topic", topic,
         "--command-property", "acks=all", "--command-property", "enable.idempotence=true",
         "--command-property", "max.request.size=4194304",
         "--reader-property", "parse.key=true",
         "--reader-property", f"key.separator={KEY_SEPARATOR}",
         "--reader-property", f"null.marker={NULL}"],
        input="".join(lines), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]


def read_keyed(broker, topic: str, timeout_ms: int = 5000) -> list:
    """Every record of a topic as (partition, offset, key, value), value None for
    a tombstone, in offset order per partition."""
    res = broker.run_class(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker.bootstrap,
        "--topic", topic, "--from-beginning", "--timeout-ms", str(timeout_ms),
        "--formatter-property", "print.partition=true",
        "--formatter-property", "print.offset=true",
        "--formatter-property", "print.key=true",
        "--formatter-property", f"key.separator={KEY_SEPARATOR}",
        "--formatter-property", f"null.literal={NULL}", ok_codes=(0, 1), timeout=300)
    out = []
    for line in res.stdout.split("\n"):
        if not line:
            continue
        part, off, key, value = line.split(KEY_SEPARATOR, 3)
        assert part.startswith("Partition:") and off.startswith("Offset:"), line[:200]
        out.append((int(part[10:]), int(off[7:]), None if key == NULL else key,
                    None if value == NULL else value))
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def by_key(records) -> dict:
    """{key: [value (dict) or None, ...]} in the order of the key's partition."""
    out = {}
    for _, _, key, value in records:
        out.setdefault(key, []).append(None if value is None else json.loads(value))
    return out


def committed_total(broker, group: str) -> int:
    return sum(broker.committed_offsets(group).values())


# ---------------------------------------------------------------- the sinks
def store_state(svc, doc: str) -> "dict[str, dict]":
    """{hit id: hit} of the store's search (group_by none) for one document:
    its chunks, or its whole text."""
    res = svc.post("/embeddings/search", {"query": "the document", "limit": 1000,
                                          "group_by": "none"})
    assert "next" not in res or not res["next"], "more hits than one page"
    return {h["id"]: h for h in res["results"] if h["id"] == doc or h.get("parent_id") == doc}


def store_all(svc) -> "dict[str, dict]":
    res = svc.post("/embeddings/search", {"query": "the document", "limit": 1000,
                                          "group_by": "none"})
    assert not res.get("next"), "more hits than one page"
    return {h["id"]: h for h in res["results"]}


def store_message(svc, doc: str):
    """GET /messages/{id}: (status code, parsed body or text)."""
    status, body = svc.request("GET", f"/messages/{doc}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def pg_chunks(pg, doc: str) -> "dict[str, tuple]":
    """{chunk id: (chunk_index, chunk_count, char_start, char_end, chunk_text md5)}."""
    out = {}
    rows = pg.psql(f"SELECT id, chunk_index, chunk_count, char_start, char_end, md5(chunk_text), "
                   f"embedding IS NOT NULL, model_name FROM {CHUNKS} "
                   f"WHERE parent_id = '{stored_id(doc)}' ORDER BY chunk_index")
    for line in rows.split("\n"):
        if line:
            cid, ci, cc, cs, ce, md5, has_vec, model = line.split("|")
            assert has_vec == "t" and model, line
            out[cid] = (int(ci), int(cc), int(cs), int(ce), md5)
    return out


def pg_state(pg, docs) -> dict:
    """{doc: (text or None, message_embeddings chunk_count or 0 when no row, {chunk id: ...})}
    in one look."""
    ids = [stored_id(d) for d in docs]
    arr = "ARRAY[" + ",".join(f"'{i}'" for i in ids) + "]::uuid[]"
    texts = pg_messages(pg, ids)
    whole = {}
    for line in pg.psql(f"SELECT id, chunk_count FROM {EMB} WHERE id = ANY({arr})"
                        ).split("\n"):
        if line:
            i, n = line.split("|")
            whole[i] = int(n)
    chunks = {}
    for line in pg.psql(f"SELECT parent_id, id, chunk_count, md5(chunk_text) FROM {CHUNKS} "
                        f"WHERE parent_id = ANY({arr})").split("\n"):
        if line:
            p, cid, cc, md5 = line.split("|")
            chunks.setdefault(p, {})[cid] = (int(cc), md5)
    return {d: (texts.get(stored_id(d)), whole.get(stored_id(d), 0),
                chunks.get(stored_id(d), {})) for d in docs}


def qdrant_points(q) -> dict:
    """{point id (str): payload}; {} before the collection exists."""
    try:
        return {str(k): v["payload"] for k, v in q.points(COLLECTION).items()}
    except KeyError:
        return {}


def qdrant_state(q, doc: str) -> dict:
    return {k: p for k, p in qdrant_points(q).items() if p.get("parent_id") == doc}


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


# ---------------------------------------------------------------- serve
def write_config(tmp_path, q, sinks, name="serve", qdrant_url=None) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "pipeline: {retry_base_ms: 100, retry_max_ms: 1000}\n"
        "sinks:\n"
        "  postgres: {mode: embeddings}\n"
        f"  qdrant: {{url: '{qdrant_url or q.url}', collection: {COLLECTION}, "
        "timeout_ms: 10000}\n"
        f"sources:\n  kafka: {{sinks: [{', '.join(sinks)}]}}\n")
    return str(path)


def start(binary, model_dir, t, cfg, pg_server, tmp_path, name, data_dir):
    svc = Service(binary, model_dir, tk.serve_args(t, ["--config", cfg, "--data-dir", data_dir]),
                  tmp_path / f"{name}.log", env_extra=pg_server.env())
    svc.wait_ready()
    return svc


@pytest.fixture
def slow_qdrant_deletes(qdrant):
    """A proxy in front of Qdrant holding each points/delete request 2 s (a slow
    network): a sink that replaces a document's points in two requests (an upsert,
    then a delete) shows a mix of old and new chunks that long."""
    delay = 2.0

    def hold(method, path):
        return delay if "/points/delete" in path else 0

    with TooLargeProxy(qdrant.url, limit=1 << 30, hold=hold) as proxy:
        proxy.delay = delay
        yield proxy


@pytest.fixture
def topics(run, kafka_broker):
    return tk.Topics(run, kafka_broker, partitions=3)


# ---------------------------------------------------------------- a
def test_shrinking_document_leaves_exactly_its_new_chunks_everywhere(
        run, binary, model_dir, kafka_broker, pg, qdrant, slow_qdrant_deletes, topics, tmp_path):
    doc = "doc-shrink"
    proxy = slow_qdrant_deletes
    long10, spans10 = document(run, seed=1401, chunks=10)
    long3, spans3 = document(run, seed=1402, chunks=3)
    say(f"documents: {len(long10.split())} words -> 10 chunks, {len(long3.split())} words -> 3")
    cfg = write_config(tmp_path, qdrant, ["store", "kafka", "postgres", "qdrant"],
                       qdrant_url=proxy.url)
    svc = start(binary, model_dir, topics, cfg, pg, tmp_path, "a", str(tmp_path / "a.data"))
    try:
        # ---- 10 chunks
        produce(kafka_broker, topics.input, [(doc, {"id": doc, "text": long10})])
        counts = lambda: (len(store_state(svc, doc)), len(pg_chunks(pg, doc)),  # noqa: E731
                          len(qdrant_state(qdrant, doc)))
        wait_until(counts, lambda c: c == (10, 10, 10), 240,
                   "10 chunks in the store, pgvector and Qdrant", svc)
        check_everywhere(svc, pg, qdrant, doc, long10, spans10)
        out = by_key(read_keyed(kafka_broker, topics.output))
        assert set(out) == {doc}, set(out)
        assert_output_chunks(out[doc], doc, long10, spans10)

        # ---- the same id, 3 chunks: exactly the new 3 everywhere
        produce(kafka_broker, topics.input, [(doc, {"id": doc, "text": long3})])
        old = expected_state(doc, long10, spans10)
        new = expected_state(doc, long3, spans3)
        seen = []

        def look():
            st = sink_states(svc, pg, qdrant, doc)
            seen.append(st)
            return st

        wait_until(look, lambda st: all(s == new[k] for k, s in st.items()), 240,
                   "exactly the 3 new chunks in the store, pgvector and Qdrant", svc, interval=0.1)
        # One step per sink: never a mix of old and new chunks (asserted at the end,
        # after the rest of the story).
        mixes = {}
        for st in seen:
            for sink, s in st.items():
                if s not in (old[sink], new[sink]):
                    mixes.setdefault(sink, summary(s))
        check_everywhere(svc, pg, qdrant, doc, long3, spans3)
        out = by_key(read_keyed(kafka_broker, topics.output))
        assert len(out[doc]) == 13, [v and v["id"] for v in out[doc]]
        assert_output_chunks(out[doc][10:], doc, long3, spans3)

        # ---- a tombstone: nothing anywhere
        produce(kafka_broker, topics.input, [(doc, None)])
        wait_until(lambda: sink_states(svc, pg, qdrant, doc),
                   lambda st: all(not s for s in st.values()), 120,
                   "the document gone from the store, pgvector and Qdrant", svc)
        # The text row went, and with it (ON DELETE CASCADE) its chunks and progress.
        for table in (TEXT, EMB, CHUNKS, f"{EMB}_progress"):
            assert pg.psql(f"SELECT count(*) FROM {table}") == "0", table
        assert qdrant_points(qdrant) == {}
        assert store_all(svc) == {}
        status, body = store_message(svc, doc)
        assert status == 404, (status, body)

        def output_ends_with_tombstone():
            recs = by_key(read_keyed(kafka_broker, topics.output))
            return recs if len(recs.get(doc, [])) == 14 else None

        out = wait_until(output_ends_with_tombstone, bool, 60,
                         "the tombstone of doc-shrink in the embeddings topic", svc)
        assert out[doc][-1] is None, f"the last record of {doc} is not a tombstone: {out[doc][-1]}"
        assert all(v is not None for v in out[doc][:-1])
        assert [v["id"] for v in out[doc][:-1]] == (
            [f"{doc}#{n}" for n in range(10)] + [f"{doc}#{n}" for n in range(3)])
        stats = svc.stats()
        assert stats["dlq"] == 0, stats
    finally:
        assert svc.stop() == 0, svc.tail()
    assert read_keyed(kafka_broker, topics.dlq) == []
    assert proxy.forwarded > 0 and proxy.refused == 0
    assert not mixes, (
        "a sink was seen holding neither the old 10 chunks nor the new 3 (Qdrant deletes "
        f"held {proxy.delay} s by the proxy: the replacement is not one step): {mixes}")


def expected_state(doc, text, spans) -> dict:
    """What sink_states gives for `doc` holding `text` cut at `spans`."""
    n = len(spans)
    ids = [f"{doc}#{i}" for i in range(n)] if n > 1 else [doc]
    texts = [text[a:b] for a, b in spans] if n > 1 else [text]
    return {
        "store": sorted((i, n, md5(t)) for i, t in zip(ids, texts)),
        "postgres": (text, n, sorted((i, n, md5(t)) for i, t in zip(ids, texts))) if n > 1 else
                    (text, 1, []),
        "qdrant": sorted((i if n > 1 or not is_uuid(doc) else stored_id(doc), n, md5(t))
                         for i, t in zip(ids, texts)),
    }


def summary(state) -> list:
    """(id, chunk_count) of a sink_states entry (pgvector: its chunks)."""
    if state and isinstance(state, tuple):
        return [f"text row: {state[0] is not None}, message_embeddings chunk_count: {state[1]}"] + [
            (i, c) for i, c, _ in state[2]]
    return [(i, c) for i, c, _ in state]


def sink_states(svc, pg, q, doc) -> dict:
    """Comparable summaries of what each sink holds for one document."""
    store = sorted((h["id"], h.get("chunk_count", 1), md5(h["text"]))
                   for h in store_state(svc, doc).values())
    text, whole, chunks = pg_state(pg, [doc])[doc]
    pgs = (text, whole, sorted((cid, cc, m) for cid, (cc, m) in chunks.items()))
    if text is None and whole == 0 and not chunks:
        pgs = ()
    qd = sorted((p.get("source_id") or pid, p.get("chunk_count"), md5(p.get("text", "")))
                for pid, p in qdrant_state(q, doc).items())
    return {"store": store, "postgres": pgs, "qdrant": qd}


def assert_output_chunks(records, doc, text, spans):
    """The output records of one version of a chunked document."""
    n = len(spans)
    assert len(records) == n, [r and r.get("id") for r in records]
    for k, (r, (a, b)) in enumerate(zip(records, spans)):
        assert r is not None, f"a tombstone among the chunk records of {doc}"
        assert r["id"] == f"{doc}#{k}" and r["parent_id"] == doc, r["id"]
        assert (r["chunk_index"], r["chunk_count"]) == (k, n), r["id"]
        assert (r["char_start"], r["char_end"]) == (a, b), (r["id"], r["char_start"], r["char_end"])
        assert r["original_text"] == text[a:b], r["id"]
        assert len(r["embedding"]) == r["embedding_dimension"] == 384
    assert spans[0][0] == 0 and spans[-1][1] == len(text), spans


def check_everywhere(svc, pg, q, doc, text, spans):
    """Each sink holds exactly `text` cut at `spans` for `doc` (in detail)."""
    n = len(spans)
    # The store: every chunk its own hit, with its document and span.
    hits = store_state(svc, doc)
    assert set(hits) == {f"{doc}#{k}" for k in range(n)}, sorted(hits)
    for k, (a, b) in enumerate(spans):
        h = hits[f"{doc}#{k}"]
        assert h["parent_id"] == doc and h["chunk_index"] == k and h["chunk_count"] == n, h
        assert (h["char_start"], h["char_end"]) == (a, b), h
        assert h["text"] == text[a:b], (k, h["text"][:80])
    status, m = store_message(svc, doc)
    assert status == 200 and m["status"] == "embedded", (status, brief(m))
    assert m["text"] == text and m["chunks"] == {"embedded": n, "total": n}, brief(m)
    # pgvector: one text row with the whole text, one message_embeddings row (the
    # first chunk's vector, chunk_count n), n chunks.
    sid = stored_id(doc)
    assert pg_messages(pg, [sid]) == {sid: text}
    assert int(pg.psql(f"SELECT count(*) FROM {TEXT}")) == 1
    assert pg.psql(f"SELECT chunk_count FROM {EMB} WHERE id = '{sid}'") == str(n), (
        "a chunked document keeps its message_embeddings row, with its chunk count")
    chunks = pg_chunks(pg, doc)
    assert chunks == {f"{doc}#{k}": (k, n, a, b, md5(text[a:b]))
                      for k, (a, b) in enumerate(spans)}, chunks
    # Qdrant: n points, uuid5 of "<id>#<n>", with the chunk payload.
    points = qdrant_points(q)
    assert set(points) == {chunk_point_id(doc, k) for k in range(n)}, sorted(points)
    for k, (a, b) in enumerate(spans):
        p = points[chunk_point_id(doc, k)]
        assert p["parent_id"] == doc and p["source_id"] == f"{doc}#{k}", p
        assert (p["chunk_index"], p["chunk_count"], p["char_start"], p["char_end"]) == (
            k, n, a, b), p
        assert p["text"] == text[a:b], (k, p["text"][:80])


# ---------------------------------------------------------------- final states
def brief(msg):
    """A GET /messages/{id} answer without its text."""
    return {k: v for k, v in msg.items() if k != "text"} if isinstance(msg, dict) else msg


def brief_points(points: dict) -> list:
    """(source id or point id, text's start, chunk_count) of Qdrant points."""
    return sorted((p.get("source_id") or i, (p.get("text") or "")[:40], p.get("chunk_count"))
                  for i, p in points.items())[:12]


def final_problems(svc, pg, q, finals: dict, spans: dict, output=None) -> list:
    """Where the sinks differ from `finals` ({id: last text, or None: deleted};
    `spans`: chunk_spans of the texts), each sink in one look; `output`: the
    output topic's by_key, whose last record per id must be the last operation's."""
    problems = []
    hits = store_all(svc)
    pgs = pg_state(pg, list(finals))
    points = qdrant_points(q)
    want_hits, want_points = set(), set()
    pg_text_rows = pg_whole_rows = pg_chunk_rows = 0
    for doc, text in finals.items():
        got_hits = {i: h for i, h in hits.items() if i == doc or h.get("parent_id") == doc}
        got_points = {i: p for i, p in points.items() if p.get("parent_id") == doc
                      or i == stored_id(doc)}
        ptext, pwhole, pchunks = pgs[doc]
        status, msg = store_message(svc, doc)
        last = output.get(doc, [None])[-1] if output is not None else None
        if text is None:
            if got_hits:
                problems.append(f"{doc} deleted, the store's search has {sorted(got_hits)}")
            if status != 404:
                problems.append(f"{doc} deleted, GET /messages/{doc} -> {status} {brief(msg)}")
            if ptext is not None or pwhole or pchunks:
                problems.append(f"{doc} deleted, pgvector has text {ptext!r:.60}, {pwhole} "
                                f"whole-text vectors, chunks {sorted(pchunks)}")
            if got_points:
                problems.append(f"{doc} deleted, Qdrant has points {brief_points(got_points)}")
            if output is not None and last is not None:
                problems.append(f"{doc} deleted, its last output record is {last.get('id')}, "
                                "not a tombstone")
            continue
        sp = spans[doc]
        n = len(sp)
        parts = {f"{doc}#{k}": text[a:b] for k, (a, b) in enumerate(sp)} if n > 1 else {doc: text}
        want_hits |= set(parts)
        pg_text_rows += 1
        pg_whole_rows += 1
        pg_chunk_rows += n if n > 1 else 0
        got = {i: (h["text"], h.get("chunk_count", 1)) for i, h in got_hits.items()}
        if got != {i: (t, n) for i, t in parts.items()}:
            problems.append(f"{doc} = {n} chunk(s) of {text[:40]!r}..., the store's search has "
                            f"{ {i: (t[:40], c) for i, (t, c) in got.items()} }")
        if status != 200 or msg.get("status") != "embedded" or (
                n > 1 and msg.get("chunks") != {"embedded": n, "total": n}):
            problems.append(f"{doc} = {n} chunk(s), GET /messages/{doc} -> {status} "
                            f"{brief(msg)}")
        want_pg = (text, n,
                   {i: (n, md5(t)) for i, t in parts.items()} if n > 1 else {})
        if (ptext, pwhole, pchunks) != want_pg:
            problems.append(f"{doc} = {n} chunk(s) of {text[:40]!r}..., pgvector has text "
                            f"{(ptext or '')[:40]!r} (right: {ptext == text}), {pwhole} whole-text "
                            f"vectors, chunks { {i: c for i, (c, _) in pchunks.items()} }")
        # Every point: parent_id, chunk_index, chunk_count; a chunk's id and source_id
        # from "<id>#<n>".
        want_p = ({chunk_point_id(doc, k): (f"{doc}#{k}", t, doc, k, n) for k, t in
                   enumerate(parts.values())} if n > 1 else
                  {stored_id(doc): (None, text, doc, 0, 1)})
        want_points |= set(want_p)
        got_p = {i: (p.get("source_id") if n > 1 else None, p.get("text"), p.get("parent_id"),
                     p.get("chunk_index"), p.get("chunk_count")) for i, p in got_points.items()}
        if got_p != want_p:
            problems.append(f"{doc} = {n} chunk(s) of {text[:40]!r}..., Qdrant has "
                            f"{brief_points(got_points)}")
        if output is not None:
            a, b = sp[-1]
            want_last = (f"{doc}#{n - 1}" if n > 1 else doc, text[a:b] if n > 1 else text)
            if last is None or (last["id"], last["original_text"]) != want_last:
                problems.append(f"{doc} = {n} chunk(s), its last output record is "
                                f"{last and (last['id'], last['original_text'][:40])}")
    # Nothing else anywhere (e.g. chunks of an older version left behind).
    extra = set(hits) - want_hits
    if extra:
        problems.append(f"the store's search has more: {sorted(extra)[:10]}")
    extra = set(points) - want_points
    if extra:
        problems.append(f"Qdrant has more points: {brief_points({i: points[i] for i in extra})}")
    counts = tuple(int(pg.psql(f"SELECT count(*) FROM {t}")) for t in (TEXT, EMB, CHUNKS))
    if counts != (pg_text_rows, pg_whole_rows, pg_chunk_rows):
        problems.append(f"pgvector rows (text, whole-text vectors, chunks) {counts}, expected "
                        f"{(pg_text_rows, pg_whole_rows, pg_chunk_rows)}")
    return problems


def wait_processed(broker, t, svc, total, timeout):
    """Every one of `total` input records committed by the group, nothing in flight."""
    wait_until(lambda: (committed_total(broker, t.group), svc.stats()["inflight"]),
               lambda c: c == (total, 0), timeout,
               f"the group {t.group} to commit all {total} records", svc, interval=2)


# ---------------------------------------------------------------- b
def operations(run, rng, ids, n_random):
    """n_random operations over ids, then one last operation per id (shuffled in):
    [(id, value or None)], and {id: the last text or None}."""
    long_pool = [document(run, seed=1500 + k, chunks=c)[0] for k, c in enumerate((2, 3, 4, 5))]
    version = {i: 0 for i in ids}

    def op(i, kind):
        version[i] += 1
        if kind == "short":
            return {"id": i, "text": f"{i} version {version[i]}: " + prose(rng, rng.randint(5, 30))}
        if kind == "long":
            return {"id": i, "text": f"{i} version {version[i]}. " + rng.choice(long_pool)}
        if kind == "tombstone":
            return None
        return {"id": i, "op": "delete"}

    # Long texts (2-5 chunks) make the run last long enough to be killed in the middle.
    kinds = ["short"] * 8 + ["long"] * 4 + ["tombstone"] * 4 + ["op"] * 3
    ops = [(i, op(i, rng.choice(kinds))) for i in (rng.choice(ids) for _ in range(n_random))]
    # The last operation of each id: every kind, evenly.
    last_kinds = ["short", "long", "tombstone", "op"]
    lasts = [(i, op(i, last_kinds[k % 4])) for k, i in enumerate(ids)]
    rng.shuffle(lasts)
    # Each id's last one after all of its others; spread over the last third.
    for i, v in lasts:
        after = max([k for k, (j, _) in enumerate(ops) if j == i], default=-1)
        ops.insert(rng.randint(max(after + 1, len(ops) * 2 // 3), len(ops)), (i, v))
    finals = {}
    for i, v in ops:
        finals[i] = None if v is None or v.get("op") == "delete" else v["text"]
    assert sum(1 for v in finals.values() if v is None) >= len(ids) // 2 - 2
    return ops, finals


def test_deletes_with_kill_9_end_in_the_last_operation_per_id(
        run, binary, model_dir, kafka_broker, pg, qdrant, topics, tmp_path):
    rng = random.Random(1403)
    ids = [f"doc-{k:02d}" for k in range(34)] + [
        str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(6)]
    ops, finals = operations(run, rng, ids, 260)
    total = len(ops)
    kinds = {"upsert": sum(v is not None and "text" in v for _, v in ops),
             "tombstone": sum(v is None for _, v in ops),
             "op delete": sum(v is not None and "op" in v for _, v in ops)}
    say(f"{total} operations over {len(ids)} ids: {kinds}; at the end "
        f"{sum(v is None for v in finals.values())} ids deleted")
    spans = chunk_spans(run, {i: t for i, t in finals.items() if t is not None})
    cfg = write_config(tmp_path, qdrant, ["store", "kafka", "postgres", "qdrant"])
    data_dir = str(tmp_path / "b.data")
    # A third first, done and committed; then the rest, and kill -9 in its middle.
    split = total // 3
    produce(kafka_broker, topics.input, ops[:split])
    a = start(binary, model_dir, topics, cfg, pg, tmp_path, "b1", data_dir)
    try:
        wait_processed(kafka_broker, topics, a, split, 240)
        produce(kafka_broker, topics.input, ops[split:])
        t0 = time.time()
        acked = wait_until(lambda: a.stats()["sources"]["kafka"]["acked"],
                           lambda n: n >= split + (total - split) // 3, 240,
                           f">= {split + (total - split) // 3} operations done by the first "
                           "instance", a, interval=0.05)
        a.kill9()
    finally:
        if a.proc.poll() is None:
            a.stop()
    killed_at = time.time()
    committed = committed_total(kafka_broker, topics.group)
    say(f"kill -9 {killed_at - t0:.1f} s into the second part, {acked} of {total} operations "
        f"acked; {committed} committed")
    # Mid-run: the second instance starts after the committed ones, applies again
    # those done but not committed, then the rest.
    assert acked < total, "everything was done before the kill: the test proves nothing"
    assert split <= committed < total, f"committed {committed} of {total} at the kill"
    b = start(binary, model_dir, topics, cfg, pg, tmp_path, "b2", data_dir)
    try:
        wait_processed(kafka_broker, topics, b, total, 300)
        output = by_key(read_keyed(kafka_broker, topics.output))
        problems = final_problems(b, pg, qdrant, finals, spans, output)
        stats = b.stats()
    finally:
        assert b.stop() == 0, b.tail()
    k = stats["sources"]["kafka"]
    say(f"second instance: read {k['read']}, acked {k['acked']}, deleted {k['deleted']}, "
        f"chunked {k['chunked']} into {k['chunks']} chunks")
    assert not problems, (f"{len(problems)} differences from the last operation per id:\n"
                          + "\n".join(problems[:25]))
    assert stats["dlq"] == 0 and read_keyed(kafka_broker, topics.dlq) == []


# ---------------------------------------------------------------- c
def test_upsert_then_delete_in_one_batch(run, binary, model_dir, kafka_broker, pg, qdrant,
                                         topics, tmp_path):
    rng = random.Random(1404)
    long_a, _ = document(run, seed=1601, chunks=3)
    long_b, _ = document(run, seed=1602, chunks=4)

    def short(tag):
        return f"{tag}: " + prose(rng, 20)

    before = {"old-short-ud": short("first"), "old-long-ud": long_a,
              "old-short-du": short("first"), "old-long-du": long_a}
    cfg = write_config(tmp_path, qdrant, ["store", "kafka", "postgres", "qdrant"])
    svc = start(binary, model_dir, topics, cfg, pg, tmp_path, "c", str(tmp_path / "c.data"))
    try:
        produce(kafka_broker, topics.input, [(i, {"id": i, "text": t}) for i, t in before.items()])
        wait_processed(kafka_broker, topics, svc, len(before), 120)
        problems = final_problems(svc, pg, qdrant, before, chunk_spans(run, before))
        assert not problems, "\n".join(problems)
        # Back to back, each pair: one poll, one partition, in this order.
        tomb, op_delete = object(), object()  # a tombstone, {"id", "op": "delete"}
        pairs = [
            ("old-short-ud", short("second"), tomb),       # upsert, delete: absent
            ("old-long-ud", long_b, op_delete),
            ("new-short-ud", short("new"), op_delete),
            ("new-long-ud", long_a, tomb),
            ("old-short-du", tomb, long_b),                # delete, upsert: present
            ("old-long-du", op_delete, short("second")),
            ("new-short-du", op_delete, short("new")),
            ("new-long-du", tomb, long_b),
        ]

        def value(i, v):
            if v is tomb:
                return None
            if v is op_delete:
                return {"id": i, "op": "delete"}
            return {"id": i, "text": v}

        records = [(i, value(i, v)) for i, first, second in pairs for v in (first, second)]
        produce(kafka_broker, topics.input, records)
        finals = {i: (None if second is tomb or second is op_delete else second)
                  for i, _, second in pairs}
        spans = chunk_spans(run, {i: t for i, t in finals.items() if t is not None})
        wait_processed(kafka_broker, topics, svc, len(before) + len(records), 120)
        output = by_key(read_keyed(kafka_broker, topics.output))
        problems = final_problems(svc, pg, qdrant, finals, spans, output)
        stats = svc.stats()
    finally:
        assert svc.stop() == 0, svc.tail()
    assert not problems, (f"{len(problems)} differences from the last operation per id:\n"
                          + "\n".join(problems))
    assert stats["dlq"] == 0
