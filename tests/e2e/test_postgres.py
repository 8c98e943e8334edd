"""PostgreSQL + pgvector CQRS, black-box against the built binary and a real
PostgreSQL 16 + pgvector (the `pg_server` fixture, scripts/pg.sh).

What these tests prove:

* `embedstream pg install` creates the seed 001 schema (text_messages,
  message_embeddings with vector(384), text_md5, an HNSW cosine index, a
  NOTIFY trigger) and is idempotent; `pg status` reports pending/embedded.
* `serve --pg-source` embeds every row written with plain SQL (catch-up scan),
  with vectors equal to `embedstream embed`'s (cosine > 0.99999), the model's
  name and text_md5 = md5(message); an UPDATE of a text re-embeds exactly that
  row and nothing else; an INSERT while serve runs is embedded within seconds
  even with a 60 s poll interval (LISTEN/NOTIFY).
* Two serve processes on one table share the work (SKIP LOCKED): every row
  embedded exactly once, both did some.
* A PostgreSQL restart mid-run: serve reconnects and finishes, nothing lost.
* `--search-backend postgres` returns the same top hits as the embedded store.
* Hostile strings (SQL injection, dollar quotes, backslashes, control
  characters, unicode, 10 kB) are stored and searched verbatim, the schema
  survives, vectors equal embed's.
* Rows of another model are left alone by serve and re-embedded by
  `embedstream pg reembed`.
* SIGTERM mid-run exits 0, kill -9 mid-run loses nothing (a later serve
  finishes the rest).
* A table of the user's own (bigint ids, other column names), configured in
  YAML only, is installed, embedded and searched.

Every test starts from freshly dropped tables (the server is session-wide).
"""
import json
import math
import random
import time
import uuid

import pytest

from pg_server import PgServerError, pg_server  # noqa: F401  (pytest fixture)
from service import Service

TEXT = "text_messages"
EMB = "message_embeddings"

WORDS = ("stream vector search kafka message event order customer product price latency "
         "throughput model embedding sentence database index query result user session "
         "machine learning network server replica partition offset consumer producer "
         "river mountain forest ocean city village garden kitchen bread coffee music "
         "guitar violin painting museum library school teacher student doctor hospital "
         "train station airport ticket holiday summer winter autumn spring weather rain "
         "snow wind storm sunshine football tennis runner bicycle marathon goal team "
         "election parliament budget tax market stock bank loan interest inflation "
         "quickly slowly carefully never always often beautiful broken ancient modern "
         "green red blue yellow small large heavy light warm cold bright dark quiet "
         "build write read open close carry follow explain discover protect repair").split()

# Sentences with a clear topic (search tests; also make the corpus less uniform).
TOPICAL = [
    "Machine learning models learn patterns from large amounts of training data.",
    "The soup needs more salt and a little pepper.",
    "Fresh bread from the bakery smells wonderful in the morning.",
    "The striker scored twice in the second half of the match.",
    "She runs ten kilometres every Sunday along the river.",
    "The night train to Vienna leaves at ten past eleven.",
    "Our flight was delayed by fog at the airport.",
    "The central bank raised interest rates to fight inflation.",
    "Quarks are held together by the strong nuclear force.",
    "Water the tomato plants in the garden every evening.",
    "The orchestra played Beethoven's fifth symphony last night.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
]

QUERIES = ["artificial intelligence and neural networks", "cooking dinner recipe",
           "football game goals", "travelling by rail in Europe", "economy and money",
           "particle physics", "gardening vegetables", "classical music concert",
           "plants and sunlight", "weather storm rain wind", "database query index"]

HOSTILE = [
    "'); DROP TABLE text_messages; --",
    "Robert'); DELETE FROM message_embeddings;--",
    "$$ $q$ \\ \t tab\nnewline",
    "naïve 日本語 🚀",
    "1; TRUNCATE message_embeddings CASCADE; SELECT pg_sleep(0) --",
    "\\x00 \\\\ '' \"\" ` ; /* comment */ -- end",
    "E'\\\\' || chr(39) || $body$ ${name} %s {0} :var :'var' \\set ON_ERROR_STOP",
    "line one\r\nline two\rline three\u2028line four\u0085end",
    "  leading and trailing spaces  ",
    "tab\tseparated\tcolumns|pipe|separated",
]


