#pragma once
// The records that flow through the pipeline, and their wire formats.
//
// Input (DESIGN.md "Contracts"): seed 000 JSON {"id","text","timestamp",
// "source","metadata"}, seed 001 {"id","text"} or {"id","message"}, or a
// plain UTF-8 value. Output: seed 000's `embeddings` record, field names
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
};

// Why a record cannot be processed; `reason` is a stable machine-readable
// code (DLQ header error.reason, error records), `detail` is for people.
struct RecordError {
  std::string reason;  // invalid_utf8 | invalid_json | missing_text | wrong_type | too_large
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
};

// Appends one compact JSON object (no newline) to `out`.
void AppendEmbeddingRecord(std::string& out, const OutputFields& fields,
                           std::span<const float> embedding);

}  // namespace embedstream::pipeline
