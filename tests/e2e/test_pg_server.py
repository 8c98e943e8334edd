"""The PostgreSQL 16 + pgvector test database itself (scripts/pg.sh, label e2e;pg):
it installs and starts from a clean cache, speaks PostgreSQL 16 with password
auth over TCP, loads pgvector, answers a nearest-neighbour query through an
HNSW cosine index, and keeps its data across a restart."""
import re

import pytest

from pg_server import PgServer, PgServerError, pg_server  # noqa: F401  (pytest fixture)


def test_fetch_and_start_timings(pg_server):
    # The fixture ran `scripts/pg.sh fetch` and `start`; a second fetch is a stamp check.
    first_fetch, first_start = pg_server.fetch_seconds, pg_server.start_seconds
    pg_server.fetch()
    print(f"\n[pg] fetch {first_fetch:.2f} s (then {pg_server.fetch_seconds:.2f} s), "
          f"start {first_start:.2f} s, port {pg_server.port}, data {pg_server.data_dir}")
    assert pg_server.fetch_seconds < 5, "a fetch with pgserver installed must not call pip"
    assert pg_server.is_running()


def test_postgres_16_over_tcp_with_password(pg_server):
    version = pg_server.psql("SELECT version()")
    assert re.match(r"PostgreSQL 16\.\d+ ", version), version
    assert pg_server.psql("SHOW server_version_num").startswith("16")
    who = pg_server.psql("SELECT current_user, current_database(), host(inet_server_addr()), "
                         "inet_server_port()")
    assert who == f"postgres|text_messages_db|127.0.0.1|{pg_server.port}", who
    # The password is checked (scram-sha-256), not trusted.
    assert pg_server.psql("SHOW password_encryption") == "scram-sha-256"
    wrong = pg_server.dsn.replace(":postgres@", ":wrong@")
    with pytest.raises(PgServerError, match="password authentication failed"):
        pg_server.psql("SELECT 1", dsn=wrong)
    assert pg_server.psql("SELECT 1", dsn=pg_server.dsn) == "1"


def test_pgvector_hnsw_cosine_nearest(pg_server):
    pg_server.psql("CREATE EXTENSION IF NOT EXISTS vector")
    assert pg_server.psql("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == "1"
    pg_server.psql("""
        DROP TABLE IF EXISTS items;
        CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL, embedding vector(3) NOT NULL);
        CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);
        INSERT INTO items VALUES
          (1, 'x-axis', '[1,0,0]'),
          (2, 'y-axis', '[0,1,0]'),
          (3, 'z-axis', '[0,0,1]'),
          (4, 'xy',     '[1,1,0]');
    """)
    query = "SELECT label FROM items ORDER BY embedding <=> '[0.1,0.9,0.05]' LIMIT 1"
    # Through the index (no seq scan allowed) and the plan says so.
    plan = pg_server.psql("SET enable_seqscan = off; EXPLAIN (COSTS OFF) " + query)
    assert "items_embedding_hnsw" in plan, plan
    assert pg_server.psql("SET enable_seqscan = off; " + query) == "y-axis"
    # Cosine, not L2: [0.3,0.31,0.05] points almost the way 'xy' does, but in L2
    # (<->) the short 'y-axis' vector is closer.
    q = "'[0.3,0.31,0.05]'"
    assert pg_server.psql(f"SELECT label FROM items ORDER BY embedding <=> {q} LIMIT 1") == "xy"
    assert pg_server.psql(f"SELECT label FROM items ORDER BY embedding <-> {q} LIMIT 1") == "y-axis"
    dist = float(pg_server.psql("SELECT embedding <=> '[0,2,0]' FROM items WHERE id = 2"))
    assert abs(dist) < 1e-6
    with pytest.raises(PgServerError, match="expected 3 dimensions"):
        pg_server.psql("INSERT INTO items VALUES (9, 'bad', '[1,2]')")


def test_restart_keeps_data(pg_server):
    pg_server.psql("""
        CREATE TABLE IF NOT EXISTS kept (id int PRIMARY KEY, embedding vector(3));
        INSERT INTO kept VALUES (1, '[0.5,0.5,0.5]') ON CONFLICT (id) DO NOTHING;
    """)
    pg_server.stop()
    assert not pg_server.is_running()
    with pytest.raises(PgServerError):
        pg_server.psql("SELECT 1")
    pg_server.start()
    assert pg_server.is_running()
    print(f"\n[pg] restart (start on the kept data dir) {pg_server.start_seconds:.2f} s")
    assert pg_server.psql("SELECT id, embedding FROM kept") == "1|[0.5,0.5,0.5]"
    # The index built before the restart still answers.
    assert pg_server.psql("SET enable_seqscan = off; SELECT label FROM items "
                          "ORDER BY embedding <=> '[0,0,3]' LIMIT 1") == "z-axis"


def test_second_server_own_port_and_data():
    # Independent instances side by side (each test module may start its own).
    with PgServer(dbname="other_db", user="app", password="s3cret:/@") as other:
        assert other.psql("SELECT current_user || ' ' || current_database()") == "app other_db"
        assert other.psql("SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"
        data_dir = other.data_dir
    assert not data_dir.exists()
