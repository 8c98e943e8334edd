// POST /messages bodies: app::ParseMessageRequest (src/app/api_requests.h).
// Invariant: a 400 ApiError with a non-empty code, or a request with a
// non-empty id and text and metadata_json that (when non-empty) is a JSON
// object again.

#include <cstddef>
#include <cstdint>
#include <variant>

#include <nlohmann/json.hpp>

#include "app/api_requests.h"
#include "fuzz_common.h"

using namespace embedstream;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = app::ParseMessageRequest(fuzz::AsText(data, size));
  if (auto* err = std::get_if<app::ApiError>(&result)) {
    FUZZ_CHECK(err->status == 400);
    FUZZ_CHECK(!err->error.empty());
    return 0;
  }
  const auto& request = std::get<app::MessageRequest>(result);
  FUZZ_CHECK(!request.message.id.empty() && request.message.id.size() <= app::kMaxIdBytes);
  FUZZ_CHECK(!request.message.text.empty());
  const std::string& meta = request.message.metadata_json;
  if (!meta.empty()) {
    FUZZ_CHECK(meta.size() <= app::kMaxMetadataBytes);
    const auto parsed = nlohmann::json::parse(meta, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(parsed.is_object());
    if (!request.user_id.empty()) {
      FUZZ_CHECK(parsed.contains("user_id") && parsed["user_id"] == request.user_id);
    }
  }
  return 0;
}
