#pragma once
// The PostgreSQL schema embedstream reads and writes (seed 001's CQRS pair):
//
//   <text_table>        the write model: id, text, created_at, processed_at,
//                       metadata jsonb (seed 001's text_messages; the column
//                       names are options, the table may be the user's own)
//   <embeddings_table>  the read model: id (same type as the text id, primary
//                       key, references the text row, ON DELETE CASCADE),
//                       embedding vector(dim), model_name, metadata jsonb,
//                       created_at, text_md5 (md5 of the text embedded),
//                       chunk_count (1: the vector is the whole text's)
//
//   <embeddings_table>_chunks  chunks of documents longer than the model
//                       takes: id text ("<document id>#<n>"), parent_id
//                       (references the text row, ON DELETE CASCADE),
//                       chunk_index, chunk_count, char_start, char_end
//                       (code points), chunk_text, embedding, model_name,
//                       metadata; HNSW cosine index. A chunked document keeps
//                       its text row and its <embeddings_table> row (with its
//                       first chunk's vector and chunk_count > 1, for seed
//                       001's readers; search takes the chunks instead).
//
//   <embeddings_table>_progress  the CQRS source's progress: id, text_md5
//                       (md5 of the text every sink of its pipeline has),
//                       model_name, done_at
//
// plus an HNSW cosine index. A text row is *pending* when it has no progress
// row or its text_md5 differs from md5 of its current text; the CQRS source
// embeds pending rows (sources/postgres_source) and marks them done once every
// sink has them. Writers of text and vectors together (the Kafka path's
// pgvector sink) mark their rows done as they write them. EnsureSchema creates
// what is missing under an advisory lock (several processes may start at
// once) and refuses an embedding column of another dimension.

#include <string>

#include "core/result.h"
#include "pg/connection.h"

namespace embedstream::pg {

struct SchemaOptions {
  std::string text_table = "text_messages";
  std::string id_column = "id";
  std::string text_column = "message";
  std::string embeddings_table = "message_embeddings";
  size_t dim = 384;  // from the model
  std::string model_name;
  // Add `metadata jsonb` to an existing text table that lacks it (the sink
  // stores record metadata there). The source only reads it when present.
  bool add_metadata_column = false;
  // HNSW build settings, used only when the index is created (pgvector's
  // defaults). Lower ef_construction inserts faster and finds a little less
  // (bench/postgres: 32 gave +15% rows/s, recall@10 0.95 instead of 0.97).
  int hnsw_m = 16;
  int hnsw_ef_construction = 64;
};

// What EnsureSchema found: quoted identifiers for SQL, and the text table's
// optional columns.
struct Schema {
  std::string text_table;        // quoted
  std::string embeddings_table;  // quoted
  std::string progress_table;    // quoted
  std::string chunks_table;      // quoted
  std::string id_column;         // quoted
  std::string text_column;       // quoted
  std::string id_type;           // SQL type of the text id, e.g. "uuid"
  bool has_metadata = false;     // the text table has `metadata jsonb`
  bool has_created_at = false;   // the text table has `created_at`
  std::string channel;           // NOTIFY channel of the text table (unquoted)
};

// Creates the extension, tables, columns and index when missing; checks the
// dimension. unavailable: server down; invalid_argument: another dimension,
// a missing text column, or an embedding column that is not a vector.
Result<Schema> EnsureSchema(Connection& conn, const SchemaOptions& options);

// `embedstream pg install`: a statement trigger on the text table that sends
// NOTIFY <schema.channel> after INSERT or UPDATE OF the text column, so the
// source wakes at once instead of at its next poll. Idempotent.
Status InstallNotifyTrigger(Connection& conn, const Schema& schema);

// The delete capture of the CQRS source: <embeddings_table>_deletes (seq,
// id text, deleted_at) and a row trigger on the text table that records each
// deleted row's id there and sends the NOTIFY, so the source can take the
// delete to sinks outside this database (Qdrant, the store, Kafka); the
// embeddings, chunks and progress rows go by cascade. Created when missing
// (idempotent; needs the right to create triggers on the table).
Status InstallDeleteCapture(Connection& conn, const Schema& schema, const SchemaOptions& options);
// <embeddings_table>_deletes, at most 63 bytes (unquoted).
std::string DeletesTable(const std::string& embeddings_table);

// Whether that trigger is installed on the text table.
Result<bool> HasNotifyTrigger(Connection& conn, const SchemaOptions& options);

// <embeddings_table>_progress, at most 63 bytes (unquoted).
std::string ProgressTable(const std::string& embeddings_table);
// <embeddings_table>_chunks, at most 63 bytes (unquoted).
std::string ChunksTable(const std::string& embeddings_table);

// The NOTIFY channel of a text table: "embedstream." + table, at most 63 bytes.
std::string NotifyChannel(const std::string& text_table);

}  // namespace embedstream::pg
