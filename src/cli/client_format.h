#pragma once
// The pure pieces of the HTTP client commands (cli/client_commands.h): the
// request bodies they send and the tables they print from the server's JSON
// (docs/API.md). No I/O, so they are tested without a server.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace embedstream::cli {

// One `--filter key=value`: the value is read as a JSON scalar when it is one
// (42, 4.5, true, false, null, "quoted") and as a plain string otherwise
// (en, 007, hello world). Objects and arrays are refused (the API matches
// scalars). `value_json` is serialised JSON.
struct FilterTerm {
  std::string key;
  std::string value_json;
};
Result<FilterTerm> ParseFilterTerm(std::string_view arg);

// {"query": ..., "limit": k, "filter": {...}} for POST /embeddings/search.
// A key given twice is an error.
Result<std::string> BuildSearchBody(const std::string& query, int limit,
                                    const std::vector<std::string>& filters);

// {"message": text, "id"?, "metadata"?, "user_id"?} for POST /messages;
// `metadata_json` must be a JSON object when given.
Result<std::string> BuildCreateBody(const std::string& text, const std::string& id,
                                    const std::string& metadata_json, const std::string& user_id);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view s);

// Readable renderings of the server's JSON answers; an Error when the body is
// not the JSON the API promises.
Result<std::string> FormatMessageList(std::string_view body);    // GET /messages
Result<std::string> FormatMessage(std::string_view body);        // GET /messages/{id}
Result<std::string> FormatSearchResults(std::string_view body);  // POST /embeddings/search
Result<std::string> FormatKeyValues(std::string_view body);      // any object, flattened
// One SSE event as `events` prints it: "<id> <event> <data>", or the data
// alone with json.
std::string FormatEventLine(std::string_view id, std::string_view event, std::string_view data,
                            bool json);

// "1700000000.123" -> "2023-11-14 22:13:20" (UTC).
std::string FormatUnixTime(double seconds);
// At most `max_chars` code points, control characters as spaces, "…" when cut.
std::string Ellipsize(std::string_view text, size_t max_chars);

namespace internal {

// Shared with client_commands.cc: the server's JSON, read without exceptions.
std::optional<nlohmann::json> ParseJson(std::string_view body);
Error NotApiJson(std::string_view what);
// A JSON value for a table cell: strings without quotes, the rest as JSON.
std::string Cell(const nlohmann::json& v);

}  // namespace internal

}  // namespace embedstream::cli
