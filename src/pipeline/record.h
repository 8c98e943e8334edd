#pragma once
// The records that flow through the pipeline, and their wire formats.
//
// Input (DESIGN.md "Contracts"): seed 000 JSON {"id","text","timestamp",
// "source","metadata"}, seed 001 {"id","text"} or {"id","message"}, or a
// plain UTF-8 value; {"id": ..., "op": "delete"} deletes the id ("op":
// "upsert" is the default). Output: seed 000's `embeddings` record, field names
// exactly: id, original_text, embedding, model_name, timestamp,
// embedding_dimension, processing_timestamp, input_timestamp, input_source.
// Pure functions; thread-safe.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace embedstream::pipeline {

enum class InputFormat {
  kAuto,  // a value starting with '{' is JSON, anything else plain text
  kJson,
  kText,
};

struct InputRecord {
  std::string id;  // empty: the caller assigns one
  std::string text;
  std::optional<double> timestamp;  // seconds since the epoch
  std::string source;               // empty: the caller's default
  std::string metadata_json;        // raw JSON object, empty when absent
  bool remove = false;              // {"id": ..., "op": "delete"}: no text
};

// Why a record cannot be processed; `reason` is a stable machine-readable
// code (DLQ header error.reason, error records), `detail` is for people.
struct RecordError {
  // invalid_utf8 | invalid_json | missing_text | missing_id | wrong_type | too_large
  std::string reason;
  std::string detail;
};

struct DecodeResult {
  std::optional<InputRecord> record;
  RecordError error;  // set when !record
  bool ok() const { return record.has_value(); }
};

struct DecodeOptions {
  InputFormat format = InputFormat::kAuto;
  size_t max_bytes = 1 << 20;  // a record larger than this is rejected
};

DecodeResult DecodeRecord(std::string_view bytes, const DecodeOptions& options);

// The fields of one seed 000 output record besides the vector.
struct OutputFields {
  std::string_view id;
  std::string_view original_text;
  std::string_view model_name;
  double input_timestamp = 0;
  double processing_timestamp = 0;
  std::string_view input_source;
  // A chunk of a document: id is "<parent_id>#<chunk_index>" and these are
  // added (a text that fits in one chunk gives exactly today's record).
  bool chunk = false;
  std::string_view parent_id;
  uint32_t chunk_index = 0, chunk_count = 1, char_start = 0, char_end = 0;
};

// Appends one compact JSON object (no newline) to `out`.
void AppendEmbeddingRecord(std::string& out, const OutputFields& fields,
                           std::span<const float> embedding);
// {"id": ..., "op": "delete"} (the JSON lines form of a delete).
void AppendDeleteRecord(std::string& out, std::string_view id);

}  // namespace embedstream::pipeline
