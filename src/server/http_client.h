#pragma once
// HttpClient: a small synchronous HTTP/1.1 client (Boost.Beast) for the CLI
// commands that talk to a running `embedstream serve` and for the benches.
// Plain HTTP only: an https:// URL is refused with an error that says so.
//
// Threads and ownership: one HttpClient is used by one thread at a time (not
// thread-safe); it owns its io_context and one keep-alive connection, which
// Request reuses. A reused connection that the server closed while idle is
// reopened once, transparently, if the request got no answer at all. Stream
// opens its own connection and closes it when it returns.
//
// Errors are values: unavailable (cannot connect, connection lost),
// timeout, invalid_argument (bad URL), io_error (malformed response). A 4xx
// or 5xx is not an Error: it is a response with that status.
//
// Example:
//   auto client = HttpClient::Create("http://localhost:5000");
//   if (!client) return client.error();
//   auto r = client->Request("POST", "/messages", R"({"message":"hi"})",
//                            {{"Content-Type", "application/json"}});
//   if (r && r->status == 202) ...
//   client->Stream("/events", {}, [](std::string_view bytes) { ...; return true; });

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace embedstream::server {

// A parsed base URL: http://host[:port][/base/path].
struct HttpUrl {
  std::string host;       // "localhost", "127.0.0.1", "::1" (no brackets)
  uint16_t port = 80;     // default 80
  std::string base_path;  // "" or "/api" (no trailing slash); prefixed to every target

  // "http://host:port" (+ base path), IPv6 hosts in brackets.
  std::string ToString() const;
  // The Host header value: "host:port".
  std::string HostHeader() const;
};

// Accepts "http://host[:port][/path]" and, for convenience, "host:port"
// without a scheme. Refuses https:// (no TLS), other schemes, user info,
// queries and fragments, and ports outside 1..65535.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; repeats joined with ", "
  std::string body;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  // Request: for writing the request and reading the whole response.
  // Stream: for writing the request and reading the response head.
  std::chrono::milliseconds read_timeout{30000};
  // Stream: the longest silence allowed between two reads of the body
  // (an SSE server sends heartbeats); 0 = wait forever.
  std::chrono::milliseconds stream_idle_timeout{0};
  size_t max_body_bytes = 64 << 20;  // a larger response is an io_error
};

// Receives the body of a stream as it arrives, in pieces of any size (a piece
// may hold part of a line or several lines). Return false to stop.
using StreamCallback = std::function<bool(std::string_view bytes)>;

class HttpClient {
 public:
  static Result<HttpClient> Create(std::string_view base_url, HttpClientOptions options = {});
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  // `target`: path and query ("/messages?limit=5"), appended to the base
  // path. Sends Host, User-Agent, Content-Length and `headers` (add
  // Content-Type yourself). Any status is a response; an Error only when no
  // complete response arrived.
  Result<HttpClientResponse> Request(std::string_view method, std::string_view target,
                                     std::string_view body = {}, const HttpHeaders& headers = {});

  // GET `target` on a new connection and hand the body to `on_data` as it
  // arrives (for text/event-stream). Returns the status and headers (empty
  // body) once the stream ends: the server closed it, `on_data` returned
  // false, or `duration` (if > 0) elapsed. A non-2xx answer is read whole and
  // returned with its body, without calling `on_data`. Errors: as Request, and
  // timeout when the stream is silent for stream_idle_timeout.
  Result<HttpClientResponse> Stream(std::string_view target, const HttpHeaders& headers,
                                    const StreamCallback& on_data,
                                    std::chrono::milliseconds duration = {});

  const HttpUrl& url() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::server
