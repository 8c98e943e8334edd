#include "sinks/postgres_sink.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "core/logging.h"
#include "core/uuid.h"
#include "pg/schema.h"

namespace embedstream::sinks {
namespace {

// Session-local staging table for COPY; emptied at each commit.
constexpr const char* kStagingTable = "es_pg_sink_staging";
constexpr const char* kChunkStagingTable = "es_pg_sink_chunks";
constexpr size_t kEfSearchDefault = 40;  // pgvector's hnsw.ef_search default
// Candidates per search at least: pgvector's 40 misses true top-5 hits even
// on a few hundred rows; 200 matched an exact scan in tests/e2e.
constexpr size_t kEfSearchFloor = 200;
constexpr size_t kEfSearchMax = 1000;
// Below this many bytes of embeddings (about 40,000 rows of 384 floats) a
// search scans exactly, as the embedded store does below 40,000 vectors: a
// few ms, and no HNSW miss (pgvector's graph missed the true top hit of a
// query far from every row, tests/e2e/test_postgres.py, even at ef 200).
constexpr int64_t kExactSearchBelowBytes = 64 << 20;
constexpr auto kSizeRecheck = std::chrono::seconds(5);

// One element of a PostgreSQL array literal, quoted, after a comma.
void AppendArrayElement(std::string& out, const std::string& v) {
  if (!out.empty()) out += ',';
  out += '"';
  for (char ch : v) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '"';
}

}  // namespace

PostgresSinkOptions PostgresSinkOptions::FromEnv() {
  PostgresSinkOptions o;
  pg::ConnectionOptions c = pg::ConnectionOptions::FromEnv(o.Connection());
  o.host = c.host;
  o.port = c.port;
  o.dbname = c.dbname;
  o.user = c.user;
  o.password = c.password;
  return o;
}

pg::ConnectionOptions PostgresSinkOptions::Connection() const {
  return {.host = host,
          .port = port,
          .dbname = dbname,
          .user = user,
          .password = password,
          .connect_timeout_s = connect_timeout_s};
}

struct PostgresSink::Impl {
  std::unique_ptr<pg::Connection> conn;
  pg::Schema schema;
  uint64_t staging_generation = ~uint64_t{0};  // connection generation with the temp table
  uint64_t ef_generation = ~uint64_t{0};       // ... with ef_search set
  size_t ef_search = kEfSearchDefault;
  uint64_t size_generation = ~uint64_t{0};  // ... with embeddings_bytes read
  int64_t embeddings_bytes = 0;
  std::chrono::steady_clock::time_point size_checked_at{};

  // Inside the write transaction; the caller marks the table ready after its
  // COMMIT (a rollback takes the CREATE back).
  Status EnsureStaging() {
    if (staging_generation == conn->generation()) return {};
    if (auto r = conn->Exec(
            std::string("CREATE TEMP TABLE IF NOT EXISTS ") + kStagingTable +
                " (seq bigint, id uuid, source_id text, message text, metadata "
                "jsonb, embedding vector, chunk_count int) ON COMMIT DELETE "
                "ROWS;\nCREATE TEMP TABLE IF NOT EXISTS " +
                kChunkStagingTable +
                " (seq bigint, parent text, source_id text, id text, chunk_index int, chunk_count "
                "int, char_start int, char_end int, chunk_text text, metadata "
                "jsonb, embedding vector) ON COMMIT DELETE ROWS",
            PGRES_COMMAND_OK, "creating the staging tables");
        !r) {
      return r.error();
    }
    return {};
  }

