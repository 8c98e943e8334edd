#include "pipeline/record.h"

#include <simdjson.h>

#include "core/json_writer.h"

namespace embedstream::pipeline {
namespace {

DecodeResult Fail(std::string reason, std::string detail) {
  DecodeResult r;
  r.error = {std::move(reason), std::move(detail)};
  return r;
}

// id may be a JSON string or an integer (seed 004's job ids are numbers).
bool ReadId(simdjson::dom::element v, std::string& out) {
  if (v.is_string()) {
    out.assign(std::string_view(v.get_string().value_unsafe()));
    return true;
  }
  if (v.is_int64() || v.is_uint64()) {
    out = simdjson::minify(v);
    return true;
  }
  return false;
}

DecodeResult DecodeJson(std::string_view bytes) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(bytes.data(), bytes.size()).get(doc); err) {
    return Fail("invalid_json", simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return Fail("invalid_json", "expected a JSON object");
  InputRecord rec;
  bool have_text = false;
  for (auto [key, v] : obj) {
    if (key == "text" || (key == "message" && !have_text)) {
      std::string_view s;
      if (v.get_string().get(s)) {
        return Fail("wrong_type", std::string(key).append(" must be a string"));
      }
      rec.text.assign(s);
      have_text = true;
    } else if (key == "id") {
      if (!ReadId(v, rec.id)) return Fail("wrong_type", "'id' must be a string or an integer");
    } else if (key == "timestamp") {
      // Non-numeric timestamps (ISO strings) are tolerated and ignored.
      if (v.is_number()) rec.timestamp = v.get_double().value_unsafe();
    } else if (key == "source") {
      if (v.is_string()) rec.source.assign(std::string_view(v.get_string().value_unsafe()));
    } else if (key == "op") {
      std::string_view op;
      if (v.get_string().get(op) || (op != "delete" && op != "upsert")) {
        return Fail("wrong_type", "'op' must be \"upsert\" or \"delete\"");
      }
      rec.remove = op == "delete";
    } else if (key == "metadata") {
      if (v.is_null()) continue;
      if (!v.is_object()) return Fail("wrong_type", "'metadata' must be an object");
      rec.metadata_json = simdjson::minify(v);
    }
    // Unknown fields are ignored: producers may add their own.
  }
  if (rec.remove) {
    if (rec.id.empty()) return Fail("missing_id", "a delete needs an 'id'");
    rec.text.clear();
  } else if (!have_text) {
    return Fail("missing_text", "no 'text' (or 'message') field");
  }
  DecodeResult r;
  r.record = std::move(rec);
  return r;
}

}  // namespace

DecodeResult DecodeRecord(std::string_view bytes, const DecodeOptions& options) {
  if (bytes.size() > options.max_bytes) {
    return Fail("too_large", "record of " + std::to_string(bytes.size()) +
                                 " bytes exceeds the limit of " +
                                 std::to_string(options.max_bytes));
  }
  if (!simdjson::validate_utf8(bytes.data(), bytes.size())) {
    return Fail("invalid_utf8", "the record is not valid UTF-8");
  }
  InputFormat format = options.format;
  if (format == InputFormat::kAuto) {
    size_t i = 0;
    while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\r')) ++i;
    format = (i < bytes.size() && bytes[i] == '{') ? InputFormat::kJson : InputFormat::kText;
  }
  if (format == InputFormat::kJson) return DecodeJson(bytes);
  DecodeResult r;
  r.record.emplace();
  r.record->text.assign(bytes);
  return r;
}

void AppendEmbeddingRecord(std::string& out, const OutputFields& f,
                           std::span<const float> embedding) {
  JsonWriter w;
  w.BeginObject();
  w.Key("id").String(f.id);
  w.Key("original_text").String(f.original_text);
  w.Key("embedding").FloatArray(embedding);
  w.Key("model_name").String(f.model_name);
  w.Key("timestamp").Double(f.input_timestamp);
  w.Key("embedding_dimension").Uint(embedding.size());
  w.Key("processing_timestamp").Double(f.processing_timestamp);
  w.Key("input_timestamp").Double(f.input_timestamp);
  w.Key("input_source").String(f.input_source);
  if (f.chunk) {
    w.Key("parent_id").String(f.parent_id);
    w.Key("chunk_index").Uint(f.chunk_index);
    w.Key("chunk_count").Uint(f.chunk_count);
    w.Key("char_start").Uint(f.char_start);
    w.Key("char_end").Uint(f.char_end);
  }
  w.EndObject();
  out.append(w.view());
}

void AppendDeleteRecord(std::string& out, std::string_view id) {
  JsonWriter w;
  w.BeginObject().Key("id").String(id).Key("op").String("delete").EndObject();
  out.append(w.view());
}

}  // namespace embedstream::pipeline
