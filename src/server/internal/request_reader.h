#pragma once
// The bounds of one HTTP request and the step from Beast's parsed message to
// our HttpRequest: the part of the server that decodes outside bytes, apart
// from the socket, so it is unit-tested and fuzzed (tests/fuzz/http_request)
// exactly as Session uses it.
//
// Memory per connection is bounded by these, whatever the client sends:
//   - the read buffer never holds more than kReadBufferMaxBytes: a request
//     line, header section, chunk-size line or trailer section that does not
//     fit is a 431 (Beast buffers a chunk line and the trailers whole and has
//     no limit of its own for them);
//   - headers: kHeaderLimitBytes in all (431) and kMaxHeaderFields fields,
//     trailers included (431);
//   - a chunk extension over kMaxChunkExtensionBytes is a 400;
//   - the body: ServerOptions::max_body_bytes (413), chunked or not.

#include <cstddef>
#include <cstdint>
#include <optional>

#include <boost/beast/http.hpp>

#include "server/http_types.h"

namespace embedstream::server::internal {

inline constexpr uint32_t kHeaderLimitBytes = 16 * 1024;
inline constexpr size_t kReadBufferMaxBytes = 32 * 1024;
inline constexpr size_t kMaxHeaderFields = 100;
inline constexpr size_t kMaxChunkExtensionBytes = 1024;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using RequestMessage = boost::beast::http::request<boost::beast::http::string_body>;

// Sets the body, header and chunk-extension limits on a fresh parser.
void ConfigureRequestParser(RequestParser& parser, size_t max_body_bytes);

// The 431 for a message with more than kMaxHeaderFields fields (checked after
// the header and again after chunked trailers), else nullopt.
std::optional<HttpResponse> CheckFieldCount(const RequestMessage& message);

// The answer to a read that failed with `ec` (then the connection closes), or
// nullopt when there is nobody to answer (reset, timeout, end of stream).
std::optional<HttpResponse> ReadErrorResponse(boost::beast::error_code ec, size_t max_body_bytes);

// Method, target, decoded path and query, lower-cased headers (repeats joined
// with ", "), body.
HttpRequest ToHttpRequest(RequestMessage&& message);

}  // namespace embedstream::server::internal
