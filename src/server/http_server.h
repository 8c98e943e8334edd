#pragma once
// HttpServer: an asynchronous HTTP/1.1 server (Boost.Beast) with keep-alive,
// built to hold many idle or streaming connections on few threads: one
// io_context, `io_threads` threads running it, no thread per connection.
//
// Threads and ownership:
//   - Route*/Start/Stop/port are called from the owning thread (main), not
//     from a handler. Routes are registered before Start and fixed after.
//   - Handlers run on the io threads, one request per connection at a time
//     (each connection has a strand). They must be quick; see http_types.h
//     for Handler, AsyncHandler (answer later, from any thread) and
//     StreamHandler (take over the connection: the seam for SSE).
//   - Connections own themselves (shared_ptr held by their pending async
//     operations); Stop closes them, runs their close callbacks and joins
//     the io threads. Respond/StreamSink objects kept after Stop are inert.
//
// Errors: unknown path 404, wrong method 405 (+Allow), body over
// max_body_bytes 413 (the body is not read), malformed HTTP 400, headers over
// 16 KiB or 100 fields 431, a chunk-size line or trailer section over 32 KiB
// 431, a chunk extension over 1 KiB 400 (these close the connection; see
// internal/request_reader.h), connections over max_connections 503 at accept,
// handler exception 500. All are JSON {"error","detail"}. Every response carries Content-Length,
// except streams (chunked).
//
// Metrics (ServerOptions::metrics, default the global registry):
//   embedstream_http_requests_total{method,route,code="2xx".."5xx"}
//   embedstream_http_request_duration_seconds{method,route}
//   embedstream_http_connections_open, embedstream_http_streams_open,
//   embedstream_http_connections_refused_total (over max_connections)
//
// Example:
//   HttpServer server({.port = 5000});
//   server.Route("GET", "/health", [](const HttpRequest&) { return JsonOk(R"({"status":"ok"})");
//   }); if (Status st = server.Start(); !st) return st.error();
//   ...
//   server.Stop();

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/metrics.h"
#include "core/result.h"
#include "server/http_types.h"

namespace embedstream::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 5000;  // 0 = ephemeral; read the bound one with port()
  int io_threads = 1;
  size_t max_body_bytes = 1 << 20;
  // Paths that take larger bodies (POST /documents): exact path -> limit.
  std::vector<std::pair<std::string, size_t>> large_body_paths = {};
  // A connection with nothing to read or write for this long is closed
  // (streams excepted: they send their own heartbeats).
  std::chrono::seconds idle_timeout{60};
  // A response (head and body) not written within this is abandoned and the
  // connection closed: a client that reads slowly cannot hold it for longer.
  std::chrono::seconds write_timeout{30};
  // Connections open at once (streams included). One more is answered 503
  // (Retry-After: 1) and closed at accept, before anything is read.
  size_t max_connections = 4096;
  // A stream with more than this many bytes queued (a client that does not
  // read) is aborted; StreamSink::Send then returns false.
  size_t stream_queue_max_bytes = 4 << 20;
  // The same for every stream together: a Send that would take the total
  // over this aborts its stream, so slow clients cannot add up unbounded.
  size_t streams_max_total_bytes = 64 << 20;
  // Runs before routing on every request (see RequestFilter): auth, CORS,
  // content types. Empty: every request is routed.
  RequestFilter filter = {};
  MetricsRegistry* metrics = nullptr;  // null: MetricsRegistry::Global(); must outlive the server
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `path`: exact ("/health") or a prefix pattern ending in "/*"
  // ("/messages/*"); `method`: "GET", "POST", ... (case-sensitive). Before
  // Start only. A repeated (method, path) replaces the earlier handler.
  void Route(const std::string& method, const std::string& path, Handler handler);
  void RouteAsync(const std::string& method, const std::string& path, AsyncHandler handler);
  void RouteStream(const std::string& method, const std::string& path, StreamHandler handler);

  // Binds and listens (an Error naming the address if that fails, e.g. the
  // port is taken), starts the io threads and returns.
  Status Start();
  // Closes the acceptor and every connection, joins the io threads.
  // Idempotent; must not be called from a handler.
  void Stop();
  // The bound port (the ephemeral one with port 0); 0 before Start.
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::server
