#pragma once
// Session: one accepted TCP connection. Reads requests one at a time, routes
// them, writes responses (keep-alive), or hands the connection to a stream.
// Everything it does runs on its strand; it owns itself through the
// shared_ptr its pending async operations hold. Objects that reach it from
// other threads (Respond, StreamSink) hold a weak_ptr and post to the strand
// through ServerState::PostFromOutside.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/logger.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/metrics.h"
#include "server/http_server.h"
#include "server/internal/router.h"

namespace embedstream::server::internal {

class Session;
class StreamSinkImpl;

using Executor = boost::asio::any_io_executor;  // the connection's strand

// Shared by the server and its sessions, so a session never points at a dead
// server. `router` is read-only once the server has started.
struct ServerState {
  ServerState(ServerOptions opts, MetricsRegistry& registry);

  ServerOptions options;
  Router router;
  std::shared_ptr<spdlog::logger> log;
  Gauge& connections_open;
  Gauge& streams_open;
  Counter& connections_refused;

  std::atomic<bool> stopping{false};
  // Bytes queued for every stream together (ServerOptions::streams_max_total_bytes).
  std::atomic<size_t> stream_bytes_queued{0};

  // Held shared while a thread outside the server posts to a session (see
  // PostToSession in session.cc); Stop() takes it exclusively to set
  // `stopping`, so nothing is posted into an io_context being torn down.
  std::shared_mutex post_mu;

  // Live sessions, for Stop. A session erases itself when destroyed.
  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_session_id = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerState> state, uint64_t id);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Executor& executor() const { return executor_; }

  // On the strand.
  void Start();
  void Shutdown();  // server stop: close at once, end any stream
  void DeliverAsyncResponse(uint64_t request_seq, HttpResponse response);
  // From a StreamSink; ignored unless `origin` is this connection's stream.
  void QueueStreamChunk(const StreamSinkImpl* origin, std::string chunk);
  void CloseStream(const StreamSinkImpl* origin);
  void AbortStream(const StreamSinkImpl* origin);

 private:
  enum class Phase { kReading, kAwaitingResponse, kWriting, kStreaming, kClosed };
  enum class CloseMode { kKeepAlive, kGraceful, kLinger };

  void ReadHeader();
  void OnReadHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnReadBody(boost::beast::error_code ec);
  void OnReadError(boost::beast::error_code ec);
  // Answers a request that broke a limit, then closes (after draining).
  void RefuseRequest(HttpResponse response);
  void Dispatch(boost::beast::http::request<boost::beast::http::string_body> message);
  void RunAsync(const Route& route, const HttpRequest& request);
  void RunStream(const Route& route, const HttpRequest& request);

  // Writes an ordinary response; `close` decides what follows it.
  void WriteResponse(HttpResponse response, CloseMode close);
  void OnWrite(CloseMode close, boost::beast::error_code ec);
  void Linger();
  void LingerRead();
  void CloseSocket();

  void StartStream(HttpResponse head);
  void WriteStreamQueue();
  void OnStreamWrite(boost::beast::error_code ec);
  void WatchPeer();
  void EndStream();

  void RecordRequest(int status);

  std::shared_ptr<ServerState> state_;
  const uint64_t id_;
  Executor executor_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  Phase phase_ = Phase::kReading;
  size_t body_limit_ = 0;  // of the request being read (ServerOptions::large_body_paths)

  // The request being answered.
  uint64_t request_seq_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  RouteProbe* probe_ = nullptr;
  std::chrono::steady_clock::time_point request_start_;
  std::shared_ptr<Session> self_while_awaiting_;  // an AsyncHandler owes a response
  // From ServerOptions::filter, added to whatever answers the request.
  HeaderList extra_headers_;

  // Streaming.
  std::shared_ptr<StreamSinkImpl> sink_;
  std::string stream_head_;  // sent with the first write
  std::deque<std::string> stream_queue_;
  std::string stream_out_;  // bytes of the write in flight
  size_t stream_out_payload_ = 0;
  bool stream_chunked_ = true;
  bool stream_writing_ = false;
  bool stream_closing_ = false;
  bool stream_terminated_ = false;  // the last chunk was written
  std::array<char, 512> scratch_{};
  size_t linger_bytes_ = 0;
};

}  // namespace embedstream::server::internal
