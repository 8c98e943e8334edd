#include "server/internal/request_reader.h"

#include <fmt/format.h>

#include "server/url.h"

namespace embedstream::server::internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

std::string LowerCase(beast::string_view s) {
  std::string out(s.data(), s.size());
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Beast keeps a reference to the callback, so it lives here, stateless.
void OnChunkHeader(uint64_t /*size*/, beast::string_view extensions, beast::error_code& ec) {
  if (extensions.size() > kMaxChunkExtensionBytes) ec = http::error::bad_chunk_extension;
}
auto g_on_chunk_header = &OnChunkHeader;

}  // namespace

void ConfigureRequestParser(RequestParser& parser, size_t max_body_bytes) {
  parser.body_limit(max_body_bytes);
  parser.header_limit(kHeaderLimitBytes);
  parser.on_chunk_header(g_on_chunk_header);
}

std::optional<HttpResponse> CheckFieldCount(const RequestMessage& message) {
  size_t n = 0;
  for (auto it = message.begin(); it != message.end(); ++it) {
    if (++n > kMaxHeaderFields) {
      return JsonError(
          431, "request_header_fields_too_large",
          fmt::format("the request has more than {} header and trailer fields", kMaxHeaderFields));
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> ReadErrorResponse(beast::error_code ec, size_t max_body_bytes) {
  if (ec == http::error::body_limit) {
    return JsonError(413, "payload_too_large",
                     fmt::format("the request body is over {} bytes", max_body_bytes));
  }
  if (ec == http::error::header_limit) {
    return JsonError(431, "request_header_fields_too_large",
                     fmt::format("request headers are over {} bytes", kHeaderLimitBytes));
  }
  if (ec == http::error::buffer_overflow) {
    return JsonError(431, "request_header_fields_too_large",
                     fmt::format("a request line, chunk-size line or trailer section is over {} "
                                 "bytes",
                                 kReadBufferMaxBytes));
  }
  if (ec == http::error::bad_chunk_extension) {
    return JsonError(
        400, "bad_request",
        fmt::format("a chunk extension is malformed or over {} bytes", kMaxChunkExtensionBytes));
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return JsonError(400, "bad_request", "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

HttpRequest ToHttpRequest(RequestMessage&& message) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  auto [path, raw_query] = SplitTarget(request.target);
  request.path = std::move(path);
  request.query = ParseQuery(raw_query);
  for (const auto& field : message) {
    auto [it, inserted] =
        request.headers.try_emplace(LowerCase(field.name_string()), std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second.append(field.value().data(), field.value().size());
    }
  }
  request.body = std::move(message.body());
  return request;
}

}  // namespace embedstream::server::internal