# ---------------------------------------------------------------- helpers
def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_rows(n, seed):
    """n (uuid, text) pairs: random sentences of 3-40 words, a few topical ones, unique texts."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        if len(rows) % 97 == 0:
            text = f"{rng.choice(TOPICAL)} ({len(rows)})"
        else:
            text = sentence(rng, rng.randint(3, 40))
        if text in seen:
            continue
        seen.add(text)
        rows.append((str(uuid.UUID(int=rng.getrandbits(128), version=4)), text))
    return rows


def sql_str(s):
    """A SQL string literal (standard_conforming_strings is on: only ' needs doubling)."""
    assert "\x00" not in s
    return "'" + s.replace("'", "''") + "'"


def sql_hex(s):
    """A SQL expression for any text, immune to quoting: convert_from(decode(hex))."""
    return f"convert_from(decode('{s.encode('utf-8').hex()}', 'hex'), 'UTF8')"


def ids_array(ids):
    return "ARRAY[" + ",".join(f"'{i}'" for i in ids) + "]::uuid[]"


def insert_rows(pg, rows, metadata=None, hex_literals=False, table=TEXT):
    """INSERT (id, message[, metadata]) rows in one transaction."""
    lit = sql_hex if hex_literals else sql_str
    values = []
    for mid, text in rows:
        md = (metadata or {}).get(mid)
        md_sql = "NULL" if md is None else f"{lit(json.dumps(md))}::jsonb"
        values.append(f"('{mid}', {lit(text)}, {md_sql})")
    stmts = ["BEGIN;"]
    for i in range(0, len(values), 1000):
        stmts.append(f"INSERT INTO {table} (id, message, metadata) VALUES "
                     + ",\n".join(values[i:i + 1000]) + ";")
    stmts.append("COMMIT;")
    pg.psql("\n".join(stmts), timeout=300)


def current_count(pg):
    """Rows whose embedding is current (exists and text_md5 = md5(message))."""
    return int(pg.psql(f"SELECT count(*) FROM {TEXT} t JOIN {EMB} e USING (id) "
                       "WHERE e.text_md5 = md5(t.message)"))


def count(pg, table):
    return int(pg.psql(f"SELECT count(*) FROM {table}"))


def pg_vectors(pg, ids):
    """{id: [384 floats]} from message_embeddings (pgvector text form "[..]")."""
    out = {}
    for line in pg.psql(f"SELECT id, embedding::text FROM {EMB} WHERE id = ANY({ids_array(ids)})"
                        ).split("\n"):
        if line:
            mid, vec = line.split("|", 1)
            out[mid] = json.loads(vec)
    return out


def pg_column(pg, column, ids, table=EMB):
    """{id: value text} for one column (values must not contain newlines)."""
    out = {}
    for line in pg.psql(f"SELECT id, {column} FROM {table} WHERE id = ANY({ids_array(ids)})"
                        ).split("\n"):
        if line:
            mid, val = line.split("|", 1)
            out[mid] = val
    return out


def pg_messages(pg, ids):
    """{id: message} read byte for byte (hex over psql, so newlines and | survive)."""
    hexes = pg_column(pg, "encode(convert_to(message, 'UTF8'), 'hex')", ids, table=TEXT)
    return {mid: bytes.fromhex(h).decode("utf-8") for mid, h in hexes.items()}


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def embed_ref(run, texts):
    """({id: vector}, model_name) from `embedstream embed --chunk` for {id: text}: the
    text's vector, or for a text over the model's 256 tokens its first chunk's (the
    vector its message_embeddings row keeps; its chunks are in <embeddings>_chunks)."""
    stdin = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts.items()).encode()
    p = run(["embed", "--chunk"], stdin)
    assert p.returncode == 0, p.stderr.decode()
    recs = [json.loads(l) for l in p.stdout.decode("utf-8").split("\n") if l.strip()]
    ref = {r.get("parent_id", r["id"]): r["embedding"] for r in recs
           if r.get("chunk_index", 0) == 0}
    assert set(ref) == set(texts)
    return ref, recs[0]["model_name"]


def assert_vectors_match(pg, run, texts, what=""):
    """The stored vectors of {id: text} equal embed's (cosine > 0.99999); returns model name."""
    ref, model = embed_ref(run, texts)
    got = pg_vectors(pg, list(texts))
    assert set(got) == set(texts), f"{what}: missing embeddings {set(texts) - set(got)}"
    for mid, text in texts.items():
        assert len(got[mid]) == 384
        c = cosine(got[mid], ref[mid])
        assert c > 0.99999, f"{what}: id {mid} cosine {c} for text {text[:80]!r}"
    return model


