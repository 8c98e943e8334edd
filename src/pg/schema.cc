#include "pg/schema.h"

#include <cstdlib>

namespace embedstream::pg {
namespace {

constexpr const char* kSchemaLockKey = "embedstream.postgres.schema";
constexpr const char* kTriggerName = "embedstream_notify";
constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

// The N in "vector(N)"; 0 for "vector" without a dimension; -1 otherwise.
long ParseVectorDim(const std::string& type) {
  if (type == "vector") return 0;
  if (type.rfind("vector(", 0) != 0 || type.back() != ')') return -1;
  return std::strtol(type.c_str() + 7, nullptr, 10);
}

// Column name -> SQL type of a table's live columns.
Result<std::vector<std::pair<std::string, std::string>>> Columns(Connection& conn,
                                                                 const std::string& table) {
  auto r = conn.ExecParams(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
      {table}, PGRES_TUPLES_OK, "reading the columns of " + table);
  if (!r) return r.error();
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    out.emplace_back(PQgetvalue(r->get(), i, 0), PQgetvalue(r->get(), i, 1));
  }
  return out;
}

const std::string* TypeOf(const std::vector<std::pair<std::string, std::string>>& cols,
                          const std::string& name) {
  for (const auto& [n, t] : cols) {
    if (n == name) return &t;
  }
  return nullptr;
}

Status CheckEmbeddingColumn(Connection& conn, const SchemaOptions& o) {
  auto cols = Columns(conn, conn.Quote(o.embeddings_table));
  if (!cols) return cols.error();
  const std::string* t = TypeOf(*cols, "embedding");
  if (t == nullptr) return {};
  long existing = ParseVectorDim(*t);
  if (existing < 0) {
    return Error(errc::invalid_argument, "postgres: " + o.embeddings_table + ".embedding is " + *t +
                                             ", not a pgvector vector; use another table");
  }
  if (existing > 0 && static_cast<size_t>(existing) != o.dim) {
    return Error(errc::invalid_argument,
                 "postgres: " + o.embeddings_table + ".embedding is vector(" +
                     std::to_string(existing) + ") but the model " + o.model_name + " gives " +
                     std::to_string(o.dim) + " dimensions; use another table or drop this one");
  }
  return {};
}

Status CreateTables(Connection& conn, const SchemaOptions& o, Schema& s) {
  // Identifiers are quoted by libpq and the dimension is a number: no data in
  // these statements.
  std::string ddl = "CREATE TABLE IF NOT EXISTS " + s.text_table + " (" + s.id_column +
                    " uuid PRIMARY KEY, " + s.text_column +
                    " text NOT NULL, created_at timestamptz DEFAULT now(), processed_at "
                    "timestamptz, metadata jsonb)";
  if (auto r = conn.Exec(ddl, PGRES_COMMAND_OK, "creating " + o.text_table); !r) {
    return r.error();
  }
  auto cols = Columns(conn, s.text_table);
  if (!cols) return cols.error();
  // ALTER TABLE takes an ACCESS EXCLUSIVE lock even when there is nothing to
  // add, and it would queue behind (and in front of) the row locks another
  // process's source holds on these tables: alter only what is missing.
  if (o.add_metadata_column && TypeOf(*cols, "metadata") == nullptr) {
    if (auto r =
            conn.Exec("ALTER TABLE " + s.text_table + " ADD COLUMN IF NOT EXISTS metadata jsonb",
                      PGRES_COMMAND_OK, "adding metadata to " + o.text_table);
        !r) {
      return r.error();
    }
    cols = Columns(conn, s.text_table);
    if (!cols) return cols.error();
  }
  const std::string* id_type = TypeOf(*cols, o.id_column);
  const std::string* text_type = TypeOf(*cols, o.text_column);
  if (id_type == nullptr || text_type == nullptr) {
    return Error(errc::invalid_argument, "postgres: table " + o.text_table + " has no column '" +
                                             (id_type == nullptr ? o.id_column : o.text_column) +
                                             "' (see sources.postgres.id_column/text_column)");
  }
  s.id_type = *id_type;
  const std::string* meta = TypeOf(*cols, "metadata");
  s.has_metadata = meta != nullptr && *meta == "jsonb";
  s.has_created_at = TypeOf(*cols, "created_at") != nullptr;
  const std::string index = conn.Quote(o.embeddings_table + "_embedding_hnsw_idx");
  ddl = "CREATE TABLE IF NOT EXISTS " + s.embeddings_table + " (id " + s.id_type +
        " PRIMARY KEY REFERENCES " + s.text_table + " (" + s.id_column +
        ") ON DELETE CASCADE, embedding vector(" + std::to_string(o.dim) +
        "), model_name text, metadata jsonb, created_at timestamptz DEFAULT now(), text_md5 "
        "text, chunk_count int NOT NULL DEFAULT 1)";
  if (auto r = conn.Exec(ddl, PGRES_COMMAND_OK, "creating " + o.embeddings_table); !r) {
    return r.error();
  }
  auto ecols = Columns(conn, s.embeddings_table);
  if (!ecols) return ecols.error();
  if (TypeOf(*ecols, "model_name") == nullptr || TypeOf(*ecols, "metadata") == nullptr ||
      TypeOf(*ecols, "text_md5") == nullptr || TypeOf(*ecols, "chunk_count") == nullptr) {
    if (auto r = conn.Exec("ALTER TABLE " + s.embeddings_table +
                               " ADD COLUMN IF NOT EXISTS model_name text, ADD COLUMN IF NOT "
                               "EXISTS metadata jsonb, ADD COLUMN IF NOT EXISTS text_md5 text, "
                               "ADD COLUMN IF NOT EXISTS chunk_count int NOT NULL DEFAULT 1",
                           PGRES_COMMAND_OK, "adding columns to " + o.embeddings_table);
        !r) {
      return r.error();
    }
  }
  // The source's progress: which text (md5) of each row every sink of its
  // pipeline has. Its first creation takes over what the embeddings table
  // says (stores of older versions), so an upgrade re-embeds nothing.
  auto has_progress = conn.ExecParams("SELECT to_regclass($1) IS NOT NULL", {s.progress_table},
                                      PGRES_TUPLES_OK, "looking for the progress table");
  if (!has_progress) return has_progress.error();
  if (std::string(PQgetvalue(has_progress->get(), 0, 0)) != "t") {
    const std::string create =
        "CREATE TABLE " + s.progress_table + " (id " + s.id_type + " PRIMARY KEY REFERENCES " +
        s.text_table + " (" + s.id_column +
        ") ON DELETE CASCADE, text_md5 text, model_name text, done_at timestamptz DEFAULT "
        "now());\nINSERT INTO " +
        s.progress_table + " (id, text_md5, model_name) SELECT id, text_md5, model_name FROM " +
        s.embeddings_table + " WHERE text_md5 IS NOT NULL";
    if (auto r = conn.Exec(create, PGRES_COMMAND_OK, "creating the progress table"); !r) {
      return r.error();
    }
  }
  // Chunks of long documents (created with the tables, so an upgrade adds it).
  const std::string chunks_unquoted = ChunksTable(o.embeddings_table);
  const std::string create_chunks =
      "CREATE TABLE IF NOT EXISTS " + s.chunks_table + " (id text PRIMARY KEY, parent_id " +
      s.id_type + " NOT NULL REFERENCES " + s.text_table + " (" + s.id_column +
      ") ON DELETE CASCADE, chunk_index int NOT NULL, chunk_count int NOT NULL, char_start int "
      "NOT NULL, char_end int NOT NULL, chunk_text text NOT NULL, embedding vector(" +
      std::to_string(o.dim) +
      "), model_name text, metadata jsonb, created_at timestamptz DEFAULT now());\n"
      "CREATE INDEX IF NOT EXISTS " +
      conn.Quote(chunks_unquoted + "_parent_idx") + " ON " + s.chunks_table +
      " (parent_id);\nCREATE INDEX IF NOT EXISTS " + conn.Quote(chunks_unquoted + "_hnsw_idx") +
      " ON " + s.chunks_table +
      " USING hnsw (embedding vector_cosine_ops) WITH (m = " + std::to_string(o.hnsw_m) +
      ", ef_construction = " + std::to_string(o.hnsw_ef_construction) + ")";
  auto has_chunks = conn.ExecParams("SELECT to_regclass($1) IS NOT NULL", {s.chunks_table},
                                    PGRES_TUPLES_OK, "looking for the chunks table");
  if (!has_chunks) return has_chunks.error();
  if (std::string(PQgetvalue(has_chunks->get(), 0, 0)) != "t") {
    if (auto r = conn.Exec(create_chunks, PGRES_COMMAND_OK, "creating the chunks table"); !r) {
      return r.error();
    }
  }
  auto hnsw = conn.ExecParams(
      "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
      "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = to_regclass($1) AND am.amname = "
      "'hnsw'",
      {s.embeddings_table}, PGRES_TUPLES_OK, "looking for an HNSW index");
  if (!hnsw) return hnsw.error();
  if (PQntuples(hnsw->get()) == 0) {
    if (auto r = conn.Exec(
            "CREATE INDEX IF NOT EXISTS " + index + " ON " + s.embeddings_table +
                " USING hnsw (embedding vector_cosine_ops) WITH (m = " + std::to_string(o.hnsw_m) +
                ", ef_construction = " + std::to_string(o.hnsw_ef_construction) + ")",
            PGRES_COMMAND_OK, "creating the HNSW index");
        !r) {
      return r.error();
    }
  }
  return {};
}

// Runs body inside BEGIN ... COMMIT holding the schema advisory lock.
template <typename Body>
Status Locked(Connection& conn, Body body) {
  auto fail = [&](Error e) -> Status {
    conn.RollbackIfNeeded();
    return e;
  };
  if (auto r = conn.Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  if (auto r = conn.ExecParams("SELECT pg_advisory_xact_lock(hashtext($1))", {kSchemaLockKey},
                               PGRES_TUPLES_OK, "schema lock");
      !r) {
    return fail(r.error());
  }
  if (Status st = body(); !st) return fail(st.error());
  if (auto r = conn.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  return {};
}

}  // namespace

std::string ProgressTable(const std::string& embeddings_table) {
  std::string t = embeddings_table + "_progress";
  if (t.size() > kMaxIdentifierBytes) t.resize(kMaxIdentifierBytes);
  return t;
}

std::string DeletesTable(const std::string& embeddings_table) {
  std::string t = embeddings_table + "_deletes";
  if (t.size() > kMaxIdentifierBytes) t.resize(kMaxIdentifierBytes);
  return t;
}

Status InstallDeleteCapture(Connection& conn, const Schema& s, const SchemaOptions& o) {
  constexpr const char* kDeleteTrigger = "embedstream_capture_delete";
  auto has = conn.ExecParams(
      "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT "
      "tgisinternal",
      {s.text_table, kDeleteTrigger}, PGRES_TUPLES_OK, "looking for the delete trigger");
  if (!has) return has.error();
  const std::string table = conn.Quote(DeletesTable(o.embeddings_table));
  if (PQntuples(has->get()) > 0) return {};
  return Locked(conn, [&]() -> Status {
    // The deleted row's id as text (any id type), whatever the column's name.
    const std::string sql =
        "CREATE TABLE IF NOT EXISTS " + table +
        " (seq bigserial PRIMARY KEY, id text NOT NULL, deleted_at timestamptz DEFAULT now());\n"
        "CREATE OR REPLACE FUNCTION embedstream_capture_delete() RETURNS trigger LANGUAGE plpgsql "
        "AS $fn$ BEGIN EXECUTE format('INSERT INTO %s (id) VALUES ($1)', TG_ARGV[0]) USING "
        "to_jsonb(OLD) ->> TG_ARGV[1]; PERFORM pg_notify(TG_ARGV[2], ''); RETURN NULL; END "
        "$fn$;\nDROP TRIGGER IF EXISTS " +
        std::string(kDeleteTrigger) + " ON " + s.text_table + ";\nCREATE TRIGGER " +
        kDeleteTrigger + " AFTER DELETE ON " + s.text_table +
        " FOR EACH ROW EXECUTE FUNCTION embedstream_capture_delete(" + conn.Literal(table) + ", " +
        conn.Literal(o.id_column) + ", " + conn.Literal(s.channel) + ")";
    if (auto r = conn.Exec(sql, PGRES_COMMAND_OK, "installing the delete capture"); !r) {
      return r.error();
    }
    return {};
  });
}

std::string ChunksTable(const std::string& embeddings_table) {
  std::string t = embeddings_table + "_chunks";
  if (t.size() > kMaxIdentifierBytes) t.resize(kMaxIdentifierBytes);
  return t;
}

std::string NotifyChannel(const std::string& text_table) {
  std::string c = "embedstream." + text_table;
  if (c.size() > kMaxIdentifierBytes) c.resize(kMaxIdentifierBytes);
  return c;
}

Result<Schema> EnsureSchema(Connection& conn, const SchemaOptions& o) {
  if (o.dim == 0) return Error(errc::invalid_argument, "postgres: dim must be > 0");
  if (o.hnsw_m < 2 || o.hnsw_m > 100 || o.hnsw_ef_construction < 4 ||
      o.hnsw_ef_construction > 1000 || o.hnsw_ef_construction < 2 * o.hnsw_m) {
    return Error(errc::invalid_argument,
                 "postgres: HNSW needs 2 <= m <= 100 and 2*m <= ef_construction <= 1000");
  }
  if (o.text_table.empty() || o.embeddings_table.empty() || o.id_column.empty() ||
      o.text_column.empty()) {
    return Error(errc::invalid_argument, "postgres: table and column names must not be empty");
  }
  Schema s;
  s.text_table = conn.Quote(o.text_table);
  s.embeddings_table = conn.Quote(o.embeddings_table);
  s.progress_table = conn.Quote(ProgressTable(o.embeddings_table));
  s.chunks_table = conn.Quote(ChunksTable(o.embeddings_table));
  s.id_column = conn.Quote(o.id_column);
  s.text_column = conn.Quote(o.text_column);
  s.channel = NotifyChannel(o.text_table);
  Status st = Locked(conn, [&]() -> Status {
    if (auto r = conn.Exec("CREATE EXTENSION IF NOT EXISTS vector", PGRES_COMMAND_OK,
                           "CREATE EXTENSION vector");
        !r) {
      return r.error();
    }
    if (Status c = CheckEmbeddingColumn(conn, o); !c) return c;
    return CreateTables(conn, o, s);
  });
  if (!st) return st.error();
  return s;
}

Status InstallNotifyTrigger(Connection& conn, const Schema& s) {
  return Locked(conn, [&]() -> Status {
    const std::string sql =
        "CREATE OR REPLACE FUNCTION embedstream_notify() RETURNS trigger LANGUAGE plpgsql AS "
        "$fn$ BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $fn$;\n"
        "DROP TRIGGER IF EXISTS " +
        std::string(kTriggerName) + " ON " + s.text_table + ";\nCREATE TRIGGER " + kTriggerName +
        " AFTER INSERT OR UPDATE OF " + s.text_column + " ON " + s.text_table +
        " FOR EACH STATEMENT EXECUTE FUNCTION embedstream_notify(" + conn.Literal(s.channel) + ")";
    if (auto r = conn.Exec(sql, PGRES_COMMAND_OK, "installing the NOTIFY trigger"); !r) {
      return r.error();
    }
    return {};
  });
}

Result<bool> HasNotifyTrigger(Connection& conn, const SchemaOptions& o) {
  auto r = conn.ExecParams(
      "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT "
      "tgisinternal",
      {conn.Quote(o.text_table), kTriggerName}, PGRES_TUPLES_OK, "looking for the trigger");
  if (!r) return r.error();
  return PQntuples(r->get()) > 0;
}

}  // namespace embedstream::pg
