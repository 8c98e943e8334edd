#include "server/internal/session.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "core/logging.h"
#include "server/internal/request_reader.h"

namespace embedstream::server::internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

// After an error response that closes the connection, unread request bytes
// are drained (up to this much, for this long) so the client reads our
// response instead of a reset.
constexpr size_t kLingerMaxBytes = 1 << 20;
constexpr std::chrono::seconds kLingerTimeout{2};

// Posts fn(session) to the session's strand from any thread, unless the
// session is gone or the server is stopping (see ServerState::post_mu). The
// session is locked inside the shared lock, so no reference to it escapes to
// a thread that could outlive the io_context.
template <typename Fn>
bool PostToSession(ServerState& state, const std::weak_ptr<Session>& weak, Fn fn) {
  std::shared_lock<std::shared_mutex> lock(state.post_mu);
  if (state.stopping.load()) return false;
  std::shared_ptr<Session> session = weak.lock();
  if (!session) return false;
  const Executor executor = session->executor();
  net::post(executor,
            [session = std::move(session), fn = std::move(fn)]() mutable { fn(*session); });
  return true;
}

}  // namespace

// The state behind a Respond function: its copies share one of these; the
// first call wins; the last copy's destruction without a call answers 500.
class PendingResponse {
 public:
  PendingResponse(std::weak_ptr<Session> session, std::shared_ptr<ServerState> state,
                  uint64_t request_seq, std::string what)
      : session_(std::move(session)),
        state_(std::move(state)),
        request_seq_(request_seq),
        what_(std::move(what)) {}
  ~PendingResponse() {
    if (done_.load()) return;
    state_->log->error("{}: async handler dropped its Respond without answering", what_);
    Respond(JsonError(500, "internal", "the handler did not respond"));
  }
  PendingResponse(const PendingResponse&) = delete;
  PendingResponse& operator=(const PendingResponse&) = delete;

  void Respond(HttpResponse response) {
    if (done_.exchange(true)) return;
    PostToSession(*state_, session_,
                  [seq = request_seq_, response = std::move(response)](Session& s) mutable {
                    s.DeliverAsyncResponse(seq, std::move(response));
                  });
  }

 private:
  std::weak_ptr<Session> session_;
  std::shared_ptr<ServerState> state_;
  const uint64_t request_seq_;
  const std::string what_;
  std::atomic<bool> done_{false};
};

class StreamSinkImpl final : public StreamSink,
                             public std::enable_shared_from_this<StreamSinkImpl> {
 public:
  StreamSinkImpl(std::weak_ptr<Session> session, std::shared_ptr<ServerState> state)
      : session_(std::move(session)), state_(std::move(state)) {}

  bool Send(std::string chunk) override {
    if (!open_.load()) return false;
    if (chunk.empty()) return true;
    const size_t n = chunk.size();
    const size_t limit = state_->options.stream_queue_max_bytes;
    const size_t total_limit = state_->options.streams_max_total_bytes;
    const bool over = queued_bytes_.fetch_add(n) + n > limit;
    const bool over_total = state_->stream_bytes_queued.fetch_add(n) + n > total_limit;
    if (over || over_total) {
      queued_bytes_.fetch_sub(n);
      state_->stream_bytes_queued.fetch_sub(n);
      if (open_.exchange(false)) {
        if (over) {
          state_->log->warn("stream client too slow: over {} bytes queued; closing it", limit);
        } else {
          state_->log->warn(
              "streams hold over {} bytes queued in all; closing the one that "
              "would add more",
              total_limit);
        }
        PostToSession(*state_, session_,
                      [self = shared_from_this()](Session& s) { s.AbortStream(self.get()); });
      }
      return false;
    }
    if (!PostToSession(*state_, session_,
                       [self = shared_from_this(), c = std::move(chunk)](Session& s) mutable {
                         s.QueueStreamChunk(self.get(), std::move(c));
                       })) {
      queued_bytes_.fetch_sub(n);
      state_->stream_bytes_queued.fetch_sub(n);
      return false;
    }
    return true;
  }

  void Close() override {
    if (!open_.load()) return;
    PostToSession(*state_, session_,
                  [self = shared_from_this()](Session& s) { s.CloseStream(self.get()); });
  }

  bool IsOpen() const override { return open_.load(); }

  void SetOnClose(std::function<void()> on_close) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (ended_) {
      lock.unlock();
      if (on_close) on_close();
      return;
    }
    on_close_ = std::move(on_close);
  }

  // Session side, on its strand.
  void Added(size_t n) {
    queued_bytes_.fetch_add(n);
    state_->stream_bytes_queued.fetch_add(n);
  }
  void Drained(size_t n) {
    queued_bytes_.fetch_sub(n);
    state_->stream_bytes_queued.fetch_sub(n);
  }
  void MarkEnded() {
    open_.store(false);
    std::function<void()> on_close;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) return;
      ended_ = true;
      on_close = std::move(on_close_);
    }
    if (!on_close) return;
    try {
      on_close();
    } catch (const std::exception& e) {
      state_->log->error("stream on_close callback threw: {}", e.what());
    }
  }

 private:
  std::weak_ptr<Session> session_;
  std::shared_ptr<ServerState> state_;
  std::atomic<bool> open_{true};
  std::atomic<size_t> queued_bytes_{0};
  std::mutex mu_;
  bool ended_ = false;
  std::function<void()> on_close_;
};

