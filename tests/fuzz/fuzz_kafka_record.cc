// Kafka record values: pipeline::DecodeRecord (src/pipeline/record.h) in each
// InputFormat, pipeline::MapEvent with seed 002's e-commerce mapping
// (src/pipeline/event_mapping.h) and pipeline::ParseTimestampSeconds.
// Invariants: ok() xor a non-empty error reason from the documented set; a
// decoded record's metadata is a JSON object; a mapped event has an id, text,
// and metadata that is a JSON object holding that text.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "pipeline/event_mapping.h"
#include "pipeline/record.h"

using namespace embedstream;

namespace {

// Seed 002's mapping (src/app/serve_config.h). Compiled once, immutable.
const pipeline::CompiledMapping* g_mapping = nullptr;

bool KnownReason(const std::string& reason) {
  static const std::set<std::string> kReasons = {"too_large",   "invalid_utf8", "invalid_json",
                                                 "missing_id",  "wrong_type",   "empty_text",
                                                 "missing_text"};
  return kReasons.count(reason) != 0;
}

void CheckResult(const pipeline::DecodeResult& r) {
  FUZZ_CHECK(r.ok() != !r.error.reason.empty());
  if (!r.ok()) FUZZ_CHECK(KnownReason(r.error.reason));
}

bool IsJsonObject(const std::string& s) {
  return nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false).is_object();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  pipeline::EventMapping m;
  m.id_field = "event_id";
  m.text_template = "{product.name}. {product.description}";
  m.payload_fields = {"event_type", "user_id", "product.category", "product.price"};
  m.timestamp_field = "timestamp";
  auto compiled = pipeline::CompiledMapping::Compile(std::move(m));
  if (!compiled) __builtin_trap();
  g_mapping = new pipeline::CompiledMapping(std::move(*compiled));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = fuzz::AsText(data, size);

  for (auto format :
       {pipeline::InputFormat::kAuto, pipeline::InputFormat::kJson, pipeline::InputFormat::kText}) {
    for (size_t max_bytes : {size_t{1} << 20, size_t{64}}) {
      const auto r = pipeline::DecodeRecord(bytes, {.format = format, .max_bytes = max_bytes});
      CheckResult(r);
      if (size > max_bytes) FUZZ_CHECK(!r.ok() && r.error.reason == "too_large");
      if (!r.ok()) continue;
      if (format == pipeline::InputFormat::kText) FUZZ_CHECK(r.record->text == bytes);
      if (!r.record->metadata_json.empty()) FUZZ_CHECK(IsJsonObject(r.record->metadata_json));
      if (r.record->timestamp) FUZZ_CHECK(!std::isnan(*r.record->timestamp));
    }
  }

  for (size_t max_bytes : {size_t{1} << 20, size_t{64}}) {
    const auto r = pipeline::MapEvent(bytes, *g_mapping, {.max_bytes = max_bytes});
    CheckResult(r);
    if (size > max_bytes) FUZZ_CHECK(!r.ok() && r.error.reason == "too_large");
    if (!r.ok()) continue;
    const pipeline::InputRecord& rec = *r.record;
    FUZZ_CHECK(!rec.id.empty());
    FUZZ_CHECK(!rec.text.empty());
    const auto meta = nlohmann::json::parse(rec.metadata_json, nullptr, false);
    FUZZ_CHECK(meta.is_object());
    FUZZ_CHECK(meta.contains("text") && meta["text"] == rec.text);
    if (rec.timestamp) FUZZ_CHECK(std::isfinite(*rec.timestamp));
  }

  if (auto seconds = pipeline::ParseTimestampSeconds(bytes)) FUZZ_CHECK(std::isfinite(*seconds));
  return 0;
}
