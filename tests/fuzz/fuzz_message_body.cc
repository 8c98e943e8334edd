// POST /messages bodies: api::ParseMessageRequest (src/api/api_requests.h).
// Invariant: a 400 ApiError with a non-empty code, or a request with a
// non-empty id and text and metadata_json that (when non-empty) is a JSON
// object again.

#include <cstddef>
#include <cstdint>
#include <variant>

#include <nlohmann/json.hpp>

#include "api/api_requests.h"
#include "fuzz_common.h"

using namespace embedstream;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = api::ParseMessageRequest(fuzz::AsText(data, size));
  if (auto* err = std::get_if<api::ApiError>(&result)) {
    FUZZ_CHECK(err->status == 400);
    FUZZ_CHECK(!err->error.empty());
    return 0;
  }
  const auto& request = std::get<api::MessageRequest>(result);
  FUZZ_CHECK(!request.message.id.empty() && request.message.id.size() <= api::kMaxIdBytes);
  FUZZ_CHECK(!request.message.text.empty());
  const std::string& meta = request.message.metadata_json;
  if (!meta.empty()) {
    FUZZ_CHECK(meta.size() <= api::kMaxMetadataBytes);
    const auto parsed = nlohmann::json::parse(meta, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(parsed.is_object());
    if (!request.user_id.empty()) {
      FUZZ_CHECK(parsed.contains("user_id") && parsed["user_id"] == request.user_id);
    }
  }
  return 0;
}