// ---- ServerState ----

ServerState::ServerState(ServerOptions opts, MetricsRegistry& registry)
    : options(std::move(opts)),
      router(registry),
      log(GetLogger("server")),
      connections_open(registry.GetGauge("embedstream_http_connections_open",
                                         "Open HTTP connections (streams included).")),
      streams_open(
          registry.GetGauge("embedstream_http_streams_open", "Open streaming (SSE) responses.")),
      connections_refused(registry.GetCounter(
          "embedstream_http_connections_refused_total",
          "Connections answered 503 at accept because http.max_connections were open.")) {}

// ---- Session: reading ----

Session::Session(tcp::socket socket, std::shared_ptr<ServerState> state, uint64_t id)
    : state_(std::move(state)),
      id_(id),
      executor_(socket.get_executor()),
      stream_(std::move(socket)),
      buffer_(kReadBufferMaxBytes) {
  state_->connections_open.Add(1);
}

Session::~Session() {
  state_->connections_open.Add(-1);
  std::lock_guard<std::mutex> lock(state_->sessions_mu);
  state_->sessions.erase(id_);
}

void Session::Start() { ReadHeader(); }

void Session::ReadHeader() {
  if (state_->stopping.load()) return CloseSocket();
  phase_ = Phase::kReading;
  parser_.emplace();
  // The largest limit until the path is known (OnReadHeader narrows it).
  size_t limit = state_->options.max_body_bytes;
  for (const auto& [path, bytes] : state_->options.large_body_paths) limit = std::max(limit, bytes);
  ConfigureRequestParser(*parser_, limit);
  stream_.expires_after(state_->options.idle_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnReadHeader(ec); });
}