def wait_until(get, ok, timeout, what, svc=None, interval=0.5):
    """Poll get() until ok(value); returns that value, else fails with the last value seen
    (and serve's log tail)."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = get()
            if ok(last):
                return last
        except (OSError, ValueError, KeyError, TypeError, PgServerError) as e:
            last = f"{type(e).__name__}: {e} (last value {last!r})"
        if svc is not None and svc.proc.poll() is not None:
            raise AssertionError(f"{what}: serve exited with {svc.proc.returncode}; "
                                 f"last {last!r}\n{svc.tail(60)}")
        if time.time() >= deadline:
            tail = f"\n--- serve log tail ---\n{svc.tail(60)}" if svc is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last {last!r}{tail}")
        time.sleep(interval)


def pg_status_of(svc):
    return json.loads(svc.get("/status")[1])["postgres"]


def source_stats(svc):
    return svc.stats()["postgres_source"]


def wait_all_embedded(pg, svc, n, timeout=240):
    """All n rows have a current embedding and /status says nothing is pending."""
    t0 = time.time()
    wait_until(lambda: current_count(pg), lambda c: c == n, timeout,
               f"{n} current embeddings (text_md5 = md5(message))", svc, interval=1.0)
    took = time.time() - t0
    wait_until(lambda: pg_status_of(svc), lambda s: s["pending"] == 0 and s["connected"],
               30, "/status postgres.pending == 0 and connected", svc)
    return took


def pg_cli(run, pg, *args):
    """`embedstream pg ...` against the test server; (rc, stdout, stderr)."""
    p = run(["pg", *args], env_extra=pg.env())
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def cli_json(stdout, key):
    """The JSON object printed on stdout that has `key` (the last such line)."""
    for line in reversed(stdout.strip().split("\n")):
        line = line.strip()
        if line.startswith("{"):
            obj = json.loads(line)
            if key in obj:
                return obj
    raise AssertionError(f"no JSON with {key!r} on stdout: {stdout!r}")


def pg_status_cli(run, pg):
    rc, out, err = pg_cli(run, pg, "status")
    assert rc == 0, f"pg status exited {rc}: {err}"
    return cli_json(out, "pending")


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def pg(pg_server, run):
    """The session server with freshly dropped tables and `pg install` run."""
    pg_server.psql(f"DROP TABLE IF EXISTS {EMB}, {EMB}_progress, {EMB}_dead_letters, {EMB}_chunks, "
                   f"{EMB}_deletes, {TEXT} CASCADE")
    rc, out, err = pg_cli(run, pg_server, "install")
    assert rc == 0, f"pg install exited {rc}:\n{out}\n{err}"
    return pg_server


@pytest.fixture
def serve(binary, model_dir, tmp_path, pg_server):
    """serve(*args, name=..., env=...) starts a ready serve pointed at the test PG via
    DATABASE_*; every one still running is stopped at the end."""
    started = []

    def _serve(*args, name="serve", env=None, ready=True):
        svc = Service(binary, model_dir, list(args), tmp_path / f"{name}.log",
                      env_extra=pg_server.env() if env is None else env)
        started.append(svc)
        if ready:
            svc.wait_ready()
        return svc

    yield _serve
    for svc in started:
        if svc.proc.poll() is None:
            svc.stop()


# ---------------------------------------------------------------- tests
def test_install_schema_and_idempotent(pg, run):
    rc, out, err = pg_cli(run, pg, "install")
    assert rc == 0, f"second pg install exited {rc}: {err}"
    cols = dict(line.split("|", 1) for line in pg.psql(
        f"SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
        f"JOIN pg_attribute a ON a.attrelid = '{EMB}'::regclass AND a.attname = c.column_name "
        f"WHERE c.table_name = '{EMB}'").split("\n"))
    assert cols.get("embedding") == "vector(384)", cols
    assert cols.get("id") == "uuid" and cols.get("text_md5") == "text", cols
    assert {"model_name", "metadata", "created_at"} <= set(cols), cols
    tcols = pg.psql(f"SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                    f"information_schema.columns WHERE table_name = '{TEXT}'").split(",")
    assert {"id", "message", "created_at", "processed_at", "metadata"} <= set(tcols), tcols
    idx = pg.psql(f"SELECT indexdef FROM pg_indexes WHERE tablename = '{EMB}'")
    assert "hnsw" in idx and "vector_cosine_ops" in idx, idx
    fk = pg.psql(f"SELECT confdeltype FROM pg_constraint WHERE conrelid = '{EMB}'::regclass "
                 f"AND contype = 'f' AND confrelid = '{TEXT}'::regclass")
    assert fk == "c", f"message_embeddings.id must reference text_messages ON DELETE CASCADE: {fk!r}"
    trig = int(pg.psql(f"SELECT count(*) FROM pg_trigger WHERE tgrelid = '{TEXT}'::regclass "
                       "AND NOT tgisinternal"))
    assert trig >= 1, "no NOTIFY trigger on text_messages"
    st = pg_status_cli(run, pg)
    assert st["pending"] == 0 and st["embedded"] == 0 and st["other_model"] == 0, st
    # Pending rows and the age of the oldest (created_at), without any serve.
    aged = make_rows(3, seed=11)
    insert_rows(pg, aged)
    pg.psql(f"UPDATE {TEXT} SET created_at = now() - interval '90 seconds' WHERE id = '{aged[0][0]}'")
    st = pg_status_cli(run, pg)
    assert st["pending"] == 3 and st["embedded"] == 0, st
    assert 90 <= st["oldest_pending_age_s"] < 150, st


def test_5000_rows_embedded_then_updates_reembed_exactly_those(pg, run, serve):
    rows = make_rows(5000, seed=101)
    texts = dict(rows)
    insert_rows(pg, rows)
    st = pg_status_cli(run, pg)
    assert st["pending"] == 5000 and st["embedded"] == 0, st
    assert st["oldest_pending_age_s"] >= 0, st

    svc = serve("--pg-source")
    took = wait_all_embedded(pg, svc, 5000)
    print(f"\n[pg] 5000 rows embedded from the table in {took:.1f} s "
          f"({5000 / took:.0f} rows/s incl. start)")
    assert count(pg, EMB) == 5000
    stats = wait_until(lambda: source_stats(svc), lambda s: s["embedded"] == 5000, 10,
                       "/stats postgres_source.embedded == 5000", svc)
    assert stats["connected"] is True and stats["errors"] == 0 and stats["batches"] > 0, stats
    assert stats["pending"] == 0, stats
    status = pg_status_of(svc)
    assert status["pending"] == 0 and status["embedded"] >= 5000 and status["connected"], status

    # Vectors equal `embedstream embed`'s; model name; text_md5 everywhere.
    rng = random.Random(5)
    sample = dict(rng.sample(rows, 20))
    model = assert_vectors_match(pg, run, sample, "sample of 20")
    names = pg.psql(f"SELECT model_name, count(*) FROM {EMB} GROUP BY 1")
    assert names == f"{model}|5000", names
    assert int(pg.psql(f"SELECT count(*) FROM {TEXT} t JOIN {EMB} e USING (id) "
                       "WHERE e.text_md5 = md5(t.message)")) == 5000
    st = pg_status_cli(run, pg)
    assert st["pending"] == 0 and st["embedded"] == 5000 and st["other_model"] == 0, st

    # UPDATE 10 texts: exactly those 10 are re-embedded.
    changed = dict((mid, f"Rewritten message {k}: {sentence(rng, rng.randint(5, 20))}")
                   for k, (mid, _) in enumerate(rng.sample(rows, 10)))
    before = dict(line.split("|", 1) for line in pg.psql(
        f"SELECT id, xmin::text || ' ' || md5(embedding::text) FROM {EMB}").split("\n"))
    pg.psql("\n".join(f"UPDATE {TEXT} SET message = {sql_str(t)} WHERE id = '{mid}';"
                      for mid, t in changed.items()))
    wait_until(lambda: current_count(pg), lambda c: c == 5000, 60,
               "the 10 updated rows re-embedded", svc)
    assert_vectors_match(pg, run, changed, "updated rows")
    after = dict(line.split("|", 1) for line in pg.psql(
        f"SELECT id, xmin::text || ' ' || md5(embedding::text) FROM {EMB}").split("\n"))
    rewritten = {mid for mid in after if after[mid] != before.get(mid)}
    assert rewritten == set(changed), (
        f"rows rewritten: {len(rewritten)}, expected exactly the 10 updated; "
        f"extra {sorted(rewritten - set(changed))[:5]}, missing {sorted(set(changed) - rewritten)}")
    md5s = pg_column(pg, "text_md5 = md5((SELECT message FROM text_messages t WHERE t.id = "
                          "message_embeddings.id))", list(changed))
    assert set(md5s.values()) == {"t"}, md5s
    wait_until(lambda: source_stats(svc), lambda s: s["embedded"] == 5010, 10,
               "/stats postgres_source.embedded == 5010 after 10 updates", svc)
    unchanged = {mid: t for mid, t in sample.items() if mid not in changed}
    assert_vectors_match(pg, run, unchanged, "rows not updated")
    assert svc.stop() == 0, svc.tail()


def test_notify_wakes_source_with_60s_poll_config_file(pg, run, serve, tmp_path, pg_server):
    """Connection and source settings from the YAML file (no DATABASE_* env); the poll
    is 60 s, so anything embedded within ~5 s came through LISTEN/NOTIFY."""
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"""postgres:
  host: {pg_server.host}
  port: {pg_server.port}
  database: {pg_server.dbname}
  user: {pg_server.user}
  password: {pg_server.password}
  text_table: {TEXT}
  embeddings_table: {EMB}
