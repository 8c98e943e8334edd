#pragma once
// PostgresSink: writes embeddings to PostgreSQL + pgvector in seed 001's
// schema: `text_messages` (the write model: id, message) and
// `message_embeddings` (the read model: id, embedding vector(dim), model_name,
// metadata jsonb) with an HNSW cosine index. Connect() creates the extension,
// tables and index when missing and refuses a table whose vector dimension is
// not the model's. Upsert() writes a batch to both tables in one transaction
// (COPY into a temp table, then INSERT ... SELECT ... ON CONFLICT DO UPDATE),
// so a replay changes nothing. Ids that are UUIDs are kept; any other id maps
// to UuidV5(EmbedstreamNamespace(), id) and is kept in metadata "source_id".
//
// One connection; not thread-safe: one thread calls everything (open one sink
// per thread). A broken connection is reset once per call; when it stays down
// calls return Error(unavailable) and may be retried.
//
// Example:
//   auto opts = PostgresSinkOptions::FromEnv();
//   opts.dim = 384;
//   auto sink = PostgresSink::Connect(opts);
//   if (!sink) return sink.error();
//   auto n = (*sink)->Upsert(rows);

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/connection.h"

namespace embedstream::sinks {

struct PostgresSinkOptions {
  std::string host = "127.0.0.1";
  int port = 5433;
  std::string dbname = "text_messages_db";
  std::string user = "postgres";
  std::string password = "postgres";
  std::string text_table = "text_messages";
  std::string embeddings_table = "message_embeddings";
  std::string id_column = "id";         // of the text table
  std::string text_column = "message";  // of the text table
  // Writes need uuid ids (non-UUID ids map to UUIDv5); a search-only sink
  // over a table with other ids sets this false.
  bool require_uuid_ids = true;
  size_t dim = 384;  // from the model
  std::string model_name = "sentence-transformers/all-MiniLM-L6-v2";
  // Upsert commits at most this many rows per transaction (bench/postgres:
  // pgvector's HNSW insert ran ~50% faster in 256-row transactions than in
  // 1,024-row ones). Each transaction is idempotent; a failed call may have
  // committed its first chunks, and retrying it is safe.
  size_t rows_per_transaction = 256;
  int hnsw_m = 16;                // when the index is created (pg/schema.h)
  int hnsw_ef_construction = 64;  //
  int connect_timeout_s = 10;

  // DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER,
  // DATABASE_PASSWORD over the defaults above (seed 001's names). A port that
  // is not a number keeps the default.
  static PostgresSinkOptions FromEnv();
  pg::ConnectionOptions Connection() const;
};

struct PgRow {
  PgRow() = default;
  PgRow(std::string id_, std::string text_, std::string metadata_json_, std::vector<float> vector_)
      : id(std::move(id_)),
        text(std::move(text_)),
        metadata_json(std::move(metadata_json_)),
        vector(std::move(vector_)) {}
  std::string id;             // a UUID, or any string (mapped to a UUIDv5)
  std::string text;           // the message text (a chunk's text for a chunk)
  std::string metadata_json;  // a JSON object, or empty for none
  std::vector<float> vector;  // options.dim floats
  // Delete the document: its text row, and by cascade its vector, chunks and
  // progress (vectors mode: its vector and chunks; the text row is gone).
  bool remove = false;
  // Chunk `chunk_index` of a document of chunk_count > 1 chunks (a row of
  // <embeddings>_chunks). Chunk 0 also writes the document's text row
  // (`document_text`) and drops its chunks of another count and its
  // <embeddings> row; a whole text (chunk_count 1) drops all its chunks.
  uint32_t chunk_index = 0, chunk_count = 1, char_start = 0, char_end = 0;
  std::string document_text;
};

struct PgHit {
  std::string id;         // the stored UUID ("<document id>#<n>" for a chunk)
  std::string source_id;  // the original id when it was not a UUID, else empty
  std::string text;
  std::string metadata_json;  // empty when NULL
  float score = 0;            // cosine similarity, 1 - (embedding <=> query)
  std::string parent_id;      // a chunk's document (its original id)
  uint32_t chunk_index = 0, chunk_count = 1, char_start = 0, char_end = 0;
};

class PostgresSink {
 public:
  // Connects, creates extension `vector` and the schema when missing, checks
  // the dimension. unavailable: server unreachable or refusing; invalid_argument:
  // the existing table has another dimension (the message names both).
  static Result<std::unique_ptr<PostgresSink>> Connect(const PostgresSinkOptions& options);
  ~PostgresSink();
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // Upserts rows into both tables, rows_per_transaction rows per transaction
  // (each all or nothing; within a transaction the last row for an id wins). Returns the number of
  // table rows inserted or changed (0 for a replay of stored rows). unavailable: connection down
  // (retry); invalid_argument: a row the server or the sink refuses (wrong dimension, NaN, bad
  // JSON, NUL byte).
  Result<size_t> Upsert(std::span<const PgRow> rows);
  // Upserts id, text and metadata into the text table only (vectors are
  // ignored); a changed text makes the row pending for the CQRS source.
  Result<size_t> UpsertText(std::span<const PgRow> rows);
  // Upserts id, vector and metadata into the embeddings table only, for rows
  // of the text table itself (the PostgreSQL source feeding this sink): the
  // id is the text table's own (any type, not mapped), the text row is not
  // touched; text_md5 is md5 of the text given. The row's progress is left
  // to the source, which marks it when every sink of its pipeline has it.
  Result<size_t> UpsertVectors(std::span<const PgRow> rows);

  // The k rows nearest to q by cosine distance (HNSW), nearest first, whole
  // texts and chunks together.
  // `metadata_filter`: a JSON object the row's metadata must contain
  // (jsonb @>), or empty for none.
  Result<std::vector<PgHit>> Search(const std::vector<float>& q, size_t k,
                                    const std::string& metadata_filter = {});

  // invalid_argument when the sink would refuse the row (wrong dimension when
  // `with_vector`, NaN, empty id, NUL byte), so a caller can isolate it.
  static Status CheckRow(const PgRow& row, size_t dim, bool with_vector);

  // The server process id of the current connection (tests, logs).
  int backend_pid() const;
  const PostgresSinkOptions& options() const { return options_; }

  // The UUID stored for a message id: itself when it is a UUID (lower case),
  // else UuidV5(EmbedstreamNamespace(), id).
  static std::string StoredId(const std::string& id, bool* is_uuid = nullptr);

 private:
  explicit PostgresSink(PostgresSinkOptions options);
  enum class Tables { kBoth, kText, kVectors };
  Result<size_t> UpsertChunks(std::span<const PgRow> rows, Tables tables);
  struct Impl;
  PostgresSinkOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::sinks
