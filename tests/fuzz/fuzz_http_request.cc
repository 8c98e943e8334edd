// HTTP/1.1 requests off the socket: the server's request reader
// (src/server/internal/request_reader.h) driven exactly as Session drives it
// (src/server/internal/session.cc): one flat_buffer of at most
// kReadBufferMaxBytes per connection, a fresh configured parser per request,
// the header read (eager off), CheckFieldCount, the body read (eager on),
// CheckFieldCount again (trailers), ToHttpRequest and the route lookup in a
// Router holding serve's routes; keep-alive requests follow on the same
// buffer. The socket reads are Beast's read_some loop (boost/beast/http/impl/
// read.hpp) over the input cut in pieces.
//
// Input: if byte 0 is below 0x10, it is a count k (0..15) of the bytes after
// it, each a piece size (1..256) that the reads cycle through; the rest is the
// byte stream. Otherwise the whole input is the stream, read as Beast would
// (as much as fits). So the seed corpus can be plain HTTP.
//
// Invariants (__builtin_trap): the buffer never holds more than
// kReadBufferMaxBytes; a body never exceeds the configured limit (1 MiB); each
// limit error maps to its status (body_limit 413, header_limit and
// buffer_overflow 431, bad_chunk_extension 400, other parse errors 400, end of
// stream / partial message: no answer); CheckFieldCount refuses exactly the
// messages with more than kMaxHeaderFields fields; ToHttpRequest keeps method,
// target and body; a route found has the method asked for and matches the path.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/metrics.h"
#include "fuzz_common.h"
#include "server/internal/request_reader.h"
#include "server/internal/router.h"

using namespace embedstream;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using server::internal::kMaxHeaderFields;
using server::internal::kReadBufferMaxBytes;

namespace {

constexpr size_t kBodyLimit = 1 << 20;
constexpr int kMaxRequestsPerConnection = 32;

// Filled once in LLVMFuzzerInitialize, read-only afterwards (Find is const).
MetricsRegistry* g_registry = nullptr;
server::internal::Router* g_router = nullptr;
// FUZZ_VERBOSE=1: one line per request or error on stderr (to check seeds).
bool g_verbose = false;

void AddRoute(const char* method, const char* pattern) {
  auto route = std::make_unique<server::internal::Route>();
  route->method = method;
  route->pattern = pattern;
  route->handler = [](const server::HttpRequest&) { return server::HttpResponse{}; };
  g_router->Add(std::move(route));
}

// The client's side of the socket: the input, in pieces.
class Feed {
 public:
  Feed(const uint8_t* data, size_t size) {
    if (size > 0 && data[0] < 0x10) {
      const size_t k = std::min<size_t>(data[0], size - 1);
      for (size_t i = 0; i < k; ++i) pieces_.push_back(size_t{data[1 + i]} + 1);
      data += 1 + k;
      size -= 1 + k;
    }
    data_ = data;
    size_ = size;
  }
  // A read_some: 0 bytes means end of stream.
  size_t ReadSome(net::mutable_buffer into) {
    size_t n = std::min(into.size(), size_ - pos_);
    if (!pieces_.empty()) n = std::min(n, pieces_[next_++ % pieces_.size()]);
    std::memcpy(into.data(), data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  std::vector<size_t> pieces_;
  size_t next_ = 0;
};

// boost::beast::http::detail::read_some (1.74) with Feed as the stream.
beast::error_code ReadSome(Feed& feed, beast::flat_buffer& buffer,
                           server::internal::RequestParser& parser) {
  beast::error_code ec;
  bool parse_first = buffer.size() != 0;
  for (;;) {
    if (parse_first) {
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec != http::error::need_more) return ec;
    }
    parse_first = true;
    const size_t size = beast::read_size(buffer, 65536);
    if (size == 0) return http::error::buffer_overflow;
    std::optional<beast::flat_buffer::mutable_buffers_type> space;
    try {
      space.emplace(buffer.prepare(size));
    } catch (const std::length_error&) {
      return http::error::buffer_overflow;  // beast::detail::dynamic_buffer_prepare
    }
    const size_t n = feed.ReadSome(*space);
    buffer.commit(n);
    FUZZ_CHECK(buffer.size() <= kReadBufferMaxBytes);
    if (n == 0) {  // eof
      if (parser.got_some()) {
        ec = {};
        parser.put_eof(ec);
        if (ec) return ec;
        FUZZ_CHECK(parser.is_done());
        return ec;
      }
      return http::error::end_of_stream;
    }
  }
}

// What Session answers to a failed read, checked against the limits.
void CheckReadError(beast::error_code ec) {
  const auto answer = server::internal::ReadErrorResponse(ec, kBodyLimit);
  if (g_verbose) {
    std::fprintf(stderr, "read error: %s -> %d\n", ec.message().c_str(),
                 answer ? answer->status : 0);
  }
  if (ec == http::error::body_limit) {
    FUZZ_CHECK(answer && answer->status == 413);
  } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    FUZZ_CHECK(answer && answer->status == 431);
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    FUZZ_CHECK(!answer);
  } else if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    FUZZ_CHECK(answer && answer->status == 400);  // bad_chunk_extension and other parse errors
  }
  if (answer) FUZZ_CHECK(!answer->body.empty());
}