sources:
  postgres:
    enabled: true
    id_column: id
    text_column: message
    poll_interval_ms: 60000
""")
    seed_rows = make_rows(50, seed=202)
    insert_rows(pg, seed_rows)
    svc = serve("--config", str(cfg), env={})
    wait_all_embedded(pg, svc, 50, timeout=120)
    time.sleep(1)  # the catch-up is over: the source now waits on NOTIFY or the 60 s poll

    def embedded_within(ids, expect_n, what, limit=5.0):
        t0 = time.time()
        wait_until(lambda: current_count(pg), lambda c: c == expect_n, 15, what, svc,
                   interval=0.1)
        took = time.time() - t0
        assert took < limit, f"{what} took {took:.1f} s (> {limit} s): NOTIFY not working?\n{svc.tail()}"
        return took

    one = make_rows(1, seed=203)
    t_ins = time.time()
    insert_rows(pg, one)
    took = embedded_within([one[0][0]], 51, "a row INSERTed while serve runs")
    print(f"\n[pg] INSERT -> embedding via NOTIFY in {took:.2f} s "
          f"({time.time() - t_ins:.2f} s incl. psql)")
    assert_vectors_match(pg, run, dict(one), "notified insert")

    burst = make_rows(40, seed=204)
    insert_rows(pg, burst)
    embedded_within([m for m, _ in burst], 91, "40 rows INSERTed in one transaction")

    new_text = "A text changed by UPDATE is embedded again through the trigger."
    pg.psql(f"UPDATE {TEXT} SET message = {sql_str(new_text)} WHERE id = '{one[0][0]}'")
    new_md5 = pg.psql(f"SELECT md5({sql_str(new_text)})")
    t0 = time.time()
    wait_until(lambda: pg_column(pg, "text_md5", [one[0][0]]).get(one[0][0]),
               lambda m: m == new_md5, 5, "UPDATE re-embedded via NOTIFY", svc, interval=0.1)
    print(f"[pg] UPDATE -> new embedding via NOTIFY in {time.time() - t0:.2f} s")
    assert_vectors_match(pg, run, {one[0][0]: new_text}, "notified update")

    # An UPDATE of another column is no reason to embed again.
    mid = seed_rows[0][0]
    xmin = pg_column(pg, "xmin::text", [mid])[mid]
    pg.psql(f"UPDATE {TEXT} SET metadata = '{{\"touched\": true}}' WHERE id = '{mid}'")
    time.sleep(3)
    assert pg_column(pg, "xmin::text", [mid])[mid] == xmin, "metadata-only UPDATE re-embedded"

    # DELETE cascades to the embedding.
    pg.psql(f"DELETE FROM {TEXT} WHERE id = '{mid}'")
    assert pg.psql(f"SELECT count(*) FROM {EMB} WHERE id = '{mid}'") == "0"
    assert source_stats(svc)["errors"] == 0, svc.tail()
    assert svc.stop() == 0, svc.tail()


def test_two_workers_share_the_table(pg, run, serve):
    rows = make_rows(3000, seed=303)
    insert_rows(pg, rows)
    a = serve("--pg-source", name="a", ready=False)
    b = serve("--pg-source", name="b", ready=False)
    a.wait_ready()
    b.wait_ready()
    took = wait_all_embedded(pg, a, 3000)
    wait_until(lambda: pg_status_of(b), lambda s: s["pending"] == 0, 30, "b: pending 0", b)
    assert count(pg, EMB) == 3000

    sa, sb = wait_until(lambda: (source_stats(a), source_stats(b)),
                        lambda ab: ab[0]["embedded"] + ab[1]["embedded"] == 3000, 15,
                        "a.embedded + b.embedded == 3000 (each row embedded once)", a)
    print(f"\n[pg] two workers: 3000 rows in {took:.1f} s, a {sa['embedded']}, b {sb['embedded']}")
    assert sa["embedded"] > 0 and sb["embedded"] > 0, (sa, sb)
    assert sa["errors"] == 0 and sb["errors"] == 0, (sa, sb)
    assert_vectors_match(pg, run, dict(random.Random(3).sample(rows, 10)), "two workers")
    assert a.stop() == 0, a.tail()
    assert b.stop() == 0, b.tail()


def test_postgres_restart_mid_run_reconnects_and_finishes(pg, run, serve):
    rows = make_rows(4000, seed=404)
    insert_rows(pg, rows)
    svc = serve("--pg-source")
    wait_until(lambda: count(pg, EMB), lambda c: c >= 500, 120,
               ">= 500 embedded before the restart", svc, interval=0.2)
    t0 = time.time()
    try:
        pg.stop()
        time.sleep(2)  # serve sees the connection gone (and retries against nothing)
    finally:
        pg.start()
    print(f"\n[pg] PostgreSQL stopped and started in {time.time() - t0:.1f} s "
          f"with {count(pg, EMB)} rows embedded")
    took = wait_all_embedded(pg, svc, 4000, timeout=300)
    assert svc.proc.poll() is None, "serve stayed up"
    assert count(pg, EMB) == 4000
    stats = source_stats(svc)
    assert stats["reconnects"] >= 1, stats
    assert stats["connected"] is True and stats["pending"] == 0, stats
    assert stats["embedded"] >= 4000, stats
    print(f"[pg] finished {took:.1f} s after the restart; stats {stats}")
    assert_vectors_match(pg, run, dict(random.Random(4).sample(rows, 10)), "after restart")
    assert svc.stop() == 0, svc.tail()


def test_search_over_pgvector_matches_embedded_store(pg, run, serve):
    rng = random.Random(505)
    cats = ["ml", "food", "sport", "travel", "money", "science", "garden", "music"]
    items = []  # (id, text, metadata)
    for k, text in enumerate(TOPICAL):
        items.append((str(uuid.UUID(int=rng.getrandbits(128), version=4)), text,
                      {"category": cats[k % len(cats)], "topical": True}))
    for mid, text in make_rows(300 - len(items), seed=506):
        items.append((mid, text, {"category": rng.choice(cats), "topical": False}))

    # The embedded store: a plain serve, messages POSTed.
    plain = serve(name="embedded")
    for mid, text, md in items:
        plain.post("/messages", {"id": mid, "message": text, "metadata": md})
    wait_until(lambda: json.loads(plain.get("/status")[1]), lambda s: s["embedded"] == len(items),
               120, "embedded store: all embedded", plain)

    # The same rows in PostgreSQL, embedded by the source, searched through pgvector.
    insert_rows(pg, [(m, t) for m, t, _ in items], metadata={m: md for m, _, md in items})
    pgs = serve("--pg-source", "--search-backend", "postgres", name="pgsearch")
    wait_all_embedded(pg, pgs, len(items), timeout=120)

    by_id = {m: (t, md) for m, t, md in items}

    def differences(want, got):
        """Why two top-5 lists differ beyond ties (empty when they agree)."""
        if len(got) != len(want) or len(want) != 5:
            return [f"{len(want)} vs {len(got)} hits"]
        out = []
        for i, (w, g) in enumerate(zip(want, got)):
            if abs(w["score"] - g["score"]) >= 1e-4:
                out.append(f"rank {i}: score {w['score']:.5f} ({w['id']}) vs {g['score']:.5f} ({g['id']})")
            elif w["id"] != g["id"]:  # allowed only for a tie with a neighbour
                near = [want[j]["score"] for j in (i - 1, i + 1) if 0 <= j < len(want)]
                if not any(abs(w["score"] - s) < 1e-4 for s in near):
                    out.append(f"rank {i}: id {w['id']} vs {g['id']}")
        return out

    def exact_sql_top5(q):
        """The exact top 5 by a sequential scan in SQL (for the failure message)."""
        vec = json.dumps(embed_ref(run, {"q": q})[0]["q"])
        return pg.psql(f"SET enable_indexscan = off; SELECT id, round((1 - (embedding <=> "
                       f"'{vec}'))::numeric, 5) FROM {EMB} ORDER BY embedding <=> '{vec}' LIMIT 5")

    for q in QUERIES:
        body = {"query": q, "limit": 5}
        want = plain.post("/embeddings/search", body)["results"]
        got = pgs.post("/embeddings/search", body)["results"]
        diff = differences(want, got)
        assert not diff, (
            f"query {q!r}: pgvector search differs from the embedded store: {diff}\n"
            f"embedded: {[(h['id'], round(h['score'], 5)) for h in want]}\n"
            f"pgvector: {[(h['id'], round(h['score'], 5)) for h in got]}\n"
            f"exact top 5 in SQL (seq scan):\n{exact_sql_top5(q)}")
        for g in got:
            assert g["text"] == by_id[g["id"]][0], g
            assert g["metadata"] == by_id[g["id"]][1], g

    # A topical query finds its sentence first on both.
    res = pgs.post("/embeddings/search", {"query": "machine learning", "limit": 1})
    assert res["results"][0]["text"] == TOPICAL[0] and res["count"] == 1, res

    # Filters: metadata @> ..., same answer as the embedded store.
    for cat in ("food", "travel"):
        body = {"query": "a sentence about anything", "limit": 10, "filter": {"metadata.category": cat}}
        want = plain.post("/embeddings/search", body)["results"]
        got = pgs.post("/embeddings/search", body)["results"]
        assert got and {h["metadata"]["category"] for h in got} == {cat}, got
        assert [round(h["score"], 4) for h in got] == [round(h["score"], 4) for h in want] or \
            [h["id"] for h in got] == [h["id"] for h in want], (cat, want, got)
    body = {"query": "x", "filter": {"metadata.category": "none-such"}}
    assert pgs.post("/embeddings/search", body)["results"] == []
    # Searching by vector works too.
    ref, _ = embed_ref(run, {"q": TOPICAL[8]})
    res = pgs.post("/embeddings/search", {"vector": ref["q"], "limit": 1})
    assert res["results"][0]["text"] == TOPICAL[8] and res["results"][0]["score"] > 0.9999, res
    assert plain.stop() == 0, plain.tail()
    assert pgs.stop() == 0, pgs.tail()


def test_hostile_strings_stored_embedded_and_searched_verbatim(pg, run, serve):
    rng = random.Random(606)
    big = ""
    while len(big.encode()) < 10240:
        big += sentence(rng, 12) + " "
    big = big.encode()[:10240].decode("utf-8", "ignore")
    texts = HOSTILE + [big]
    rows = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), t) for t in texts]
    metadata = {rows[0][0]: {"note": "it's \"quoted\"", "sql": "'); DROP TABLE text_messages; --"},
                rows[3][0]: {"lang": "日本語", "emoji": "🚀", "nested": {"a": [1, "$$"]}}}
    insert_rows(pg, rows, metadata=metadata, hex_literals=True)
    # Plus a few ordinary rows around them.
    insert_rows(pg, make_rows(30, seed=607))
    n = len(rows) + 30
    assert pg_messages(pg, [m for m, _ in rows]) == dict(rows), "stored as inserted"

    svc = serve("--pg-source", "--search-backend", "postgres")
    wait_all_embedded(pg, svc, n, timeout=120)
    assert pg.psql(f"SELECT to_regclass('{TEXT}') IS NOT NULL AND to_regclass('{EMB}') IS NOT NULL") == "t"
    assert count(pg, TEXT) == n and count(pg, EMB) == n
    assert pg_messages(pg, [m for m, _ in rows]) == dict(rows), "messages unchanged byte for byte"
    assert_vectors_match(pg, run, dict(rows), "hostile strings")
    stats = source_stats(svc)
    assert stats["errors"] == 0, stats

    # Search returns them verbatim; a hostile filter value is just a value.
    for mid, text in rows[:4]:
        res = svc.post("/embeddings/search", {"query": text, "limit": 1})
        assert res["results"][0]["id"] == mid and res["results"][0]["text"] == text, (text, res)
    res = svc.post("/embeddings/search", {"query": "drop table", "limit": 5,
                                          "filter": {"metadata.sql": "'); DROP TABLE text_messages; --"}})
    assert [h["id"] for h in res["results"]] == [rows[0][0]], res
    assert res["results"][0]["metadata"] == metadata[rows[0][0]], res
    res = svc.post("/embeddings/search", {"query": "x", "limit": 5,
                                          "filter": {"metadata.note": "x' OR '1'='1"}})
    assert res["results"] == [], res
    assert count(pg, TEXT) == n and count(pg, EMB) == n
    assert svc.stop() == 0, svc.tail()


def test_other_model_left_alone_by_serve_then_pg_reembed(pg, run, serve):
    rows = make_rows(200, seed=707)
    insert_rows(pg, rows)
    svc = serve("--pg-source", "--pg-poll-ms", "1000")
    wait_all_embedded(pg, svc, 200, timeout=120)
    _, model = embed_ref(run, {"x": "x"})
    assert pg.psql(f"SELECT DISTINCT model_name FROM {EMB}") == model

    # 5 rows now look like another model's output (name and vector).
    other = [m for m, _ in rows[:5]]
    donor = rows[-1][0]
    pg.psql(f"UPDATE {EMB} SET model_name = 'other-model', embedding = "
            f"(SELECT embedding FROM {EMB} WHERE id = '{donor}') WHERE id = ANY({ids_array(other)})")
    before = pg_column(pg, "xmin::text", other)
    # Activity after the change: a text update re-embeds its row, the others stay.
    touched = rows[10][0]
    pg.psql(f"UPDATE {TEXT} SET message = 'Touched so that the source has work.' WHERE id = '{touched}'")
    wait_until(lambda: current_count(pg), lambda c: c == 200, 30, "the touched row re-embedded",
               svc)
    time.sleep(3)  # > two poll cycles
    assert pg_column(pg, "model_name", other) == {m: "other-model" for m in other}
    assert pg_column(pg, "xmin::text", other) == before, "serve rewrote other-model rows"
    st = pg_status_of(svc)
    assert st["pending"] == 0, st
    assert svc.stop() == 0, svc.tail()

    st = pg_status_cli(run, pg)
    # "embedded" may or may not count the other model's rows; pending excludes them.
    assert st["other_model"] == 5 and st["pending"] == 0 and st["embedded"] in (195, 200), st
    rc, out, err = pg_cli(run, pg, "reembed")
    assert rc == 0, f"pg reembed exited {rc}: {err}"
    assert cli_json(out, "reembedded")["reembedded"] == 5, out
    assert pg.psql(f"SELECT model_name, count(*) FROM {EMB} GROUP BY 1") == f"{model}|200"
    assert_vectors_match(pg, run, {m: t for m, t in rows[:5]}, "re-embedded rows")
    st = pg_status_cli(run, pg)
    assert st["other_model"] == 0 and st["pending"] == 0, st
    rc, out, err = pg_cli(run, pg, "reembed")
    assert rc == 0 and cli_json(out, "reembedded")["reembedded"] == 0, (rc, out, err)


def test_users_own_table_bigint_ids_custom_columns_from_config(pg_server, run, serve, tmp_path):
    """A table of the user's own (bigint ids, other column names, no created_at or
    metadata), every setting from the YAML file: install, embed, search."""
    pg = pg_server
    pg.psql("DROP TABLE IF EXISTS chat_vectors, chat_vectors_progress, chat_vectors_dead_letters, "
            "chat_vectors_chunks, chat_vectors_deletes, chat_log CASCADE; "
            "CREATE TABLE chat_log (post_id bigint PRIMARY KEY, body text NOT NULL, author text)")
    cfg = tmp_path / "own.yaml"
    cfg.write_text(f"""postgres:
  host: {pg.host}
  port: {pg.port}
  database: {pg.dbname}
  user: {pg.user}
  password: {pg.password}
  text_table: chat_log
  embeddings_table: chat_vectors
