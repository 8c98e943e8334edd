#include "sinks/postgres_sink.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "core/logging.h"
#include "core/uuid.h"

namespace embedstream::sinks {
namespace {

// Session-local staging table for COPY; emptied at each commit.
constexpr const char* kStagingTable = "es_pg_sink_staging";
// Serialises schema creation between processes starting together.
constexpr const char* kSchemaLockKey = "embedstream.postgres_sink.schema";
constexpr size_t kCopyChunkBytes = 1 << 20;
constexpr size_t kEfSearchDefault = 40;  // pgvector's hnsw.ef_search default
constexpr size_t kEfSearchMax = 1000;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// errc for a failed statement: by SQLSTATE class, connection state first.
errc Classify(PGconn* conn, const PGresult* res) {
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return errc::unavailable;
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return errc::unavailable;  // no server answer: the link failed
  std::string_view s(state);
  if (s == "57014") return errc::timeout;  // query_canceled (statement_timeout)
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "57" || cls == "53" || cls == "40") return errc::unavailable;
  if (cls == "22" || cls == "23") return errc::invalid_argument;
  return errc::internal;
}

Error ServerError(PGconn* conn, const PGresult* res, std::string_view what) {
  std::string msg = res != nullptr ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn != nullptr) msg = PQerrorMessage(conn);
  return Error(Classify(conn, res), "postgres: " + std::string(what) + ": " + Trim(msg));
}

// COPY text format: backslash, newline, carriage return and tab escaped.
void AppendCopyText(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
}

// pgvector's text form "[1,2.5,-3]", shortest round-trip digits.
void AppendVector(std::string& out, const std::vector<float>& v) {
  out += '[';
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    auto r = std::to_chars(buf, buf + sizeof(buf), v[i]);
    out.append(buf, r.ptr);
  }
  out += ']';
}

// The N in "vector(N)"; 0 for "vector" without a dimension; -1 otherwise.
long ParseVectorDim(const std::string& type) {
  if (type == "vector") return 0;
  if (type.rfind("vector(", 0) != 0 || type.back() != ')') return -1;
  return std::strtol(type.c_str() + 7, nullptr, 10);
}

void OnNotice(void* arg, const char* message) {
  static_cast<spdlog::logger*>(arg)->debug("postgres notice: {}", Trim(message));
}

}  // namespace

PostgresSinkOptions PostgresSinkOptions::FromEnv() {
  PostgresSinkOptions o;
  o.host = EnvOr("DATABASE_HOST", o.host);
  std::string port = EnvOr("DATABASE_PORT", std::to_string(o.port));
  int p = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), p);
  if (r.ec == std::errc() && r.ptr == port.data() + port.size() && p > 0 && p < 65536) o.port = p;
  o.dbname = EnvOr("DATABASE_NAME", o.dbname);
  o.user = EnvOr("DATABASE_USER", o.user);
  o.password = EnvOr("DATABASE_PASSWORD", o.password);
  return o;
}

struct PostgresSink::Impl {
  PGconn* conn = nullptr;
  std::shared_ptr<spdlog::logger> log = GetLogger("postgres");
  std::string text_table;        // quoted identifiers
  std::string embeddings_table;  //
  std::string hnsw_index;        //
  bool staging_ready = false;    // the temp table exists in this session
  size_t ef_search = kEfSearchDefault;
  std::string where;  // "host:port/db" for messages

  ~Impl() {
    if (conn != nullptr) PQfinish(conn);
  }

  std::string Quote(const std::string& ident) {
    char* q = PQescapeIdentifier(conn, ident.c_str(), ident.size());
    if (q == nullptr) return "\"" + ident + "\"";  // only on out-of-memory
    std::string s(q);
    PQfreemem(q);
    return s;
  }

  // Exec without parameters, expecting `want`.
  Result<PgResultPtr> Exec(const std::string& sql, ExecStatusType want, std::string_view what) {
    PgResultPtr res(PQexec(conn, sql.c_str()));
    if (!res || PQresultStatus(res.get()) != want) return ServerError(conn, res.get(), what);
    return res;
  }