size_t FieldCount(const server::internal::RequestMessage& message) {
  return static_cast<size_t>(std::distance(message.begin(), message.end()));
}

// Session's answer to the field count, checked; true when it lets the request on.
bool FieldCountOk(const server::internal::RequestMessage& message) {
  const auto refused = server::internal::CheckFieldCount(message);
  FUZZ_CHECK(refused.has_value() == (FieldCount(message) > kMaxHeaderFields));
  if (refused) FUZZ_CHECK(refused->status == 431);
  if (refused && g_verbose)
    std::fprintf(stderr, "refused: %zu fields -> 431\n", FieldCount(message));
  return !refused;
}

// Reads until `done` holds or an error; the error, if any.
template <class Done>
beast::error_code ReadUntil(Feed& feed, beast::flat_buffer& buffer,
                            server::internal::RequestParser& parser, Done done) {
  while (!done()) {
    if (auto ec = ReadSome(feed, buffer, parser)) return ec;
  }
  return {};
}

void CheckRequest(server::internal::RequestMessage message) {
  const std::string method(message.method_string());
  const std::string target(message.target());
  const size_t body_size = message.body().size();
  FUZZ_CHECK(body_size <= kBodyLimit);
  const server::HttpRequest request = server::internal::ToHttpRequest(std::move(message));
  FUZZ_CHECK(request.method == method);
  FUZZ_CHECK(request.target == target);
  FUZZ_CHECK(request.body.size() == body_size);
  for (const auto& [name, value] : request.headers) {
    for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  }
  const auto match = g_router->Find(request.method, request.path);
  if (g_verbose) {
    const std::string routed = match.route           ? match.route->pattern
                               : match.allow.empty() ? "404"
                                                     : "405, allow " + match.allow;
    std::fprintf(stderr, "request: %s %s (path %s, %zu headers, %zu body bytes) -> %s\n",
                 request.method.c_str(), request.target.c_str(), request.path.c_str(),
                 request.headers.size(), request.body.size(), routed.c_str());
  }
  if (match.route) {
    FUZZ_CHECK(match.route->method == request.method);
    FUZZ_CHECK(match.allow.empty());
    const std::string& pattern = match.route->pattern;
    if (pattern.ends_with("/*")) {
      FUZZ_CHECK(request.path.starts_with(pattern.substr(0, pattern.size() - 1)));
    } else {
      FUZZ_CHECK(request.path == pattern);
    }
  } else if (!match.allow.empty()) {  // a 405: the allowed methods are others
    std::string_view allow = match.allow;
    while (!allow.empty()) {
      const size_t comma = allow.find(", ");
      FUZZ_CHECK(allow.substr(0, comma) != request.method);
      allow = comma == std::string_view::npos ? std::string_view() : allow.substr(comma + 2);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  const char* verbose = std::getenv("FUZZ_VERBOSE");
  g_verbose = verbose != nullptr && *verbose != '\0' && *verbose != '0';
  g_registry = new MetricsRegistry();
  g_router = new server::internal::Router(*g_registry);
  // serve's routes (src/api/api_routes.cc).
  for (const char* path : {"/health", "/ready", "/stats", "/config", "/metrics", "/", "/messages",
                           "/messages/*", "/status", "/events"}) {
    AddRoute("GET", path);
  }
  AddRoute("POST", "/messages");
  AddRoute("POST", "/embeddings/search");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Feed feed(data, size);
  beast::flat_buffer buffer(kReadBufferMaxBytes);  // Session's buffer_
  for (int i = 0; i < kMaxRequestsPerConnection; ++i) {
    // Session::ReadHeader
    server::internal::RequestParser parser;
    server::internal::ConfigureRequestParser(parser, kBodyLimit);
    parser.eager(false);  // async_read_header
    if (auto ec = ReadUntil(feed, buffer, parser, [&] { return parser.is_header_done(); })) {
      CheckReadError(ec);
      return 0;  // answered (or not) and closed
    }
    // Session::OnReadHeader
    if (!FieldCountOk(parser.get())) return 0;
    // (an Expect: 100-continue only writes the interim response)
    // Session::ReadBody
    if (!parser.is_done()) {
      parser.eager(true);  // async_read
      if (auto ec = ReadUntil(feed, buffer, parser, [&] { return parser.is_done(); })) {
        CheckReadError(ec);
        return 0;
      }
    }
    // Session::Dispatch
    server::internal::RequestMessage message = parser.release();
    if (!FieldCountOk(message)) return 0;  // trailers
    const bool keep_alive = message.keep_alive();
    CheckRequest(std::move(message));
    if (!keep_alive) return 0;
  }
  return 0;
}
