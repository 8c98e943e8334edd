#pragma once
// The request bodies of POST /messages and POST /embeddings/search
// (docs/API.md): parsed and checked without a server, a store or a model, so
// the rules are unit-tested and fuzzed (tests/fuzz/) on their own. Bytes from
// outside: every failure is an ApiError (a 400 with a stable code), never an
// exception, and no input can make the parse recurse deeper than
// kMaxJsonDepth.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/embedded_store.h"

namespace embedstream::api {

// A 4xx answer: HTTP status, stable error code, human detail.
struct ApiError {
  int status = 400;
  std::string error;
  std::string detail;
};

struct MessageRequest {
  store::NewMessage message;  // id filled in (a new UUIDv4 when not given)
  std::string user_id;        // also in message.metadata_json when given
};

struct SearchRequest {
  std::string query;  // text, or empty when `vector` is given
  std::vector<float> vector;
  size_t limit = 10;     // hits wanted in all, over every page
  size_t offset = 0;     // from "cursor": the ranked hits earlier pages held
  store::Filter filter;  // filter.group_by_parent from "group_by" ("parent", the default)
};

constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxMetadataBytes = 64 * 1024;
constexpr size_t kMaxLimit = 1000;
// The largest list offset (?offset=, ?cursor=); a cursor has at most 12 digits.
constexpr size_t kMaxOffset = 999'999'999'999;
// Deepest nesting a request body may have (objects and arrays), checked while
// parsing: a deeper body is a 400 too_deep before any tree is built or copied.
constexpr int kMaxJsonDepth = 64;

// POST /messages body rules (docs/API.md). Either the request or the error.
std::variant<MessageRequest, ApiError> ParseMessageRequest(std::string_view body);
// POST /documents: a JSON body as POST /messages, or (content type
// text/plain or text/markdown) the text itself, valid UTF-8, with "id",
// "user_id" and "metadata" (a JSON object) as query parameters.
std::variant<MessageRequest, ApiError> ParseDocumentRequest(
    std::string_view body, std::string_view content_type,
    const std::map<std::string, std::string>& query);
// POST /embeddings/search body rules; `dim` is the model's dimension.
std::variant<SearchRequest, ApiError> ParseSearchRequest(std::string_view body, size_t dim);

// Paging cursors (the "next" member of a page that was cut short by
// http.max_response_bytes, given back as ?cursor= or "cursor"): the decimal
// count of items earlier pages held. Opaque to clients; nullopt when it is not
// one.
std::optional<size_t> ParseCursor(std::string_view cursor);
std::string FormatCursor(size_t offset);

// A 400 with this code and detail.
ApiError BadRequest(std::string error, std::string detail);

}  // namespace embedstream::api
