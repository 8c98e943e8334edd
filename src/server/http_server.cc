#include "server/http_server.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "core/check.h"
#include "server/internal/router.h"
#include "server/internal/session.h"

namespace embedstream::server {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using internal::ServerState;
using internal::Session;

namespace {

// Pause before accepting again after an accept error (e.g. out of file
// descriptors), so the loop does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

// The whole answer to a connection over max_connections: written once, then
// the socket closes; nothing is read.
constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Server: embedstream\r\n"
    "Content-Type: application/json\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "Content-Length: 89\r\n"
    "\r\n"
    R"({"error":"too_many_connections","detail":"http.max_connections are open; retry shortly"})"
    "\n";

void RefuseConnection(tcp::socket socket) {
  auto held = std::make_shared<tcp::socket>(std::move(socket));
  net::async_write(*held, net::buffer(kBusyResponse.data(), kBusyResponse.size()),
                   [held](boost::beast::error_code, size_t) {
                     boost::beast::error_code ignored;
                     held->shutdown(tcp::socket::shutdown_both, ignored);
                     held->close(ignored);
                   });
}

std::shared_ptr<ServerState> MakeState(ServerOptions options) {
  MetricsRegistry& registry =
      options.metrics != nullptr ? *options.metrics : MetricsRegistry::Global();
  return std::make_shared<ServerState>(std::move(options), registry);
}

}  // namespace

// Member order matters: the io_context is destroyed after the acceptor and
// timer that use it, and before `state` (sessions it still holds touch it).
struct HttpServer::Impl {
  explicit Impl(ServerOptions options)
      : state(MakeState(std::move(options))), ioc(std::max(1, state->options.io_threads)) {}

  void Accept();
  void OnAccept(boost::beast::error_code ec, tcp::socket socket);
  void AddRoute(std::unique_ptr<internal::Route> route);

  std::shared_ptr<ServerState> state;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;  // on its own strand, with retry_timer
  std::optional<net::steady_timer> retry_timer;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool started = false;
  bool stopped = false;
};

void HttpServer::Impl::Accept() {
  acceptor->async_accept(
      net::make_strand(ioc),
      [this](boost::beast::error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void HttpServer::Impl::OnAccept(boost::beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || state->stopping.load()) return;
  if (ec) {
    state->log->warn("accept failed: {}; retrying", ec.message());
    retry_timer->expires_after(kAcceptRetryDelay);
    retry_timer->async_wait([this](boost::beast::error_code wait_ec) {
      if (!wait_ec && !state->stopping.load()) Accept();
    });
    return;
  }
  boost::beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Session> session;
  {
    // Under sessions_mu so Stop() either sees this session or we see `stopping`.
    std::lock_guard<std::mutex> lock(state->sessions_mu);
    if (state->stopping.load()) return;  // the socket closes as it goes out of scope
    if (state->sessions.size() < state->options.max_connections) {
      const uint64_t id = state->next_session_id++;
      session = std::make_shared<Session>(std::move(socket), state, id);
      state->sessions.emplace(id, session);
    }
  }
  if (!session) {
    state->connections_refused.Inc();
    RefuseConnection(std::move(socket));
    return Accept();
  }
  net::dispatch(session->executor(), [session] { session->Start(); });
  Accept();
}

void HttpServer::Impl::AddRoute(std::unique_ptr<internal::Route> route) {
  ES_CHECK(!started);  // routes are fixed once io threads read them
  state->router.Add(std::move(route));
}

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(const std::string& method, const std::string& path, Handler handler) {
  auto route = std::make_unique<internal::Route>();
  route->kind = internal::Route::Kind::kSync;
  route->method = method;
  route->pattern = path;
  route->handler = std::move(handler);
  impl_->AddRoute(std::move(route));
}

void HttpServer::RouteAsync(const std::string& method, const std::string& path,
                            AsyncHandler handler) {
  auto route = std::make_unique<internal::Route>();
  route->kind = internal::Route::Kind::kAsync;
  route->method = method;
  route->pattern = path;
  route->async_handler = std::move(handler);
  impl_->AddRoute(std::move(route));
}

void HttpServer::RouteStream(const std::string& method, const std::string& path,
                             StreamHandler handler) {
  auto route = std::make_unique<internal::Route>();
  route->kind = internal::Route::Kind::kStream;
  route->method = method;
  route->pattern = path;
  route->stream_handler = std::move(handler);
  impl_->AddRoute(std::move(route));
}

Status HttpServer::Start() {
  Impl& s = *impl_;
  ES_CHECK(!s.started && !s.stopped);
  const ServerOptions& options = s.state->options;
  boost::beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options.host, ec);
  if (ec) {
    return Error(errc::invalid_argument, fmt::format("http server: bad listen address '{}': {}",
                                                     options.host, ec.message()));
  }
  const tcp::endpoint endpoint(address, options.port);
  auto fail = [&](const char* what) {
    s.acceptor.reset();
    return Error(errc::unavailable, fmt::format("http server: cannot {} {}:{}: {}", what,
                                                options.host, options.port, ec.message()));
  };
  s.acceptor.emplace(net::make_strand(s.ioc));
  s.acceptor->open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR on");
  s.acceptor->bind(endpoint, ec);
  if (ec) return fail("listen on");
  s.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  s.port = s.acceptor->local_endpoint(ec).port();

  s.started = true;
  s.retry_timer.emplace(s.acceptor->get_executor());
  s.work.emplace(s.ioc.get_executor());
  s.Accept();
  const int io_threads = std::max(1, options.io_threads);
  for (int i = 0; i < io_threads; ++i) {
    s.threads.emplace_back([&s] {
      // Thread entry point: nothing may escape it.
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          s.state->log->error("io thread: unexpected exception: {}", e.what());
        } catch (...) {
          s.state->log->error("io thread: unexpected non-exception");
        }
      }
    });
  }
  s.state->log->info("http server listening on {}:{} ({} io thread{})", options.host, s.port,
                     io_threads, io_threads == 1 ? "" : "s");
  return Status::Ok();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  ES_CHECK(!s.ioc.get_executor().running_in_this_thread());  // not from a handler
  s.stopped = true;
  {
    std::unique_lock<std::shared_mutex> lock(s.state->post_mu);
    s.state->stopping.store(true);
  }
  net::post(s.acceptor->get_executor(), [&s] {
    boost::beast::error_code ignored;
    s.acceptor->close(ignored);
    s.retry_timer->cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(s.state->sessions_mu);
    for (const auto& [id, weak] : s.state->sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    net::post(session->executor(), [session] { session->Shutdown(); });
  }
  live.clear();
  s.work.reset();
  for (auto& thread : s.threads) thread.join();
  s.threads.clear();
  s.state->log->info("http server on port {} stopped", s.port);
}

uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace embedstream::server