void Session::OnReadHeader(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  const auto& message = parser_->get();
  if (auto refused = CheckFieldCount(message)) return RefuseRequest(std::move(*refused));
  body_limit_ = state_->options.max_body_bytes;
  if (!state_->options.large_body_paths.empty()) {
    const std::string_view target(message.target().data(), message.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    for (const auto& [p, bytes] : state_->options.large_body_paths) {
      if (path == p) body_limit_ = bytes;
    }
  }
  if (const auto length = parser_->content_length(); length && *length > body_limit_) {
    return RefuseRequest(*ReadErrorResponse(http::error::body_limit, body_limit_));
  }
  parser_->body_limit(body_limit_);
  if (!parser_->is_done() && message.version() >= 11 &&
      beast::iequals(message[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(state_->options.idle_timeout);
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code write_ec, size_t) {
                       if (write_ec) return self->CloseSocket();
                       self->ReadBody();
                     });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return OnReadBody({});
  stream_.expires_after(state_->options.idle_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnReadBody(ec); });
}

void Session::OnReadBody(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  Dispatch(parser_->release());
}

void Session::OnReadError(beast::error_code ec) {
  if (ec == net::error::operation_aborted || phase_ == Phase::kClosed) return;
  if (ec == http::error::end_of_stream) {  // the client closed between requests
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return CloseSocket();
  }
  if (ec == beast::error::timeout || ec == http::error::partial_message) return CloseSocket();

  // Answer what we can, then close: the rest of the stream cannot be trusted.
  if (auto answer = ReadErrorResponse(ec, body_limit_)) {
    return RefuseRequest(std::move(*answer));
  }
  CloseSocket();  // connection reset and the like: nobody to answer
}

void Session::RefuseRequest(HttpResponse response) {
  request_start_ = std::chrono::steady_clock::now();
  probe_ = &state_->router.unmatched_probe();
  version_ = parser_->is_header_done() ? parser_->get().version() : 11;
  keep_alive_ = false;
  extra_headers_.clear();
  WriteResponse(std::move(response), CloseMode::kLinger);
}

// ---- Session: dispatch ----

void Session::Dispatch(http::request<http::string_body> message) {
  if (auto refused = CheckFieldCount(message))
    return RefuseRequest(std::move(*refused));  // trailers
  request_start_ = std::chrono::steady_clock::now();
  ++request_seq_;
  version_ = message.version();
  keep_alive_ = message.keep_alive();
  const HttpRequest request = ToHttpRequest(std::move(message));

  extra_headers_.clear();
  if (state_->options.filter) {
    std::optional<HttpResponse> answer;
    try {
      answer = state_->options.filter(request, extra_headers_);
    } catch (const std::exception& e) {
      state_->log->error("{} {}: request filter threw: {}", request.method, request.target,
                         e.what());
      answer = JsonError(500, "internal", "the request filter failed; see the server log");
    }
    if (answer) {
      probe_ = &state_->router.unmatched_probe();
      return WriteResponse(std::move(*answer), CloseMode::kKeepAlive);
    }
  }

  const Router::Match match = state_->router.Find(request.method, request.path);
  if (match.route == nullptr) {
    probe_ = &state_->router.unmatched_probe();
    if (match.allow.empty()) {
      return WriteResponse(
          JsonError(404, "not_found",
                    fmt::format("no route for {} {}", request.method, request.path)),
          CloseMode::kKeepAlive);
    }
    HttpResponse response = JsonError(405, "method_not_allowed",
                                      fmt::format("{} is not allowed on {}; allowed: {}",
                                                  request.method, request.path, match.allow));
    response.headers.emplace_back("Allow", match.allow);
    return WriteResponse(std::move(response), CloseMode::kKeepAlive);
  }

  const Route& route = *match.route;
  probe_ = route.probe.get();
  switch (route.kind) {
    case Route::Kind::kSync: {
      HttpResponse response;
      try {
        response = route.handler(request);
      } catch (const std::exception& e) {
        state_->log->error("{} {}: handler threw: {}", request.method, request.target, e.what());
        response = JsonError(500, "internal", "the handler failed; see the server log");
      } catch (...) {
        state_->log->error("{} {}: handler threw a non-exception", request.method, request.target);
        response = JsonError(500, "internal", "the handler failed; see the server log");
      }
      return WriteResponse(std::move(response), CloseMode::kKeepAlive);
    }
    case Route::Kind::kAsync:
      return RunAsync(route, request);
    case Route::Kind::kStream:
      return RunStream(route, request);
  }
}

void Session::RunAsync(const Route& route, const HttpRequest& request) {
  phase_ = Phase::kAwaitingResponse;
  self_while_awaiting_ = shared_from_this();
  auto pending = std::make_shared<PendingResponse>(
      weak_from_this(), state_, request_seq_, fmt::format("{} {}", request.method, request.target));
  Respond respond = [pending](HttpResponse response) { pending->Respond(std::move(response)); };
  try {
    route.async_handler(request, std::move(respond));
  } catch (const std::exception& e) {
    state_->log->error("{} {}: handler threw: {}", request.method, request.target, e.what());
    pending->Respond(JsonError(500, "internal", "the handler failed; see the server log"));
  } catch (...) {
    state_->log->error("{} {}: handler threw a non-exception", request.method, request.target);
    pending->Respond(JsonError(500, "internal", "the handler failed; see the server log"));
  }
}

void Session::DeliverAsyncResponse(uint64_t request_seq, HttpResponse response) {
  if (phase_ != Phase::kAwaitingResponse || request_seq != request_seq_) return;
  const std::shared_ptr<Session> hold = std::move(self_while_awaiting_);
  WriteResponse(std::move(response), CloseMode::kKeepAlive);
}

// ---- Session: writing ----

void Session::WriteResponse(HttpResponse response, CloseMode close) {
  if (phase_ == Phase::kClosed) return;
  if (response.status < 200 || response.status > 599) {
    state_->log->error("handler returned HTTP status {}; answering 500", response.status);
    response = JsonError(500, "internal", "the handler returned an invalid status");
  }
  RecordRequest(response.status);

  auto message = std::make_shared<http::response<http::string_body>>();
  message->version(version_);
  message->result(static_cast<unsigned>(response.status));
  message->set(http::field::server, "embedstream");
  if (!response.content_type.empty())
    message->set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message->insert(name, value);
  for (const auto& [name, value] : extra_headers_) message->insert(name, value);
  message->body() = std::move(response.body);
  if (close == CloseMode::kKeepAlive && (!keep_alive_ || state_->stopping.load())) {
    close = CloseMode::kGraceful;
  }
  message->keep_alive(close == CloseMode::kKeepAlive);
  message->prepare_payload();

  phase_ = Phase::kWriting;
  // The whole response must be written by then: a client that reads slowly
  // (or not at all) does not hold the connection and the body longer.
  stream_.expires_after(state_->options.write_timeout);
  http::async_write(stream_, *message,
                    [self = shared_from_this(), message, close](beast::error_code ec, size_t) {
                      self->OnWrite(close, ec);
                    });
}

void Session::OnWrite(CloseMode close, beast::error_code ec) {
  if (ec) return CloseSocket();
  switch (close) {
    case CloseMode::kKeepAlive:
      return ReadHeader();
    case CloseMode::kGraceful: {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return CloseSocket();
    }
    case CloseMode::kLinger:
      return Linger();
  }
}

void Session::Linger() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTimeout);
  LingerRead();
}