  Result<PgResultPtr> ExecParams(const std::string& sql, const std::vector<std::string>& params,
                                 ExecStatusType want, std::string_view what) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    PgResultPtr res(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0));
    if (!res || PQresultStatus(res.get()) != want) return ServerError(conn, res.get(), what);
    return res;
  }

  // After a failed statement inside a transaction: back to idle.
  void RollbackIfNeeded() {
    if (PQstatus(conn) != CONNECTION_OK) return;
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
      PgResultPtr r(PQexec(conn, "ROLLBACK"));
    }
  }

  // A broken connection is reset once; unavailable when it stays down.
  Status EnsureConnected() {
    if (PQstatus(conn) == CONNECTION_OK) return {};
    log->warn("postgres {}: connection lost, reconnecting", where);
    PQreset(conn);
    staging_ready = false;
    ef_search = kEfSearchDefault;
    if (PQstatus(conn) != CONNECTION_OK) {
      return Error(errc::unavailable,
                   "postgres: " + where + ": connection down: " + Trim(PQerrorMessage(conn)));
    }
    log->info("postgres {}: reconnected", where);
    return {};
  }

  // Runs op; when it failed because the connection broke, resets once and
  // runs it again (our operations are idempotent).
  template <typename T, typename Op>
  Result<T> WithReconnect(Op op) {
    if (Status s = EnsureConnected(); !s) return s.error();
    Result<T> r = op();
    if (r.ok() || PQstatus(conn) != CONNECTION_BAD) return r;
    if (Status s = EnsureConnected(); !s) return s.error();
    return op();
  }

  Status EnsureSchema(const PostgresSinkOptions& o);
  Result<size_t> UpsertOnce(std::span<const PgRow> rows, const PostgresSinkOptions& o);
  Result<std::vector<PgHit>> SearchOnce(const std::string& q, size_t k);
};

