// POST /embeddings/search bodies: api::ParseSearchRequest(body, 384), and the
// paging cursor (api::ParseCursor / FormatCursor) on the same bytes.
// Invariants: a 400 with a code, or exactly one of query / a 384-number finite
// vector, 1 <= limit <= kMaxLimit, offset < limit, filter values that are JSON;
// FormatCursor(ParseCursor(x)) == x for canonical cursors, and every
// FormatCursor(n) parses back to n.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "api/api_requests.h"
#include "fuzz_common.h"

using namespace embedstream;

namespace {
constexpr size_t kDim = 384;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsText(data, size);
  auto result = api::ParseSearchRequest(text, kDim);
  if (auto* err = std::get_if<api::ApiError>(&result)) {
    FUZZ_CHECK(err->status == 400);
    FUZZ_CHECK(!err->error.empty());
  } else {
    const auto& request = std::get<api::SearchRequest>(result);
    FUZZ_CHECK(request.query.empty() != request.vector.empty());
    if (!request.vector.empty()) {
      FUZZ_CHECK(request.vector.size() == kDim);
      for (float f : request.vector) FUZZ_CHECK(std::isfinite(f));
    }
    FUZZ_CHECK(request.limit >= 1 && request.limit <= api::kMaxLimit);
    FUZZ_CHECK(request.offset < request.limit);
    for (const auto& [field, value] : request.filter.equals) {
      FUZZ_CHECK(!field.empty());
      const auto parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
      FUZZ_CHECK(!parsed.is_discarded() && !parsed.is_object() && !parsed.is_array());
    }
  }

  // The cursor decoder on the raw bytes (?cursor= arrives percent-decoded, so
  // any bytes at all).
  if (auto offset = api::ParseCursor(text)) {
    const std::string again = api::FormatCursor(*offset);
    FUZZ_CHECK(api::ParseCursor(again) == offset);
    // Canonical (no leading zeros): the same text.
    if (text.size() == 1 || text.front() != '0') FUZZ_CHECK(again == text);
  }
  if (size >= sizeof(uint64_t)) {
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(n); ++i) n = (n << 8) | data[i];
    n %= 1000000000000ull;  // what 12 digits hold
    FUZZ_CHECK(api::ParseCursor(api::FormatCursor(n)) == n);
  }
  return 0;
}
