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
    if (auto r = conn->Exec(std::string("CREATE TEMP TABLE IF NOT EXISTS ") + kStagingTable +
                                " (seq bigint, id uuid, source_id text, message text, metadata "
                                "jsonb, embedding vector) ON COMMIT DELETE ROWS",
                            PGRES_COMMAND_OK, "creating the staging table");
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
  std::string buf;
  for (size_t i = 0; i < rows.size(); ++i) {
    const PgRow& row = rows[i];
    bool is_uuid = false;
    // Vectors only: the text table's own id, in source_id, cast on insert.
    std::string id = vectors_only ? std::string("\\N") : StoredId(row.id, &is_uuid);
    buf += std::to_string(i);
    buf += '\t';
    buf += id;
    buf += '\t';
    if (is_uuid) {
      buf += "\\N";
    } else {
      pg::AppendCopyText(buf, row.id);
    }
    buf += '\t';
    pg::AppendCopyText(buf, row.text);
    buf += '\t';
    if (row.metadata_json.empty()) {
      buf += "\\N";
    } else {
      pg::AppendCopyText(buf, row.metadata_json);
    }
    buf += '\t';
    if (with_vectors) {
      pg::AppendVector(buf, row.vector);
    } else {
      buf += "\\N";
    }
    buf += '\n';
  }
  if (Status st = c.CopyIn(std::string("COPY ") + kStagingTable +
                               " (seq, id, source_id, message, metadata, embedding) FROM STDIN",
                           buf, "COPY");
      !st) {
    return fail(st.error());
  }
  // The metadata stored: the record's, plus source_id when the id was mapped.
  const std::string metadata =
      "CASE WHEN source_id IS NULL THEN metadata ELSE coalesce(metadata, '{}'::jsonb) || "
      "jsonb_build_object('source_id', source_id) END";
  // Within a batch the last row for an id wins (ON CONFLICT may touch a row
  // only once per statement). A replay updates nothing: unchanged rows are
  // skipped by the WHERE of DO UPDATE.
  const pg::Schema& s = schema;
  if (vectors_only) {
    const std::string upsert_vectors =
        "INSERT INTO " + s.embeddings_table +
        " AS e (id, embedding, model_name, metadata, text_md5) SELECT DISTINCT ON (source_id) "
        "source_id::" +
        s.id_type + ", embedding, $1::text, metadata, md5(message) FROM " + kStagingTable +
        " ORDER BY source_id, seq DESC ON CONFLICT (id) DO UPDATE SET embedding = "
        "excluded.embedding, model_name = excluded.model_name, metadata = excluded.metadata, "
        "text_md5 = excluded.text_md5 WHERE (e.embedding, e.model_name, e.metadata, e.text_md5) "
        "IS DISTINCT FROM (excluded.embedding, excluded.model_name, excluded.metadata, "
        "excluded.text_md5)";
    auto n = c.ExecParams(upsert_vectors, {o.model_name}, PGRES_COMMAND_OK,
                          "upserting " + o.embeddings_table);
    if (!n) return fail(n.error());
    if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
    staging_generation = c.generation();
    return static_cast<size_t>(std::strtoull(PQcmdTuples(n->get()), nullptr, 10));
  }
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
  size_t changed = std::strtoull(PQcmdTuples(n_text->get()), nullptr, 10);
  if (with_vectors) {
    const std::string upsert_embeddings =
        "INSERT INTO " + s.embeddings_table +
        " AS e (id, embedding, model_name, metadata, text_md5) SELECT DISTINCT ON (id) id, "
        "embedding, $1::text, " +
        metadata + ", md5(message) FROM " + kStagingTable +
        " ORDER BY id, seq DESC "
        "ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model_name = "
        "excluded.model_name, metadata = excluded.metadata, text_md5 = excluded.text_md5 "
        "WHERE (e.embedding, e.model_name, e.metadata, e.text_md5) IS DISTINCT FROM "
        "(excluded.embedding, excluded.model_name, excluded.metadata, excluded.text_md5)";
    auto n_emb = c.ExecParams(upsert_embeddings, {o.model_name}, PGRES_COMMAND_OK,
                              "upserting " + o.embeddings_table);
    if (!n_emb) return fail(n_emb.error());
    changed += std::strtoull(PQcmdTuples(n_emb->get()), nullptr, 10);
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
  std::string where;
  if (!filter.empty()) {
    where = " WHERE e.metadata @> $3::jsonb";
    params.push_back(filter);
  }
  const std::string sql =
      "SELECT e.id::text, coalesce(e.metadata->>'source_id', ''), coalesce(t." + s.text_column +
      ", ''), coalesce(e.metadata::text, ''), 1 - (e.embedding <=> $1::vector) FROM " +
      s.embeddings_table + " e LEFT JOIN " + s.text_table + " t ON t." + s.id_column + " = e.id" +
      where + " ORDER BY e.embedding <=> $1::vector LIMIT $2::bigint";
  // The table's size, asked again at most every kSizeRecheck (a round trip).
  const auto now = std::chrono::steady_clock::now();
  if (size_generation != c.generation() || now - size_checked_at >= kSizeRecheck) {
    auto size = c.ExecParams("SELECT pg_relation_size(to_regclass($1))", {s.embeddings_table},
                             PGRES_TUPLES_OK, "the embeddings table's size");
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
  if (with_vector) {
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
  if (row.id.empty() || has_nul(row.id) || has_nul(row.text) || has_nul(row.metadata_json)) {
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
  for (size_t at = 0; at < rows.size(); at += chunk) {
    auto part = rows.subspan(at, std::min(chunk, rows.size() - at));
    auto n = impl_->conn->WithReconnect<size_t>(
        [&] { return impl_->UpsertOnce(part, options_, tables); });
    if (!n) return n.error();
    changed += *n;
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