Status PostgresSink::Impl::EnsureSchema(const PostgresSinkOptions& o) {
  auto fail = [&](Error e) -> Status {
    RollbackIfNeeded();
    return e;
  };
  if (auto r = Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  if (auto r = ExecParams("SELECT pg_advisory_xact_lock(hashtext($1))", {kSchemaLockKey},
                          PGRES_TUPLES_OK, "schema lock");
      !r) {
    return fail(r.error());
  }
  if (auto r = Exec("CREATE EXTENSION IF NOT EXISTS vector", PGRES_COMMAND_OK,
                    "CREATE EXTENSION vector");
      !r) {
    return fail(r.error());
  }
  auto type = ExecParams(
      "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
      "WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding' AND NOT a.attisdropped",
      {embeddings_table}, PGRES_TUPLES_OK, "reading the embedding column type");
  if (!type) return fail(type.error());
  if (PQntuples(type->get()) == 1) {
    std::string t = PQgetvalue(type->get(), 0, 0);
    long existing = ParseVectorDim(t);
    if (existing < 0) {
      return fail(Error(errc::invalid_argument, "postgres: " + o.embeddings_table +
                                                    ".embedding is " + t +
                                                    ", not a pgvector vector; use another table"));
    }
    if (existing > 0 && static_cast<size_t>(existing) != o.dim) {
      return fail(Error(errc::invalid_argument,
                        "postgres: " + o.embeddings_table + ".embedding is vector(" +
                            std::to_string(existing) + ") but the model " + o.model_name +
                            " gives " + std::to_string(o.dim) +
                            " dimensions; use another table or drop this one"));
    }
  }
  // Identifiers are quoted by libpq and the dimension is a number: no data in
  // these statements.
  const std::string ddl =
      "CREATE TABLE IF NOT EXISTS " + text_table +
      " (id uuid PRIMARY KEY, message text NOT NULL, created_at timestamptz DEFAULT now(),"
      " processed_at timestamptz);\n"
      "CREATE TABLE IF NOT EXISTS " +
      embeddings_table + " (id uuid PRIMARY KEY REFERENCES " + text_table +
      " (id) ON DELETE CASCADE, embedding vector(" + std::to_string(o.dim) +
      "), model_name text, metadata jsonb, created_at timestamptz DEFAULT now());\n"
      "ALTER TABLE " +
      embeddings_table +
      " ADD COLUMN IF NOT EXISTS model_name text, ADD COLUMN IF NOT EXISTS metadata jsonb;";
  if (auto r = Exec(ddl, PGRES_COMMAND_OK, "creating the tables"); !r) return fail(r.error());
  auto hnsw = ExecParams(
      "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
      "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = to_regclass($1) AND am.amname = "
      "'hnsw'",
      {embeddings_table}, PGRES_TUPLES_OK, "looking for an HNSW index");
  if (!hnsw) return fail(hnsw.error());
  if (PQntuples(hnsw->get()) == 0) {
    if (auto r = Exec("CREATE INDEX IF NOT EXISTS " + hnsw_index + " ON " + embeddings_table +
                          " USING hnsw (embedding vector_cosine_ops)",
                      PGRES_COMMAND_OK, "creating the HNSW index");
        !r) {
      return fail(r.error());
    }
  }
  if (auto r = Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  return {};
}

Result<size_t> PostgresSink::Impl::UpsertOnce(std::span<const PgRow> rows,
                                              const PostgresSinkOptions& o) {
  auto fail = [&](Error e) -> Result<size_t> {
    RollbackIfNeeded();
    return e;
  };
  if (auto r = Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  const bool created_staging = !staging_ready;
  if (created_staging) {
    if (auto r = Exec(std::string("CREATE TEMP TABLE ") + kStagingTable +
                          " (seq bigint, id uuid, source_id text, message text, metadata jsonb,"
                          " embedding vector) ON COMMIT DELETE ROWS",
                      PGRES_COMMAND_OK, "creating the staging table");
        !r) {
      return fail(r.error());
    }
  }
  if (auto r = Exec(std::string("COPY ") + kStagingTable +
                        " (seq, id, source_id, message, metadata, embedding) FROM STDIN",
                    PGRES_COPY_IN, "COPY");
      !r) {
    return fail(r.error());
  }
  std::string buf;
  buf.reserve(kCopyChunkBytes + 64 * 1024);
  auto put = [&]() -> bool {
    if (buf.empty()) return true;
    bool ok = PQputCopyData(conn, buf.data(), static_cast<int>(buf.size())) == 1;
    buf.clear();
    return ok;
  };
  bool sent = true;
  for (size_t i = 0; i < rows.size() && sent; ++i) {
    const PgRow& row = rows[i];
    bool is_uuid = false;
    std::string id = StoredId(row.id, &is_uuid);
    buf += std::to_string(i);
    buf += '\t';
    buf += id;
    buf += '\t';
    if (is_uuid) {
      buf += "\\N";
    } else {
      AppendCopyText(buf, row.id);
    }
    buf += '\t';
    AppendCopyText(buf, row.text);
    buf += '\t';
    if (row.metadata_json.empty()) {
      buf += "\\N";
    } else {
      AppendCopyText(buf, row.metadata_json);
    }
    buf += '\t';
    AppendVector(buf, row.vector);
    buf += '\n';
    if (buf.size() >= kCopyChunkBytes) sent = put();
  }
  if (sent) sent = put();
  if (PQputCopyEnd(conn, sent ? nullptr : "embedstream: sending rows failed") != 1) {
    return fail(ServerError(conn, nullptr, "COPY"));
  }
  PgResultPtr copy_res(PQgetResult(conn));
  while (PgResultPtr extra{PQgetResult(conn)}) {
  }
  if (!copy_res || PQresultStatus(copy_res.get()) != PGRES_COMMAND_OK) {
    return fail(ServerError(conn, copy_res.get(), "COPY"));
  }
  // Within a batch the last row for an id wins (ON CONFLICT may touch a row
  // only once per statement). A replay updates nothing: unchanged rows are
  // skipped by the WHERE of DO UPDATE.
  const std::string upsert_text =
      "INSERT INTO " + text_table +
      " AS t (id, message, processed_at) "
      "SELECT DISTINCT ON (id) id, message, now() FROM " +
      kStagingTable +
      " ORDER BY id, seq DESC "
      "ON CONFLICT (id) DO UPDATE SET message = excluded.message, processed_at = "
      "excluded.processed_at WHERE t.message IS DISTINCT FROM excluded.message";
  auto n_text = Exec(upsert_text, PGRES_COMMAND_OK, "upserting " + o.text_table);
  if (!n_text) return fail(n_text.error());
  const std::string upsert_embeddings =
      "INSERT INTO " + embeddings_table +
      " AS e (id, embedding, model_name, metadata) "
      "SELECT DISTINCT ON (id) id, embedding, $1::text, CASE WHEN source_id IS NULL THEN "
      "metadata ELSE coalesce(metadata, '{}'::jsonb) || jsonb_build_object('source_id', "
      "source_id) END FROM " +
      kStagingTable +
      " ORDER BY id, seq DESC "
      "ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model_name = "
      "excluded.model_name, metadata = excluded.metadata "
      "WHERE (e.embedding, e.model_name, e.metadata) IS DISTINCT FROM "
      "(excluded.embedding, excluded.model_name, excluded.metadata)";
  auto n_emb = ExecParams(upsert_embeddings, {o.model_name}, PGRES_COMMAND_OK,
                          "upserting " + o.embeddings_table);
  if (!n_emb) return fail(n_emb.error());
  if (auto r = Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  staging_ready = true;
  return static_cast<size_t>(std::strtoull(PQcmdTuples(n_text->get()), nullptr, 10) +
                             std::strtoull(PQcmdTuples(n_emb->get()), nullptr, 10));
}

Result<std::vector<PgHit>> PostgresSink::Impl::SearchOnce(const std::string& q, size_t k) {
  size_t ef = std::min(k, kEfSearchMax);
  if (ef > ef_search) {
    auto r = ExecParams("SELECT set_config('hnsw.ef_search', $1, false)", {std::to_string(ef)},
                        PGRES_TUPLES_OK, "setting hnsw.ef_search");
    if (!r) return r.error();
    ef_search = ef;
  }
  auto res = ExecParams(
      "SELECT e.id::text, coalesce(e.metadata->>'source_id', ''), coalesce(t.message, ''), "
      "coalesce(e.metadata::text, ''), 1 - (e.embedding <=> $1::vector) FROM " +
          embeddings_table + " e LEFT JOIN " + text_table +
          " t ON t.id = e.id ORDER BY e.embedding <=> $1::vector LIMIT $2::bigint",
      {q, std::to_string(k)}, PGRES_TUPLES_OK, "search");
  if (!res) return res.error();
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
  Impl& im = *self->impl_;
  im.where = options.host + ":" + std::to_string(options.port) + "/" + options.dbname;
  const std::string port = std::to_string(options.port);
  const std::string timeout = std::to_string(options.connect_timeout_s);
  const char* keys[] = {"host",
                        "port",
                        "dbname",
                        "user",
                        "password",
                        "connect_timeout",
                        "application_name",
                        "client_encoding",
                        nullptr};
  const char* values[] = {options.host.c_str(),
                          port.c_str(),
                          options.dbname.c_str(),
                          options.user.c_str(),
                          options.password.c_str(),
                          timeout.c_str(),
                          "embedstream",
                          "UTF8",
                          nullptr};
  im.conn = PQconnectdbParams(keys, values, 0);
  if (im.conn == nullptr) return Error(errc::internal, "postgres: out of memory");
  if (PQstatus(im.conn) != CONNECTION_OK) {
    return Error(errc::unavailable,
                 "postgres: cannot connect to " + im.where + ": " + Trim(PQerrorMessage(im.conn)));
  }
  PQsetNoticeProcessor(im.conn, OnNotice, im.log.get());
  im.text_table = im.Quote(options.text_table);
  im.embeddings_table = im.Quote(options.embeddings_table);
  im.hnsw_index = im.Quote(options.embeddings_table + "_embedding_hnsw_idx");
  if (Status s = im.EnsureSchema(options); !s) return s.error();
  im.log->info("postgres {}: {} / {} ready (vector({}), HNSW cosine)", im.where, options.text_table,
               options.embeddings_table, options.dim);
  return self;
}

Result<size_t> PostgresSink::Upsert(std::span<const PgRow> rows) {
  if (rows.empty()) return size_t{0};
  for (const PgRow& row : rows) {
    if (row.vector.size() != options_.dim) {
      return Error(errc::invalid_argument,
                   "postgres: row " + row.id + " has " + std::to_string(row.vector.size()) +
                       " dimensions, the table " + std::to_string(options_.dim));
    }
    for (float f : row.vector) {
      if (!std::isfinite(f)) {
        return Error(errc::invalid_argument, "postgres: row " + row.id + ": NaN or infinite value");
      }
    }
    const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
    if (row.id.empty() || has_nul(row.id) || has_nul(row.text) || has_nul(row.metadata_json)) {
      return Error(errc::invalid_argument, "postgres: row '" + row.id +
                                               "': empty id or a NUL byte in id, text or metadata");
    }
  }
  return impl_->WithReconnect<size_t>([&] { return impl_->UpsertOnce(rows, options_); });
}

Result<std::vector<PgHit>> PostgresSink::Search(const std::vector<float>& q, size_t k) {
  if (q.size() != options_.dim) {
    return Error(errc::invalid_argument, "postgres: query has " + std::to_string(q.size()) +
                                             " dimensions, the table " +
                                             std::to_string(options_.dim));
  }
  if (k == 0) return std::vector<PgHit>{};
  std::string text;
  AppendVector(text, q);
  return impl_->WithReconnect<std::vector<PgHit>>([&] { return impl_->SearchOnce(text, k); });
}

int PostgresSink::backend_pid() const { return PQbackendPID(impl_->conn); }

std::string PostgresSink::StoredId(const std::string& id, bool* is_uuid) {
  if (auto u = ParseUuid(id)) {
    if (is_uuid != nullptr) *is_uuid = true;
    return FormatUuid(*u);
  }
  if (is_uuid != nullptr) *is_uuid = false;
  return FormatUuid(UuidV5(EmbedstreamNamespace(), id));
}

}  // namespace embedstream::sinks