  Result<size_t> UpsertOnce(std::span<const PgRow> rows, const PostgresSinkOptions& o,
                            Tables tables);
  Result<std::vector<PgHit>> SearchOnce(const std::string& q, size_t k, const std::string& filter);
};

Result<size_t> PostgresSink::Impl::UpsertOnce(std::span<const PgRow> rows,
                                              const PostgresSinkOptions& o, Tables tables) {
  const bool with_vectors = tables != Tables::kText;
  const bool vectors_only = tables == Tables::kVectors;
  pg::Connection& c = *conn;
  auto fail = [&](Error e) -> Result<size_t> {
    c.RollbackIfNeeded();
    return e;
  };
  if (auto r = c.Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  if (Status st = EnsureStaging(); !st) return fail(st.error());
  // Staged: whole texts and the documents of chunk 0s (no vector); chunks
  // apart; deletes as an id list.
  std::string buf, chunk_buf, removes;
  size_t staged = 0, staged_chunks = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const PgRow& row = rows[i];
    bool is_uuid = false;
    const std::string stored = StoredId(row.id, &is_uuid);
    if (row.remove) {
      // The id as the table has it: the text table's own (vectors mode) or
      // the stored UUID.
      AppendArrayElement(removes, vectors_only ? row.id : stored);
      continue;
    }
    const bool chunk = row.chunk_count > 1;
    if (chunk && with_vectors) {
      chunk_buf += std::to_string(i);
      chunk_buf += '\t';
      pg::AppendCopyText(chunk_buf, vectors_only ? row.id : stored);
      chunk_buf += '\t';
      if (is_uuid || vectors_only) {
        chunk_buf += "\\N";
      } else {
        pg::AppendCopyText(chunk_buf, row.id);  // the document's original id
      }
      chunk_buf += '\t';
      pg::AppendCopyText(chunk_buf, row.id + "#" + std::to_string(row.chunk_index));
      for (uint32_t v : {row.chunk_index, row.chunk_count, row.char_start, row.char_end}) {
        chunk_buf += '\t';
        chunk_buf += std::to_string(v);
      }
      chunk_buf += '\t';
      pg::AppendCopyText(chunk_buf, row.text);
      chunk_buf += '\t';
      if (row.metadata_json.empty()) {
        chunk_buf += "\\N";
      } else {
        pg::AppendCopyText(chunk_buf, row.metadata_json);
      }
      chunk_buf += '\t';
      pg::AppendVector(chunk_buf, row.vector);
      chunk_buf += '\n';
      ++staged_chunks;
      if (row.chunk_index != 0) continue;  // the document's row comes with chunk 0
    }
    // Vectors only: the text table's own id, in source_id, cast on insert.
    std::string id = vectors_only ? std::string("\\N") : stored;
    buf += std::to_string(i);
    buf += '\t';
    buf += id;
    buf += '\t';
    if (is_uuid && !vectors_only) {
      buf += "\\N";
    } else {
      pg::AppendCopyText(buf, row.id);
    }
    buf += '\t';
    pg::AppendCopyText(buf, chunk ? row.document_text : row.text);
    buf += '\t';
    if (row.metadata_json.empty()) {
      buf += "\\N";
    } else {
      pg::AppendCopyText(buf, row.metadata_json);
    }
    buf += '\t';
    if (with_vectors) {  // a chunked document's row: its first chunk's vector
      pg::AppendVector(buf, row.vector);
    } else {
      buf += "\\N";
    }
    buf += '\t';
    buf += std::to_string(chunk ? row.chunk_count : 1);
    buf += '\n';
    ++staged;
  }
  if (staged > 0) {
    if (Status st = c.CopyIn(std::string("COPY ") + kStagingTable +
                                 " (seq, id, source_id, message, metadata, embedding, chunk_count) "
                                 "FROM STDIN",
                             buf, "COPY");
        !st) {
      return fail(st.error());
    }
  }
  // The metadata stored: the record's, plus source_id when the id was mapped.
  const std::string metadata =
      "CASE WHEN source_id IS NULL THEN metadata ELSE coalesce(metadata, '{}'::jsonb) || "
      "jsonb_build_object('source_id', source_id) END";
  // Within a batch the last row for an id wins (ON CONFLICT may touch a row
  // only once per statement). A replay updates nothing: unchanged rows are
  // skipped by the WHERE of DO UPDATE.
  const pg::Schema& s = schema;
  // The document id of a staged row as the tables have it.
  const std::string doc_id = vectors_only ? "source_id::" + s.id_type : std::string("id");
  size_t changed = 0;
  auto exec = [&](const std::string& sql, const std::string& what) -> Status {
    auto n = c.ExecParams(sql, {o.model_name}, PGRES_COMMAND_OK, what);
    if (!n) return n.error();
    changed += std::strtoull(PQcmdTuples(n->get()), nullptr, 10);
    return {};
  };
  if (staged > 0 && !vectors_only) {
    const std::string upsert_text =
        "INSERT INTO " + s.text_table + " AS t (" + s.id_column + ", " + s.text_column +
        ", processed_at, metadata) SELECT DISTINCT ON (id) id, message, now(), " + metadata +
        " FROM " + kStagingTable + " ORDER BY id, seq DESC ON CONFLICT (" + s.id_column +
        ") DO UPDATE SET " + s.text_column + " = excluded." + s.text_column +
        ", processed_at = excluded.processed_at, metadata = excluded.metadata WHERE (t." +
        s.text_column + ", t.metadata) IS DISTINCT FROM (excluded." + s.text_column +
        ", excluded.metadata)";
    auto n_text = c.Exec(upsert_text, PGRES_COMMAND_OK, "upserting " + o.text_table);
    if (!n_text) return fail(n_text.error());
    changed += std::strtoull(PQcmdTuples(n_text->get()), nullptr, 10);
  }
  if (staged > 0 && with_vectors) {
    const std::string key = vectors_only ? "source_id" : "id";
    // A chunked document keeps its row here (seed 001's read model has a row
    // per message) with its first chunk's vector and chunk_count > 1; search
    // takes its chunks instead.
    const std::string upsert_embeddings =
        "INSERT INTO " + s.embeddings_table +
        " AS e (id, embedding, model_name, metadata, text_md5, chunk_count) SELECT DISTINCT ON (" +
        key + ") " + doc_id + ", embedding, $1::text, " + (vectors_only ? "metadata" : metadata) +
        ", md5(message), chunk_count FROM " + kStagingTable + " ORDER BY " + key +
        ", seq DESC ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model_name = "
        "excluded.model_name, metadata = excluded.metadata, text_md5 = excluded.text_md5, "
        "chunk_count = excluded.chunk_count WHERE (e.embedding, e.model_name, e.metadata, "
        "e.text_md5, e.chunk_count) IS DISTINCT FROM (excluded.embedding, excluded.model_name, "
        "excluded.metadata, excluded.text_md5, excluded.chunk_count)";
    if (Status st = exec(upsert_embeddings, "upserting " + o.embeddings_table); !st) {
      return fail(st.error());
    }
    // A document's chunks of another count (or all of them, for a whole
    // text) are stale.
    const std::string drop_stale = "DELETE FROM " + s.chunks_table + " c USING " + kStagingTable +
                                   " g WHERE c.parent_id = g." +
                                   (vectors_only ? "source_id::" + s.id_type : "id") +
                                   " AND c.chunk_count <> g.chunk_count";
    auto dropped = c.Exec(drop_stale, PGRES_COMMAND_OK, "dropping replaced chunks");
    if (!dropped) return fail(dropped.error());
    changed += std::strtoull(PQcmdTuples(dropped->get()), nullptr, 10);
  }
  if (staged_chunks > 0) {
    if (Status st =
            c.CopyIn(std::string("COPY ") + kChunkStagingTable +
                         " (seq, parent, source_id, id, chunk_index, chunk_count, "
                         "char_start, char_end, chunk_text, metadata, embedding) FROM STDIN",
                     chunk_buf, "COPY chunks");
        !st) {
      return fail(st.error());
    }
    // metadata.source_id: the document's original id when it was mapped.
    const std::string upsert_chunks =
        "INSERT INTO " + s.chunks_table +
        " AS c (id, parent_id, chunk_index, chunk_count, char_start, char_end, chunk_text, "
        "embedding, model_name, metadata) SELECT DISTINCT ON (id) id, parent::" +
        s.id_type +
        ", chunk_index, chunk_count, char_start, char_end, chunk_text, embedding, $1::text, " +
        metadata + " FROM " + kChunkStagingTable +
        " ORDER BY id, seq DESC ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id, "
        "chunk_index = excluded.chunk_index, chunk_count = excluded.chunk_count, char_start = "
        "excluded.char_start, char_end = excluded.char_end, chunk_text = excluded.chunk_text, "
        "embedding = excluded.embedding, model_name = excluded.model_name, metadata = "
        "excluded.metadata WHERE (c.chunk_text, c.embedding, c.metadata, c.char_start, "
        "c.char_end, c.chunk_count) IS DISTINCT FROM (excluded.chunk_text, excluded.embedding, "
        "excluded.metadata, excluded.char_start, excluded.char_end, excluded.chunk_count)";
    if (Status st = exec(upsert_chunks, "upserting " + s.chunks_table); !st) {
      return fail(st.error());
    }
  }
  if (staged > 0 && tables == Tables::kBoth) {
    // Text and vector are both here: the rows are done for a CQRS source
    // reading this text table (pg/schema.h).
    const std::string progress =
        "INSERT INTO " + s.progress_table +
        " AS p (id, text_md5, model_name) SELECT DISTINCT ON (id) id, md5(message), $1::text "
        "FROM " +
        kStagingTable +
        " ORDER BY id, seq DESC ON CONFLICT (id) DO UPDATE SET text_md5 = excluded.text_md5, "
        "model_name = excluded.model_name, done_at = now() WHERE (p.text_md5, p.model_name) IS "
        "DISTINCT FROM (excluded.text_md5, excluded.model_name)";
    if (auto r = c.ExecParams(progress, {o.model_name}, PGRES_COMMAND_OK, "marking progress"); !r) {
      return fail(r.error());
    }
  }
  if (!removes.empty()) {
    // The text row takes its vector, chunks and progress with it (ON DELETE
    // CASCADE); a source's own table has lost the row already.
    const std::string array = "{" + removes + "}";
    const std::string sql =
        vectors_only
            ? "WITH a AS (SELECT unnest($1::text[]) AS id), e AS (DELETE FROM " +
                  s.embeddings_table + " WHERE id::text IN (SELECT id FROM a)) DELETE FROM " +
                  s.chunks_table + " WHERE parent_id::text IN (SELECT id FROM a)"
            : "DELETE FROM " + s.text_table + " WHERE " + s.id_column + " = ANY($1::uuid[])";
    auto r = c.ExecParams(sql, {array}, PGRES_COMMAND_OK, "deleting");
    if (!r) return fail(r.error());
    changed += std::strtoull(PQcmdTuples(r->get()), nullptr, 10);
  }
  if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  staging_generation = c.generation();
  return changed;
}

Result<std::vector<PgHit>> PostgresSink::Impl::SearchOnce(const std::string& q, size_t k,
                                                          const std::string& filter) {
  pg::Connection& c = *conn;
  if (ef_generation != c.generation()) {
    ef_search = kEfSearchDefault;
    ef_generation = c.generation();
  }
  size_t ef = std::clamp(k, kEfSearchFloor, kEfSearchMax);
  if (ef > ef_search) {
    auto r = c.ExecParams("SELECT set_config('hnsw.ef_search', $1, false)", {std::to_string(ef)},
                          PGRES_TUPLES_OK, "setting hnsw.ef_search");
    if (!r) return r.error();
    ef_search = ef;
  }
  const pg::Schema& s = schema;
  std::vector<std::string> params = {q, std::to_string(k)};
  // Whole texts only from <embeddings> (a chunked document's row there is
  // its first chunk again).
  std::string where_e = " WHERE e.chunk_count = 1", where_c;
  if (!filter.empty()) {
    where_e += " AND e.metadata @> $3::jsonb";
    where_c = " WHERE c.metadata @> $3::jsonb";
    params.push_back(filter);
  }
  // Whole texts and chunks, each by its own index, merged by distance.
  const std::string whole =
      "SELECT e.id::text AS id, coalesce(e.metadata->>'source_id', '') AS source_id, coalesce(t." +
      s.text_column + ", '') AS body, coalesce(e.metadata::text, '') AS meta, e.embedding <=> " +
      "$1::vector AS d, '' AS parent, 0 AS ci, 1 AS cc, 0 AS cs, 0 AS ce FROM " +
      s.embeddings_table + " e LEFT JOIN " + s.text_table + " t ON t." + s.id_column + " = e.id" +
      where_e + " ORDER BY e.embedding <=> $1::vector LIMIT $2::bigint";
  const std::string chunks =
      "SELECT c.id, '', c.chunk_text, coalesce(c.metadata::text, ''), c.embedding <=> "
      "$1::vector, coalesce(c.metadata->>'source_id', c.parent_id::text), c.chunk_index, "
      "c.chunk_count, c.char_start, c.char_end FROM " +
      s.chunks_table + " c" + where_c + " ORDER BY c.embedding <=> $1::vector LIMIT $2::bigint";
  const std::string sql =
      "SELECT id, source_id, body, meta, 1 - d, parent, ci, cc, cs, ce FROM ((" + whole +
      ") UNION ALL (" + chunks + ")) u ORDER BY d LIMIT $2::bigint";
  // The table's size, asked again at most every kSizeRecheck (a round trip).
  const auto now = std::chrono::steady_clock::now();
  if (size_generation != c.generation() || now - size_checked_at >= kSizeRecheck) {
    auto size = c.ExecParams(
        "SELECT pg_relation_size(to_regclass($1)) + coalesce(pg_relation_size(to_regclass($2)), 0)",
        {s.embeddings_table, s.chunks_table}, PGRES_TUPLES_OK, "the embeddings table's size");
    if (!size) return size.error();
    embeddings_bytes = std::strtoll(PQgetvalue(size->get(), 0, 0), nullptr, 10);
    size_generation = c.generation();
    size_checked_at = now;
  }
  const bool small = embeddings_bytes < kExactSearchBelowBytes;
  Result<pg::ResultPtr> res = Error(errc::internal, "not run");
  if (!small) {
    res = c.ExecParams(sql, params, PGRES_TUPLES_OK, "search");
    if (!res) return res.error();
  }
  if (small || (!filter.empty() && static_cast<size_t>(PQntuples(res->get())) < k)) {
    // pgvector filters after the HNSW scan, which yields only ef_search
    // candidates: a selective filter can leave fewer than k. Scan exactly.
    auto exact = [&]() -> Result<pg::ResultPtr> {
      if (auto r = c.Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return r.error();
      if (auto r = c.Exec("SET LOCAL enable_indexscan = off", PGRES_COMMAND_OK, "exact scan"); !r) {
        return r.error();
      }
      auto r = c.ExecParams(sql, params, PGRES_TUPLES_OK, "search (exact)");
      if (!r) return r.error();
      if (auto done = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !done) return done.error();
      return r;
    };
    res = exact();
    if (!res) {
      c.RollbackIfNeeded();
      return res.error();
    }
  }
  PGresult* r = res->get();
  std::vector<PgHit> hits;
  hits.reserve(static_cast<size_t>(PQntuples(r)));
  for (int i = 0; i < PQntuples(r); ++i) {
    PgHit h;
    h.id = PQgetvalue(r, i, 0);
    h.source_id = PQgetvalue(r, i, 1);
    h.text = PQgetvalue(r, i, 2);
    h.metadata_json = PQgetvalue(r, i, 3);
    h.score = std::strtof(PQgetvalue(r, i, 4), nullptr);
    h.parent_id = PQgetvalue(r, i, 5);
    auto u32 = [&](int col) {
      return static_cast<uint32_t>(std::strtoul(PQgetvalue(r, i, col), nullptr, 10));
    };
    h.chunk_index = u32(6);
    h.chunk_count = u32(7);
    h.char_start = u32(8);
    h.char_end = u32(9);
    hits.push_back(std::move(h));
  }
  return hits;
}

PostgresSink::PostgresSink(PostgresSinkOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

PostgresSink::~PostgresSink() = default;

Result<std::unique_ptr<PostgresSink>> PostgresSink::Connect(const PostgresSinkOptions& options) {
  if (options.dim == 0) return Error(errc::invalid_argument, "postgres: dim must be > 0");
  if (options.text_table.empty() || options.embeddings_table.empty()) {
    return Error(errc::invalid_argument, "postgres: table names must not be empty");
  }
  std::unique_ptr<PostgresSink> self(new PostgresSink(options));
  auto conn = pg::Connection::Open(options.Connection());
  if (!conn) return conn.error();
  self->impl_->conn = std::move(*conn);
  pg::SchemaOptions so;
  so.text_table = options.text_table;
  so.embeddings_table = options.embeddings_table;
  so.id_column = options.id_column;
  so.text_column = options.text_column;
  so.dim = options.dim;
  so.model_name = options.model_name;
  so.add_metadata_column = true;
  so.hnsw_m = options.hnsw_m;
  so.hnsw_ef_construction = options.hnsw_ef_construction;
  auto schema = pg::EnsureSchema(*self->impl_->conn, so);
  if (!schema) return schema.error();
  if (options.require_uuid_ids && schema->id_type != "uuid") {
    return Error(errc::invalid_argument, "postgres: " + options.text_table + "." +
                                             options.id_column + " is " + schema->id_type +
                                             "; the sink writes uuid ids");
  }
  self->impl_->schema = std::move(*schema);
  GetLogger("postgres")
      ->info("postgres {}: {} / {} ready (vector({}), HNSW cosine)", options.Connection().Where(),
             options.text_table, options.embeddings_table, options.dim);
  return self;
}

Status PostgresSink::CheckRow(const PgRow& row, size_t dim, bool with_vector) {
  if (with_vector && !row.remove) {
    if (row.vector.size() != dim) {
      return Error(errc::invalid_argument, "postgres: row " + row.id + " has " +
                                               std::to_string(row.vector.size()) +
                                               " dimensions, the table " + std::to_string(dim));
    }
    for (float f : row.vector) {
      if (!std::isfinite(f)) {
        return Error(errc::invalid_argument, "postgres: row " + row.id + ": NaN or infinite value");
      }
    }
  }
  const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  if (row.id.empty() || has_nul(row.id) || has_nul(row.text) || has_nul(row.metadata_json) ||
      has_nul(row.document_text)) {
    return Error(errc::invalid_argument,
                 "postgres: row '" + row.id + "': empty id or a NUL byte in id, text or metadata");
  }
  return {};
}

Result<size_t> PostgresSink::Upsert(std::span<const PgRow> rows) {
  if (rows.empty()) return size_t{0};
  for (const PgRow& row : rows) {
    if (Status st = CheckRow(row, options_.dim, true); !st) return st.error();
  }
  return UpsertChunks(rows, Tables::kBoth);
}

Result<size_t> PostgresSink::UpsertVectors(std::span<const PgRow> rows) {
  if (rows.empty()) return size_t{0};
  for (const PgRow& row : rows) {
    if (Status st = CheckRow(row, options_.dim, true); !st) return st.error();
  }
  return UpsertChunks(rows, Tables::kVectors);
}

Result<size_t> PostgresSink::UpsertChunks(std::span<const PgRow> rows, Tables tables) {
  const size_t chunk = std::max<size_t>(1, options_.rows_per_transaction);
  size_t changed = 0;
  for (size_t at = 0, n = 0; at < rows.size(); at += n) {
    // A document's chunks commit together (never a mix of old and new).
    n = std::min(chunk, rows.size() - at);
    while (at + n < rows.size() && rows[at + n].chunk_index != 0) ++n;
    auto part = rows.subspan(at, n);
    auto done = impl_->conn->WithReconnect<size_t>(
        [&] { return impl_->UpsertOnce(part, options_, tables); });
    if (!done) return done.error();
    changed += *done;
  }
  return changed;
}

Result<size_t> PostgresSink::UpsertText(std::span<const PgRow> rows) {
  if (rows.empty()) return size_t{0};
  for (const PgRow& row : rows) {
    if (Status st = CheckRow(row, options_.dim, false); !st) return st.error();
  }
  return UpsertChunks(rows, Tables::kText);
}

Result<std::vector<PgHit>> PostgresSink::Search(const std::vector<float>& q, size_t k,
                                                const std::string& metadata_filter) {
  if (q.size() != options_.dim) {
    return Error(errc::invalid_argument, "postgres: query has " + std::to_string(q.size()) +
                                             " dimensions, the table " +
                                             std::to_string(options_.dim));
  }
  if (k == 0) return std::vector<PgHit>{};
  std::string text;
  pg::AppendVector(text, q);
  return impl_->conn->WithReconnect<std::vector<PgHit>>(
      [&] { return impl_->SearchOnce(text, k, metadata_filter); });
}

int PostgresSink::backend_pid() const { return impl_->conn->backend_pid(); }

std::string PostgresSink::StoredId(const std::string& id, bool* is_uuid) {
  return StoredUuid(id, is_uuid);
}

}  // namespace embedstream::sinks
