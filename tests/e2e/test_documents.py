"""Documents longer than the model (issue 14), black-box against the built binary.

`embedstream embed --chunk` against the sentence-transformers reference
(tests/fixtures/chunking, scripts/parity/make_chunk_fixtures.py), sentence
boundaries, the unchanged record of a text that fits, truncation without
--chunk; `embedstream serve`: POST /documents -> chunks -> search with
group_by parent/none, re-POST replacing the chunks, DELETE (search, GET, SSE,
/stats), on_overflow reject/truncate from a config file, and the body limits
of /documents (16 MiB) versus /messages (1 MiB).
"""
import http.client
import json
import math
import pathlib
import random
import re
import socket
import threading
import time
import urllib.parse

import pytest

from service import Service, SseReader

REPO = pathlib.Path(__file__).resolve().parents[2]
CHUNK_FIXTURE = REPO / "tests/fixtures/chunking/chunks.jsonl"
MODEL_TOKENS = 256
OUTPUT_FIELDS = {"id", "original_text", "embedding", "model_name", "timestamp",
                 "embedding_dimension", "processing_timestamp", "input_timestamp", "input_source"}
CHUNK_FIELDS = {"parent_id", "chunk_index", "chunk_count", "char_start", "char_end"}
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")

FACT = "The lighthouse keeper's cat was named Bartholomew Quince."
QUESTION = "What was the name of the lighthouse keeper's cat?"
FACT_CHUNK = 8  # the 9th chunk


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def records(stdout: bytes):
    # split("\n"), not splitlines(): U+2028 and U+0085 inside texts are not line breaks.
    return [json.loads(l) for l in stdout.decode("utf-8").split("\n") if l.strip()]


def jsonl(items):
    """[(id, text)] -> stdin bytes for `embed`."""
    return "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in items).encode()


def embed(run, items, *args):
    p = run(["embed", *args], jsonl(items))
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return records(p.stdout)


def by_parent(recs):
    out = {}
    for r in recs:
        out.setdefault(r.get("parent_id", r["id"]), []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.get("chunk_index", 0))
    return out


def fixture_cases():
    lines = CHUNK_FIXTURE.read_text(encoding="utf-8").split("\n")
    return [json.loads(l) for l in lines if l.strip()]


def check_chunk_records(name, text, recs):
    """What every chunk of one text must satisfy, whatever the options."""
    n = len(recs)
    assert n >= 2, f"{name}: expected several chunks, got {n}"
    for i, r in enumerate(recs):
        assert set(r) == OUTPUT_FIELDS | CHUNK_FIELDS, (name, i, sorted(r))
        assert r["id"] == f"{name}#{i}" and r["parent_id"] == name, (name, i, r["id"], r["parent_id"])
        assert r["chunk_index"] == i and r["chunk_count"] == n, (name, i, r["chunk_index"], r["chunk_count"])
        s, e = r["char_start"], r["char_end"]
        assert 0 <= s < e <= len(text), (name, i, s, e, len(text))
        assert text[s:e] == r["original_text"], f"{name}#{i}: text[char_start:char_end] != original_text"
        assert r["original_text"].strip(), f"{name}#{i}: empty chunk"
        assert r["embedding_dimension"] == 384 == len(r["embedding"])
        assert abs(sum(x * x for x in r["embedding"]) - 1.0) < 1e-5
    # In order, and together they cover every non-whitespace character of the text.
    assert text[:recs[0]["char_start"]].strip() == "", f"{name}: text before the first chunk is lost"
    assert text[recs[-1]["char_end"]:].strip() == "", f"{name}: text after the last chunk is lost"
    for a, b in zip(recs, recs[1:]):
        assert a["char_start"] < b["char_start"] and a["char_end"] < b["char_end"], (name, a["id"], b["id"])
        if b["char_start"] > a["char_end"]:
            gap = text[a["char_end"]:b["char_start"]]
            assert gap.strip() == "", f"{name}: {gap[:80]!r} between {a['id']} and {b['id']} is in no chunk"