void Session::LingerRead() {
  stream_.async_read_some(net::buffer(scratch_),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->linger_bytes_ += n;
                            if (ec || self->linger_bytes_ > kLingerMaxBytes)
                              return self->CloseSocket();
                            self->LingerRead();
                          });
}

void Session::CloseSocket() {
  phase_ = Phase::kClosed;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
  self_while_awaiting_.reset();
}

void Session::Shutdown() {
  if (phase_ == Phase::kStreaming) return EndStream();
  CloseSocket();
}

void Session::RecordRequest(int status) {
  if (probe_ == nullptr) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - request_start_).count();
  probe_->Record(status, seconds);
  probe_ = nullptr;
}

// ---- Session: streaming ----

void Session::RunStream(const Route& route, const HttpRequest& request) {
  auto sink = std::make_shared<StreamSinkImpl>(weak_from_this(), state_);
  HttpResponse head;
  try {
    head = route.stream_handler(request, sink);
  } catch (const std::exception& e) {
    state_->log->error("{} {}: stream handler threw: {}", request.method, request.target, e.what());
    head = JsonError(500, "internal", "the handler failed; see the server log");
  } catch (...) {
    state_->log->error("{} {}: stream handler threw a non-exception", request.method,
                       request.target);
    head = JsonError(500, "internal", "the handler failed; see the server log");
  }
  if (head.status < 200 || head.status > 299) {
    sink->MarkEnded();
    return WriteResponse(std::move(head), CloseMode::kKeepAlive);
  }
  sink_ = std::move(sink);
  StartStream(std::move(head));
}