sources:
  postgres:
    enabled: true
    id_column: post_id
    text_column: body
    poll_interval_ms: 1000
search:
  backend: postgres
""")
    texts = {i + 1: t for i, (_, t) in enumerate(make_rows(500, seed=808))}
    pg.psql("INSERT INTO chat_log (post_id, body, author) VALUES " + ",".join(
        f"({i}, {sql_str(t)}, 'user{i % 7}')" for i, t in texts.items()))
    p = run(["pg", "install", "-c", str(cfg), "--id-column", "post_id", "--text-column", "body"])
    assert p.returncode == 0, p.stderr.decode()
    pk = pg.psql("SELECT a.attname || '|' || format_type(a.atttypid, a.atttypmod) FROM pg_index i "
                 "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                 "WHERE i.indrelid = 'chat_vectors'::regclass AND i.indisprimary")
    pk_col, pk_type = pk.split("|")
    assert pk_type == "bigint", f"the embeddings id has the text id's type: {pk}"
    current = ("SELECT count(*) FROM chat_log t JOIN chat_vectors e "
               f"ON e.{pk_col} = t.post_id WHERE e.text_md5 = md5(t.body)")

    svc = serve("--config", str(cfg), env={}, name="own")
    wait_until(lambda: int(pg.psql(current)), lambda c: c == 500, 180, "500 current embeddings",
               svc, interval=1.0)
    wait_until(lambda: pg_status_of(svc), lambda s: s["pending"] == 0, 30, "pending 0", svc)
    sample = dict(random.Random(8).sample(sorted(texts.items()), 10))
    ref, model = embed_ref(run, {str(i): t for i, t in sample.items()})
    for line in pg.psql(f"SELECT {pk_col}, embedding::text, model_name FROM chat_vectors WHERE "
                        f"{pk_col} IN ({','.join(map(str, sample))})").split("\n"):
        i, vec, name = line.split("|")
        assert name == model
        assert cosine(json.loads(vec), ref[i]) > 0.99999, (i, sample[int(i)])
    for i in list(sample)[:3]:
        res = svc.post("/embeddings/search", {"query": texts[i], "limit": 3})
        top = res["results"][0]
        assert str(top["id"]) == str(i) and top["text"] == texts[i], res
    assert pg.psql("SELECT count(*) FROM chat_log WHERE author IS NULL") == "0"
    assert source_stats(svc)["errors"] == 0
    assert svc.stop() == 0, svc.tail()
    pg.psql("DROP TABLE IF EXISTS chat_vectors, chat_vectors_chunks, chat_vectors_deletes, chat_log "
            "CASCADE")


def test_sigterm_and_kill9_mid_run_lose_nothing(pg, run, serve):
    """SIGTERM mid catch-up exits 0 promptly; kill -9 mid catch-up leaves no row locked
    or half-written; a later serve finishes the rest."""
    rows = make_rows(3000, seed=909)
    insert_rows(pg, rows)
    a = serve("--pg-source", name="a")
    wait_until(lambda: count(pg, EMB), lambda c: c >= 300, 120, ">= 300 embedded by a", a,
               interval=0.2)
    t0 = time.time()
    assert a.stop(timeout=30) == 0, a.tail()
    stop_s = time.time() - t0
    done_a = count(pg, EMB)
    assert done_a < 3000, "a finished before SIGTERM: make the table bigger"
    assert current_count(pg) == done_a, "every row written by a is complete"

    b = serve("--pg-source", name="b")
    wait_until(lambda: count(pg, EMB), lambda c: c >= done_a + 300, 120,
               f">= {done_a + 300} embedded by b", b, interval=0.2)
    b.kill9()
    done_b = count(pg, EMB)
    assert current_count(pg) == done_b

    c = serve("--pg-source", name="c")
    wait_all_embedded(pg, c, 3000, timeout=240)
    st = source_stats(c)
    print(f"\n[pg] SIGTERM took {stop_s:.1f} s at {done_a} rows; kill -9 at {done_b}; "
          f"c embedded {st['embedded']}")
    # c embeds what was left (b's last, uncommitted batch included), never less.
    assert st["embedded"] >= 3000 - done_b, st
    assert count(pg, EMB) == 3000
    assert_vectors_match(pg, run, dict(random.Random(9).sample(rows, 10)), "after kill -9")
    assert c.stop() == 0, c.tail()