def wait_until(fetch, pred, timeout=300, what="condition", interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fetch()
        if pred(last):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last: {str(last)[:2000]}")


def get_json(svc, path):
    status, body = svc.request("GET", path)
    return status, (json.loads(body) if body else None)


def post_document(svc, text, content_type="text/plain", **params):
    query = urllib.parse.urlencode(params)
    return svc.request("POST", "/documents" + (f"?{query}" if query else ""), text.encode("utf-8"),
                       {"Content-Type": content_type})


def search(svc, query, limit=10, group_by=None):
    req = {"query": query, "limit": limit}
    if group_by is not None:
        req["group_by"] = group_by
    return svc.post("/embeddings/search", req)["results"]


def wait_embedded(svc, doc_id, total=None, text=None, timeout=300):
    """GET /messages/{id} until status embedded and (for chunked ones) embedded == total."""
    def ok(res):
        status, m = res
        if status != 200 or m["status"] != "embedded":
            return False
        if text is not None and m["text"] != text:
            return False
        if total is None:
            return "chunks" not in m
        return m.get("chunks") == {"embedded": total, "total": total}
    return wait_until(lambda: get_json(svc, f"/messages/{doc_id}"), ok, timeout=timeout,
                      what=f"{doc_id} embedded")[1]


def raw_post(port, path, content_type, body: bytes, timeout=60):
    """POST over a raw socket; (status, body). The server may answer before reading the body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head + body)
        except OSError:
            pass  # answered (413) before reading the whole body: read that answer
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    header, _, payload = data.partition(b"\r\n\r\n")
    assert header.startswith(b"HTTP/1.1 "), data[:200]
    return int(header.split(b" ")[1]), payload.decode(errors="replace")


@pytest.fixture
def serve(binary, model_dir, tmp_path):
    """serve(*args, name=...) starts a ready `embedstream serve`; all stopped at the end."""
    started = []

    def _serve(*args, name="serve"):
        svc = Service(binary, model_dir, ["--data-dir", str(tmp_path / f"{name}.data"), *args],
                      tmp_path / f"{name}.log")
        started.append(svc)
        svc.wait_ready()
        return svc

    yield _serve
    for svc in started:
        if svc.proc.poll() is None:
            svc.stop()


# ---------------------------------------------------------------------------
# texts
# ---------------------------------------------------------------------------

SUBJECTS = ["The finance team", "Our new intern", "The city council", "A software engineer",
            "The marathon runner", "The pastry chef", "The chemistry teacher", "The train conductor",
            "The museum curator", "A data analyst", "The football coach", "The architect from Zürich"]
VERBS = ["reviewed", "prepared", "presented", "rewrote", "organised", "discussed", "measured",
         "planned", "checked", "compared", "summarised", "printed"]
OBJECTS = ["the quarterly budget report", "a new onboarding checklist", "the parking regulations",
           "the database migration scripts", "the spring training schedule", "a lemon tart recipe",
           "the titration experiment", "the winter timetable", "the textile exhibition notes",
           "the customer churn dashboard", "the stadium seating plan", "the café renovation drawings"]
TAILS = ["before the Monday meeting", "during a long afternoon", "with two colleagues",
         "for the third time this year", "after lunch on Thursday", "in the main office",
         "while the printer was broken", "ahead of the deadline", "on a naïve first attempt"]


def filler_sentences(n, seed):
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)} "
            f"(entry {i + 1})." for i in range(n)]


def chunk_spans(run, doc_id, text):
    recs = by_parent(embed(run, [(doc_id, text)], "--chunk"))[doc_id]
    return [(r["char_start"], r["char_end"]) for r in recs]


@pytest.fixture(scope="module")
def lighthouse_doc(run):
    """(text, spans): >= 12 chunks; FACT lies in chunk FACT_CHUNK and in no other (per embed --chunk)."""
    doc_id = "doc-lighthouse"
    sentences = filler_sentences(230, seed=1409)
    text0 = " ".join(sentences)
    spans0 = chunk_spans(run, doc_id, text0)
    assert len(spans0) >= 13, len(spans0)
    # Sentences wholly inside chunk 8 and outside the overlaps with chunks 7 and 9.
    lo, hi = spans0[FACT_CHUNK - 1][1], spans0[FACT_CHUNK + 1][0]
    starts, pos = [], 0
    for s in sentences:
        starts.append(pos)
        pos += len(s) + 1
    inside = [i for i, st in enumerate(starts) if st >= lo and st + len(sentences[i]) <= hi]
    assert inside, (lo, hi)
    order = sorted(inside, key=lambda i: abs(i - inside[len(inside) // 2]))
    for i in order:  # insert after sentence i; keep the first placement that works
        text = " ".join(sentences[:i + 1] + [FACT] + sentences[i + 1:])
        spans = chunk_spans(run, doc_id, text)
        holders = [k for k, (s, e) in enumerate(spans) if FACT in text[s:e]]
        partial = [k for k, (s, e) in enumerate(spans) if "Bartholomew" in text[s:e] or "lighthouse" in text[s:e]]
        if len(spans) >= 12 and holders == [FACT_CHUNK] and partial == [FACT_CHUNK]:
            return text, spans
    raise AssertionError("could not place the fact in chunk 8 only")


# ---------------------------------------------------------------------------
# embed --chunk
# ---------------------------------------------------------------------------

def test_chunks_match_the_sentence_transformers_reference(run):
    cases = fixture_cases()
    assert len(cases) == 20
    out = by_parent(embed(run, [(c["name"], c["text"]) for c in cases], "--chunk"))
    assert sorted(out) == sorted(c["name"] for c in cases)
    for c in cases:
        name, text, want = c["name"], c["text"], c["chunks"]
        recs = out[name]
        assert len(recs) == len(want) >= 3, (name, len(recs), len(want))
        check_chunk_records(name, text, recs)
        got_spans = [(r["char_start"], r["char_end"]) for r in recs]
        assert got_spans == [(w["char_start"], w["char_end"]) for w in want], name
        for r, w in zip(recs, want):
            # The reference's own token count of that chunk text fits the model.
            assert w["tokens"] <= MODEL_TOKENS, (r["id"], w["tokens"])
            cos = cosine(r["embedding"], w["embedding"])
            assert cos >= 0.99999, (r["id"], cos)


def test_chunk_tokens_option_gives_chunks_that_fit_and_embed_alike(run):
    """--chunk-tokens 64, sentence and tokens split: every chunk text embedded on its
    own with --max-seq-length 64 is not truncated and has the same vector."""
    cases = {c["name"]: c["text"] for c in fixture_cases()}
    picked = [(n, cases[n]) for n in ("english_prose_medium", "french", "chinese", "markdown_guide",
                                     "english_run_on_sentence")]
    default_counts = {c["name"]: len(c["chunks"]) for c in fixture_cases()}
    for split in ("sentence", "tokens"):
        out = by_parent(embed(run, picked, "--chunk", "--chunk-tokens", "64", "--chunk-overlap", "8",
                              "--chunk-split", split))
        for name, text in picked:
            recs = out[name]
            check_chunk_records(name, text, recs)
            assert len(recs) > 2 * default_counts[name], (split, name, len(recs), default_counts[name])
            again = embed(run, [(r["id"], r["original_text"]) for r in recs], "--max-seq-length", "64")
            assert [a["id"] for a in again] == [r["id"] for r in recs]
            for r, a in zip(recs, again):
                assert "truncated" not in a, f"{split} {r['id']}: chunk text is over 64 tokens"
                assert cosine(r["embedding"], a["embedding"]) >= 0.99999, (split, r["id"])


def test_sentence_split_never_cuts_a_sentence(run):
    rng = random.Random(77)
    pool = filler_sentences(60, seed=5) + [
        "Why did the committee wait so long?", "Nobody expected the storm to arrive so early!",
        "The results, however, were clear.", "She laughed.", "It rained all week in the hills."]
    text = " ".join(rng.choice(pool) for _ in range(260))
    sentences = SENTENCE_SPLIT.split(text)
    starts, ends, pos = set(), set(), 0
    for s in sentences:
        pos = text.index(s, pos)
        starts.add(pos)
        ends.add(pos + len(s))
        pos += len(s)
    for args in ([], ["--chunk-tokens", "96", "--chunk-overlap", "16"]):
        recs = by_parent(embed(run, [("sent", text)], "--chunk", *args))["sent"]
        check_chunk_records("sent", text, recs)
        assert len(recs) >= 4, (args, len(recs))
        for r in recs:
            assert r["char_start"] in starts, (args, r["id"], text[r["char_start"]:r["char_start"] + 60])
            assert r["char_end"] in ends, (args, r["id"], text[max(0, r["char_end"] - 60):r["char_end"]])


def test_text_that_fits_is_the_old_record_and_long_text_without_chunk_is_truncated(run):
    parity = {}
    for line in (REPO / "tests/fixtures/parity/parity.jsonl").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            c = json.loads(line)
            parity[c["name"]] = c
    short = "A short text that fits the model easily."
    exactly = parity["exactly_256_tokens"]["text"]   # 254 pieces + [CLS]/[SEP]
    over = parity["exactly_257_tokens"]["text"]      # one piece too many
    long_text = parity["english_1200_words"]["text"]
    items = [("short", short), ("exact", exactly), ("over", over), ("long", long_text)]

    chunked = by_parent(embed(run, items, "--chunk"))
    for name, text in (("short", short), ("exact", exactly)):
        [r] = chunked[name]
        assert set(r) == OUTPUT_FIELDS, (name, sorted(r))
        assert r["id"] == name and r["original_text"] == text
    assert cosine(chunked["exact"][0]["embedding"], parity["exactly_256_tokens"]["embedding"]) >= 0.99999
    assert len(chunked["over"]) == 2, "257 tokens need two chunks"
    check_chunk_records("over", over, chunked["over"])
    check_chunk_records("long", long_text, chunked["long"])

    plain = {r["id"]: r for r in embed(run, items)}
    assert sorted(plain) == ["exact", "long", "over", "short"], "one record per text without --chunk"
    for name in ("short", "exact"):
        assert set(plain[name]) == OUTPUT_FIELDS, (name, sorted(plain[name]))
    for name, text, ref in (("long", long_text, "english_1200_words"), ("over", over, "exactly_257_tokens")):
        r = plain[name]
        # Truncated as sentence-transformers does; the record stays seed 000's
        # (the truncation is counted and logged, not a field).
        assert set(r) == OUTPUT_FIELDS, sorted(r)
        assert r["original_text"] == text
        # The vector is sentence-transformers' of the text (it truncates the same way).
        assert cosine(r["embedding"], parity[ref]["embedding"]) >= 0.99999, name


# ---------------------------------------------------------------------------
# serve: POST /documents, search, re-POST, DELETE
# ---------------------------------------------------------------------------

def test_document_chunks_are_searchable_and_the_best_chunk_holds_the_fact(serve, lighthouse_doc):
    text, spans = lighthouse_doc
    doc_id = "doc-lighthouse"
    svc = serve()
    status, body = post_document(svc, text, "text/plain", id=doc_id, user_id="keeper",
                                 metadata=json.dumps({"kind": "story"}))
    assert status == 202, body
    reply = json.loads(body)
    assert reply == {"id": doc_id, "status": "pending", "created": True, "chunks": len(spans)}, reply
    # A whole (unchunked) document through the JSON form, for contrast.
    short = "A short note about quarterly budgets and the finance team."
    status, body = svc.request("POST", "/documents", {"id": "doc-short", "text": short,
                                                     "metadata": {"kind": "note"}})
    assert status == 202, body
    assert json.loads(body)["chunks"] == 1

    doc = wait_embedded(svc, doc_id, total=len(spans))
    assert doc["text"] == text and doc["metadata"]["kind"] == "story"
    wait_embedded(svc, "doc-short")
    stats = svc.stats()
    assert stats["chunked"] == 1 and stats["chunks"] == len(spans), {k: stats.get(k) for k in ("chunked", "chunks")}

    hits = search(svc, QUESTION, limit=5)
    top = hits[0]
    assert top["parent_id"] == doc_id and top["chunk_index"] == FACT_CHUNK, top
    assert top["id"] == f"{doc_id}#{FACT_CHUNK}" and top["chunk_count"] == len(spans)
    assert text[top["char_start"]:top["char_end"]] == top["text"]
    assert (top["char_start"], top["char_end"]) == spans[FACT_CHUNK]
    assert FACT in top["text"]
    assert top["metadata"]["kind"] == "story"
    # group_by parent (the default): one hit per document.
    parents = [h.get("parent_id", h["id"]) for h in hits]
    assert len(parents) == len(set(parents)) and set(parents) == {doc_id, "doc-short"}, parents
    whole = next(h for h in hits if h["id"] == "doc-short")
    assert "parent_id" not in whole and whole["text"] == short

    # group_by none: the chunks on their own, several of the same document.
    hits = search(svc, QUESTION, limit=10, group_by="none")
    mine = [h for h in hits if h.get("parent_id") == doc_id]
    assert len(mine) >= 5 and hits[0]["id"] == f"{doc_id}#{FACT_CHUNK}", [h["id"] for h in hits]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in search(svc, "finance team budget report", limit=100, group_by="none"):
        if h.get("parent_id") == doc_id:
            assert h["id"] == f"{doc_id}#{h['chunk_index']}"
            assert (h["char_start"], h["char_end"]) == spans[h["chunk_index"]], h["id"]
            assert text[h["char_start"]:h["char_end"]] == h["text"], h["id"]


def test_repost_replaces_chunks_and_delete_removes_the_document(serve):
    cases = {c["name"]: c for c in fixture_cases()}
    long_case, short_case = cases["english_prose_long"], cases["english_prose_short"]
    assert len(long_case["chunks"]) > 3 and len(short_case["chunks"]) == 3
    doc_id = "doc-replace"
    svc = serve()
    status, body = post_document(svc, long_case["text"], "text/markdown; charset=utf-8", id=doc_id)
    assert status == 202 and json.loads(body)["chunks"] == len(long_case["chunks"]), body
    wait_embedded(svc, doc_id, total=len(long_case["chunks"]))
    before = {h["id"] for h in search(svc, "glaciers and honeybees", limit=100, group_by="none")
              if h.get("parent_id") == doc_id}
    assert before == {f"{doc_id}#{i}" for i in range(len(long_case["chunks"]))}, sorted(before)

    # Same id, shorter text: 3 chunks replace the old ones.
    status, body = post_document(svc, short_case["text"], "text/plain", id=doc_id)
    assert status == 202, body
    reply = json.loads(body)
    assert reply["id"] == doc_id and reply["created"] is False and reply["chunks"] == 3, reply
    wait_embedded(svc, doc_id, total=3, text=short_case["text"])
    hits = search(svc, "glaciers and honeybees", limit=100, group_by="none")
    after = [h for h in hits if h.get("parent_id") == doc_id or h["id"].startswith(doc_id)]
    assert sorted(h["id"] for h in after) == [f"{doc_id}#0", f"{doc_id}#1", f"{doc_id}#2"], \
        sorted(h["id"] for h in after)
    for h in after:
        i = h["chunk_index"]
        w = short_case["chunks"][i]
        assert h["chunk_count"] == 3 and (h["char_start"], h["char_end"]) == (w["char_start"], w["char_end"])
        assert short_case["text"][h["char_start"]:h["char_end"]] == h["text"]

    deleted_before = svc.stats()["deleted"]
    sse = SseReader(svc.port, "?key=" + doc_id)
    try:
        status, body = svc.request("DELETE", f"/messages/{doc_id}")
        assert status == 202, body
        assert json.loads(body) == {"id": doc_id, "status": "deleted", "existed": True}
        # Gone at once: no GET, no search hit of it or of its chunks.
        assert svc.request("GET", f"/messages/{doc_id}")[0] == 404
        for group_by in ("parent", "none"):
            hits = search(svc, "glaciers and honeybees", limit=100, group_by=group_by)
            assert not [h["id"] for h in hits if h.get("parent_id") == doc_id or h["id"].startswith(doc_id)], \
                (group_by, [h["id"] for h in hits])
        events = sse.wait_for(lambda evs: any(e.get("event") == "message_deleted" for e in evs))
        ev = next(e for e in events if e.get("event") == "message_deleted")
        data = json.loads(ev["data"])
        assert data["type"] == "message_deleted" and data["message_id"] == doc_id, data
    finally:
        sse.close()
    assert svc.stats()["deleted"] >= deleted_before + 1

    status, body = svc.request("DELETE", "/messages/never-was-here")
    assert status == 202, body
    assert json.loads(body) == {"id": "never-was-here", "status": "deleted", "existed": False}
    assert svc.request("GET", f"/messages/{doc_id}")[0] == 404


# ---------------------------------------------------------------------------
# serve: on_overflow from a config file, body limits
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["top_level", "per_source"])
def test_on_overflow_reject_refuses_long_documents(serve, tmp_path, where):
    cfg = tmp_path / f"reject-{where}.yaml"
    if where == "top_level":
        cfg.write_text("chunking:\n  on_overflow: reject\n")
    else:
        cfg.write_text("sources:\n  http:\n    chunking:\n      on_overflow: reject\n")
    svc = serve("--config", str(cfg), name=f"reject-{where}")
    long_text = fixture_cases()[1]["text"]
    status, body = post_document(svc, long_text, "text/plain", id="too-long")
    assert status == 400, body
    assert json.loads(body)["error"] == "too_long", body
    assert svc.request("GET", "/messages/too-long")[0] == 404
    # POST /messages refuses it before the 202 too (not a 202 and a dead letter).
    status, body = svc.request("POST", "/messages", {"id": "too-long-msg", "message": long_text})
    assert status == 400 and json.loads(body)["error"] == "too_long", (status, body)
    assert svc.request("GET", "/messages/too-long-msg")[0] == 404
    status, body = post_document(svc, "A short document that fits.", "text/plain", id="fits")
    assert status == 202, body
    assert json.loads(body)["chunks"] == 1
    wait_embedded(svc, "fits")
    stats = svc.stats()
    counters = (stats["rejected_too_long"], stats["sources"]["http"]["rejected_too_long"])
    assert counters == (2, 2), f"/stats rejected_too_long (top level, sources.http) after two 400 too_long: {counters}"


def test_on_overflow_truncate_embeds_one_record(serve, tmp_path):
    cfg = tmp_path / "truncate.yaml"
    cfg.write_text("chunking:\n  on_overflow: truncate\n")
    svc = serve("--config", str(cfg), name="truncate")
    long_text = fixture_cases()[1]["text"]
    status, body = post_document(svc, long_text, "text/plain", id="cut")
    assert status == 202, body
    assert json.loads(body)["chunks"] == 1
    wait_embedded(svc, "cut", text=long_text)
    hits = search(svc, "anything at all", limit=10, group_by="none")
    assert [h["id"] for h in hits] == ["cut"], hits
    stats = svc.stats()
    assert stats["truncated"] == 1 and stats["chunked"] == 0, {k: stats.get(k) for k in ("truncated", "chunked")}


def big_text(mib=3):
    sentences = filler_sentences(400, seed=3)
    text = ""
    while len(text.encode()) < mib * 1024 * 1024:
        text += " ".join(sentences) + "\n\n"
    return text


def test_documents_take_bodies_over_1mib_and_messages_do_not(serve):
    svc = serve()
    try:
        text = big_text(3)
        status, reply = raw_post(svc.port, "/documents?id=big-doc", "text/plain", text.encode())
        assert status == 202, reply[:500]
        n = json.loads(reply)["chunks"]
        assert n > 1000, n
        status, doc = get_json(svc, "/messages/big-doc")
        assert status == 200 and doc["text"] == text and doc["chunks"]["total"] == n, \
            (status, doc and doc.get("chunks"))

        status, reply = raw_post(svc.port, "/messages", "application/json",
                                 json.dumps({"id": "big-msg", "message": text}).encode())
        assert status == 413, reply[:500]
        assert "error" in json.loads(reply)
        assert svc.request("GET", "/messages/big-msg")[0] == 404

        # Over http.max_document_bytes (16 MiB): 413 on /documents too.
        status, reply = raw_post(svc.port, "/documents?id=huge-doc", "text/plain", b"x " * (17 * 512 * 1024))
        assert status == 413, reply[:500]
        assert svc.request("GET", "/messages/huge-doc")[0] == 404
    finally:
        svc.kill9()  # not SIGTERM: no waiting for thousands of chunks (minutes on 2 cores)


def test_a_big_document_does_not_stall_search_or_other_messages(serve):
    """While a 3 MiB document (~2,700 chunks, minutes of encoding on 2 cores) is being
    embedded, a search and a short message still go through within seconds: the
    encoder's batches stay within the token budget, so others get their turn."""
    svc = serve()
    try:
        status, reply = raw_post(svc.port, "/documents?id=big-doc", "text/plain", big_text(3).encode())
        assert status == 202, reply[:500]
        n = json.loads(reply)["chunks"]
        svc.post("/messages", {"id": "small", "message": "A small message about lemon tarts."})
        # Searches one after another for 25 s: each must answer within 15 s (normally
        # milliseconds; one forward pass of the token budget takes about a second here).
        t_end, took = time.time() + 25, []
        while time.time() < t_end:
            t0 = time.time()
            try:
                status, body = svc.request("POST", "/embeddings/search", {"query": "lemon tart", "limit": 3},
                                           timeout=15)
            except OSError as e:  # timed out
                status, body = None, f"no answer within 15 s ({e!r})"
            took.append(round(time.time() - t0, 2))
            assert status == 200, f"search {len(took)} while big-doc is embedded: {body}; latencies {took}"
            time.sleep(0.5)
        small = wait_until(lambda: get_json(svc, "/messages/small")[1]["status"], lambda s: s == "embedded",
                           timeout=60, what="small message embedded while big-doc is embedded")
        big = get_json(svc, "/messages/big-doc")[1]
        assert small == "embedded" and big["chunks"]["total"] == n
    finally:
        svc.kill9()  # not SIGTERM: no waiting for thousands of chunks (minutes on 2 cores)