void Session::StartStream(HttpResponse head) {
  RecordRequest(head.status);
  http::response<http::empty_body> message;
  message.version(version_);
  message.result(static_cast<unsigned>(head.status));
  message.set(http::field::server, "embedstream");
  if (!head.content_type.empty()) message.set(http::field::content_type, head.content_type);
  for (const auto& [name, value] : head.headers) message.insert(name, value);
  for (const auto& [name, value] : extra_headers_) message.insert(name, value);
  message.keep_alive(false);  // the stream ends with the connection
  stream_chunked_ = version_ >= 11;
  if (stream_chunked_) message.chunked(true);
  std::ostringstream os;
  os << message.base();
  stream_head_ = os.str();

  phase_ = Phase::kStreaming;
  state_->streams_open.Add(1);
  stream_.expires_never();  // the stream sends its own heartbeats
  if (!head.body.empty()) {
    sink_->Added(head.body.size());
    stream_queue_.push_back(std::move(head.body));
  }
  WriteStreamQueue();
  WatchPeer();
}

void Session::QueueStreamChunk(const StreamSinkImpl* origin, std::string chunk) {
  if (origin != sink_.get() || phase_ != Phase::kStreaming || stream_closing_) {
    if (origin == sink_.get()) sink_->Drained(chunk.size());
    return;
  }
  stream_queue_.push_back(std::move(chunk));
  WriteStreamQueue();
}

void Session::WriteStreamQueue() {
  if (stream_writing_ || phase_ != Phase::kStreaming) return;
  stream_out_ = std::move(stream_head_);
  stream_head_.clear();
  size_t payload = 0;
  for (const auto& chunk : stream_queue_) payload += chunk.size();
  if (payload > 0) {
    if (stream_chunked_) {
      char hex[24];
      const auto res = std::to_chars(hex, hex + sizeof(hex), payload, 16);
      stream_out_.append(hex, res.ptr);
      stream_out_ += "\r\n";
    }
    for (auto& chunk : stream_queue_) stream_out_ += chunk;
    if (stream_chunked_) stream_out_ += "\r\n";
    stream_queue_.clear();
  }
  stream_out_payload_ = payload;
  if (stream_closing_ && !stream_terminated_) {
    if (stream_chunked_) stream_out_ += "0\r\n\r\n";
    stream_terminated_ = true;
  }
  if (stream_out_.empty()) {
    if (stream_terminated_) EndStream();
    return;
  }
  stream_writing_ = true;
  net::async_write(
      stream_, net::buffer(stream_out_),
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnStreamWrite(ec); });
}

void Session::OnStreamWrite(beast::error_code ec) {
  stream_writing_ = false;
  sink_->Drained(stream_out_payload_);
  stream_out_payload_ = 0;
  if (phase_ != Phase::kStreaming) return;
  if (ec || stream_terminated_) return EndStream();
  if (!stream_queue_.empty()) WriteStreamQueue();
}

void Session::WatchPeer() {
  // Nothing more is expected from the client; a read completes when it goes.
  stream_.async_read_some(net::buffer(scratch_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (self->phase_ != Phase::kStreaming) return;
                            if (ec) return self->EndStream();
                            self->WatchPeer();
                          });
}

void Session::CloseStream(const StreamSinkImpl* origin) {
  if (origin != sink_.get() || phase_ != Phase::kStreaming || stream_closing_) return;
  stream_closing_ = true;
  WriteStreamQueue();
}

void Session::AbortStream(const StreamSinkImpl* origin) {
  if (origin == sink_.get()) EndStream();
}

void Session::EndStream() {
  if (phase_ != Phase::kStreaming) return;
  if (stream_terminated_ && !stream_writing_) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  CloseSocket();
  state_->streams_open.Add(-1);
  size_t dropped = 0;
  for (const auto& chunk : stream_queue_) dropped += chunk.size();
  stream_queue_.clear();
  sink_->Drained(dropped);
  sink_->MarkEnded();
}

}  // namespace embedstream::server::internal
