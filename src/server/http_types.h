#pragma once
// Request/response values and handler signatures of the HTTP server
// (http_server.h). Plain data: no Boost types leak out of src/server.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace embedstream::server {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // as sent: "/messages?limit=5"
  std::string path;                            // url-decoded, without the query: "/messages"
  std::map<std::string, std::string> query;    // url-decoded; first value of a repeated key
  std::map<std::string, std::string> headers;  // lower-case names; repeats joined with ", "
  std::string body;
};

struct HttpResponse {
  int status = 200;                               // 200..599; anything else is answered as a 500
  std::string content_type = "application/json";  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A synchronous handler. Runs on an io thread: it must be quick (no blocking
// I/O, no waiting on the pipeline), or every connection of that thread waits.
// With io_threads > 1 it may run on several threads at once. An exception
// becomes a 500 JSON error; the server keeps serving.
using Handler = std::function<HttpResponse(const HttpRequest&)>;

// Completes an AsyncHandler's request. Callable once from any thread; later
// calls are ignored. If every copy is destroyed without a call, the client
// gets a 500 ("handler did not respond").
using Respond = std::function<void(HttpResponse)>;

// For work that must wait (e.g. POST /messages "durable before the reply"):
// starts on an io thread, must return quickly, and calls `respond` later from
// any thread. The connection reads nothing more until it is answered.
using AsyncHandler = std::function<void(const HttpRequest&, Respond respond)>;

// The connection of a streaming response (SSE), after its head was sent.
// Thread-safe: Send/Close may be called from any thread (e.g. an SSE hub).
// Chunks are written in order; HTTP/1.1 clients get chunked encoding.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Queues bytes for the client. False once the stream has ended, and when the
  // client is too slow (more than ServerOptions::stream_queue_max_bytes
  // queued): the stream is then aborted. Never blocks.
  virtual bool Send(std::string chunk) = 0;
  // Ends the stream after the queued chunks are written; idempotent.
  virtual void Close() = 0;
  // False once the stream has ended (client gone, Close, server Stop).
  virtual bool IsOpen() const = 0;
  // `on_close` runs once when the stream ends for any reason, on an io thread;
  // if it already has ended, at once on the calling thread. Keep it quick.
  virtual void SetOnClose(std::function<void()> on_close) = 0;
};

// A streaming route (the seam for GET /events). Runs on an io thread like a
// Handler. Its response is the head of the stream: for a 2xx status, the
// status, content_type and headers are sent without a Content-Length, the
// body (if any) is the first chunk, and the connection then belongs to the
// sink, which the handler keeps (e.g. registers with a hub) and feeds later.
// Any other status is sent as an ordinary response and the sink is closed.
using StreamHandler =
    std::function<HttpResponse(const HttpRequest&, const std::shared_ptr<StreamSink>& sink)>;

// Extra response headers, in order.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Runs on an io thread before a request is routed, for every request that
// parsed (unknown paths included): returns the answer to send instead of
// routing it (a 401, a 415, a CORS preflight's 204), or nullopt to route it.
// Headers it appends to `extra` go on whatever answers the request, the
// stream head included (e.g. Access-Control-Allow-Origin). Must be quick and
// thread-safe; an exception is a 500.
using RequestFilter =
    std::function<std::optional<HttpResponse>(const HttpRequest& request, HeaderList& extra)>;

// {"error": error, "detail": detail} with the given status.
HttpResponse JsonError(int status, std::string_view error, std::string_view detail);
// `body` is already-serialised JSON.
HttpResponse JsonOk(std::string body, int status = 200);

}  // namespace embedstream::server
