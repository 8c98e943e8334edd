#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"

namespace embedstream::server {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using Response = http::response<http::string_body>;
using namespace std::chrono_literals;

// A blocking client on a raw socket with a 5 s receive timeout, so a broken
// server fails a test instead of hanging it. Responses are parsed by Beast.
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = 5;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response; nullopt on EOF, timeout or a malformed response.
  std::optional<Response> ReadResponse() {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(64 << 20);
    for (;;) {
      if (!buffer_.empty()) {
        beast::error_code ec;
        const size_t used = parser.put(boost::asio::buffer(buffer_.data(), buffer_.size()), ec);
        buffer_.erase(0, used);
        if (ec && ec != http::error::need_more) return std::nullopt;
        if (parser.is_done()) return parser.release();
        if (!ec && used > 0) continue;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        if (n == 0) {
          beast::error_code ec;
          parser.put_eof(ec);
          if (!ec && parser.is_done()) return parser.release();
        }
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Raw bytes until at least `marker` has arrived (or timeout).
  std::string ReadUntil(std::string_view marker) {
    while (buffer_.find(marker) == std::string::npos) {
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    return buffer_;
  }

  // True if the peer closes the connection (EOF or reset) within the timeout.
  bool WaitForClose() {
    for (;;) {
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string MakeRequest(const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& extra_headers = "") {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty() || method == "POST")
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "\r\n" + body;
  return out;
}

std::optional<Response> Fetch(uint16_t port, const std::string& method, const std::string& target,
                              const std::string& body = "") {
  Connection c(port);
  if (!c.connected() || !c.Send(MakeRequest(method, target, body))) return std::nullopt;
  return c.ReadResponse();
}

std::string Header(const Response& r, http::field field) {
  const auto value = r[field];
  return std::string(value.data(), value.size());
}

class HttpServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
  }

  // Default routes; tests add theirs with `extra` before the start.
  void StartServer(ServerOptions options = {},
                   const std::function<void(HttpServer&)>& extra = nullptr) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = &registry_;
    server_ = std::make_unique<HttpServer>(options);
    server_->Route("GET", "/health",
                   [](const HttpRequest&) { return JsonOk(R"({"status":"ok"})"); });
    server_->Route("POST", "/messages", [this](const HttpRequest& r) {
      ++handled_;
      return JsonOk(R"({"bytes":)" + std::to_string(r.body.size()) + "}", 202);
    });
    server_->Route("GET", "/messages", [](const HttpRequest&) { return JsonOk("[]"); });
    server_->Route("GET", "/throw",
                   [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    server_->Route("GET", "/echo/*", [](const HttpRequest& r) {
      JsonWriter w;
      w.BeginObject().Key("path").String(r.path).Key("query").BeginObject();
      for (const auto& [k, v] : r.query) w.Key(k).String(v);
      w.EndObject()
          .Key("user_agent")
          .String(r.headers.count("user-agent") ? r.headers.at("user-agent") : "");
      w.EndObject();
      return JsonOk(w.Take());
    });
    if (extra) extra(*server_);
    const Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    ASSERT_NE(server_->port(), 0);
  }

  uint16_t port() const { return server_->port(); }

  MetricsRegistry registry_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpServerTest, ServesJsonWithContentLength) {
  StartServer();
  const auto r = Fetch(port(), "GET", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200u);
  EXPECT_EQ(Header(*r, http::field::content_type), "application/json");
  EXPECT_EQ(Header(*r, http::field::content_length), std::to_string(r->body().size()));
  EXPECT_EQ(nlohmann::json::parse(r->body())["status"], "ok");
  EXPECT_TRUE(r->keep_alive());
}

TEST_F(HttpServerTest, UnknownPathIs404Json) {
  StartServer();
  const auto r = Fetch(port(), "GET", "/nowhere");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404u);
  const auto body = nlohmann::json::parse(r->body());
  EXPECT_EQ(body["error"], "not_found");
  EXPECT_TRUE(body["detail"].is_string());
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  StartServer();
  const auto r = Fetch(port(), "DELETE", "/messages");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405u);
  EXPECT_EQ(Header(*r, http::field::allow), "GET, POST");
  EXPECT_EQ(nlohmann::json::parse(r->body())["error"], "method_not_allowed");
}

TEST_F(HttpServerTest, PostBodyReachesHandler) {
  StartServer();
  const auto r = Fetch(port(), "POST", "/messages", R"({"text":"hello"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 202u);
  EXPECT_EQ(r->body(), R"({"bytes":16})");
}

TEST_F(HttpServerTest, BodyOverLimitIs413WithoutReadingIt) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  StartServer(options);
  Connection c(port());
  // Announce 10 MB, send a few bytes: the answer must not wait for the rest.
  ASSERT_TRUE(c.Send("POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc"));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 413u);
  EXPECT_EQ(nlohmann::json::parse(r->body())["error"], "payload_too_large");
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.WaitForClose());
  EXPECT_EQ(handled_.load(), 0);

  // A body at the limit is fine.
  const auto ok = Fetch(port(), "POST", "/messages", std::string(1024, 'x'));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->result_int(), 202u);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitIs413) {
  ServerOptions options;
  options.max_body_bytes = 16;
  StartServer(options);
  Connection c(port());
  ASSERT_TRUE(
      c.Send("POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n"));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 413u);
}

// Beast buffers a chunk-size line whole and has no limit of its own for it:
// without the read buffer's bound one connection could grow it without end.
TEST_F(HttpServerTest, EndlessChunkExtensionIs431WithinTheReadBuffer) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(
      c.Send("POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a="));
  const std::string more(64 * 1024, 'b');
  bool answered = false;
  std::optional<Response> r;
  // The server answers once 32 KiB are buffered; later sends may fail (closed).
  for (int i = 0; i < 8 && c.Send(more); ++i) {
  }
  r = c.ReadResponse();
  answered = r.has_value();
  ASSERT_TRUE(answered);
  EXPECT_EQ(r->result_int(), 431u);
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpServerTest, LongChunkExtensionIs400) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(
      c.Send("POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "1;a=" +
             std::string(2000, 'b') + "\r\nx\r\n0\r\n\r\n"));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 400u);
  EXPECT_NE(r->body().find("chunk extension"), std::string::npos) << r->body();
  // A short extension is fine.
  Connection ok(port());
  ASSERT_TRUE(
      ok.Send("POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3;name=value\r\nabc\r\n0\r\n\r\n"));
  const auto r2 = ok.ReadResponse();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->result_int(), 202u);
}

TEST_F(HttpServerTest, TrailersAreBoundedInBytesAndFields) {
  StartServer();
  {
    Connection c(port());
    std::string trailers;
    while (trailers.size() < 40 * 1024) trailers += "X-T: " + std::string(100, 'v') + "\r\n";
    c.Send(
        "POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n" +
        trailers + "\r\n");
    const auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 431u);
  }
  {
    Connection c(port());
    std::string trailers;
    for (int i = 0; i < 150; ++i) trailers += "X-" + std::to_string(i) + ": v\r\n";
    ASSERT_TRUE(
        c.Send("POST /messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\n" +
               trailers + "\r\n"));
    const auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 431u);
    EXPECT_NE(r->body().find("fields"), std::string::npos) << r->body();
  }
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpServerTest, MoreThanAHundredHeaderFieldsAre431) {
  StartServer();
  std::string headers;
  for (int i = 0; i < 101; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/health", "", headers)));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 431u);
  headers.clear();
  for (int i = 0; i < 90; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
  Connection ok(port());
  ASSERT_TRUE(ok.Send(MakeRequest("GET", "/health", "", headers)));
  const auto r2 = ok.ReadResponse();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->result_int(), 200u);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapGet503AtAccept) {
  ServerOptions options;
  options.max_connections = 3;
  StartServer(options);
  std::vector<std::unique_ptr<Connection>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<Connection>(port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // Accepts run in order: make sure the three are sessions before the fourth.
  for (auto& c : idle) {
    ASSERT_TRUE(c->Send(MakeRequest("GET", "/health")));
    ASSERT_TRUE(c->ReadResponse());
  }
  Connection over(port());
  ASSERT_TRUE(over.connected());
  const auto r = over.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 503u);
  EXPECT_EQ(Header(*r, http::field::retry_after), "1");
  EXPECT_EQ(nlohmann::json::parse(r->body())["error"], "too_many_connections");
  EXPECT_EQ(registry_.GetCounter("embedstream_http_connections_refused_total", "").Value(), 1u);
  idle.pop_back();  // one slot frees up
  std::optional<Response> after;
  for (int i = 0; i < 100 && !(after && after->result_int() == 200u); ++i) {
    std::this_thread::sleep_for(10ms);
    after = Fetch(port(), "GET", "/health");
  }
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result_int(), 200u);
}

TEST_F(HttpServerTest, AResponseTheClientDoesNotReadIsAbandonedAfterWriteTimeout) {
  ServerOptions options;
  options.write_timeout = 1s;
  StartServer(options, [](HttpServer& s) {
    s.Route("GET", "/big", [](const HttpRequest&) {
      HttpResponse r;
      r.content_type = "text/plain";
      r.body.assign(64 << 20, 'x');
      return r;
    });
  });
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/big")));
  std::this_thread::sleep_for(2500ms);  // reads nothing meanwhile
  // Drain what the socket buffers hold: the connection must end well short of 64 MiB.
  size_t got = 0;
  for (;;) {
    char chunk[65536];
    const ssize_t n = ::recv(c.fd(), chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  EXPECT_LT(got, size_t{32} << 20);
}

TEST_F(HttpServerTest, GarbageIs400AndCloses) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 400u);
  EXPECT_EQ(nlohmann::json::parse(r->body())["error"], "bad_request");
  EXPECT_TRUE(c.WaitForClose());

  Connection binary(port());
  ASSERT_TRUE(binary.Send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)));
  const auto r2 = binary.ReadResponse();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->result_int(), 400u);

  // Still serving.
  const auto after = Fetch(port(), "GET", "/health");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result_int(), 200u);
}

TEST_F(HttpServerTest, HandlerThatThrowsIs500AndServerKeepsServing) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/throw")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500u);
  EXPECT_EQ(nlohmann::json::parse(r->body())["error"], "internal");
  // The same connection still works, and so does a new one.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/health")));
  const auto next = c.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u);
  const auto fresh = Fetch(port(), "GET", "/health");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->result_int(), 200u);
}

TEST_F(HttpServerTest, DecodesQueryStringAndPath) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send(
      MakeRequest("GET", "/echo/a%20b?q=hello+world&user_id=u%2F1&check=%E2%9C%93&empty=", "",
                  "User-Agent: Test/1\r\n")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->result_int(), 200u);
  const auto body = nlohmann::json::parse(r->body());
  EXPECT_EQ(body["path"], "/echo/a b");
  EXPECT_EQ(body["query"]["q"], "hello world");
  EXPECT_EQ(body["query"]["user_id"], "u/1");
  EXPECT_EQ(body["query"]["check"], "\xE2\x9C\x93");
  EXPECT_EQ(body["query"]["empty"], "");
  EXPECT_EQ(body["user_agent"], "Test/1");  // header names are lower-case
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/health")));
  const auto first = c.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result_int(), 200u);
  EXPECT_TRUE(first->keep_alive());
  ASSERT_TRUE(c.Send(MakeRequest("POST", "/messages", "xyz")));
  const auto second = c.ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->result_int(), 202u);
  // Pipelined: two requests in one write, answered in order.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/messages") + MakeRequest("GET", "/health")));
  const auto third = c.ReadResponse();
  const auto fourth = c.ReadResponse();
  ASSERT_TRUE(third && fourth);
  EXPECT_EQ(third->body(), "[]");
  EXPECT_EQ(fourth->body(), R"({"status":"ok"})");
  EXPECT_EQ(registry_.GetGauge("embedstream_http_connections_open", "").Value(), 1.0);
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/health", "", "Connection: close\r\n")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.WaitForClose());

  // HTTP/1.0 closes unless it asks for keep-alive.
  Connection old(port());
  ASSERT_TRUE(old.Send("GET /health HTTP/1.0\r\n\r\n"));
  const auto r10 = old.ReadResponse();
  ASSERT_TRUE(r10);
  EXPECT_EQ(r10->version(), 10u);
  EXPECT_TRUE(old.WaitForClose());
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(
      c.Send(MakeRequest("GET", "/health", "", "X-Big: " + std::string(20000, 'a') + "\r\n")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 431u);
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, Http10KeepAliveIsHonoured) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const auto first = c.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->keep_alive());
  ASSERT_TRUE(c.Send("GET /health HTTP/1.0\r\n\r\n"));
  const auto second = c.ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->result_int(), 200u);
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, AnswersExpectContinue) {
  StartServer();
  Connection c(port());
  ASSERT_TRUE(c.Send(
      "POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  const auto interim = c.ReadResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100u);
  ASSERT_TRUE(c.Send("hello"));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 202u);
  EXPECT_EQ(r->body(), R"({"bytes":5})");
}

TEST_F(HttpServerTest, AnswersConcurrentRequestsFromEightThreads) {
  ServerOptions options;
  options.io_threads = 2;
  StartServer(options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads reuse one connection, half open one per request.
      std::optional<Connection> shared;
      if (t % 2 == 0) shared.emplace(port());
      for (int i = 0; i < kPerThread; ++i) {
        const std::string body = std::to_string(t * 1000 + i);
        std::optional<Response> r;
        if (shared) {
          if (shared->Send(MakeRequest("POST", "/messages", body))) r = shared->ReadResponse();
        } else {
          r = Fetch(port(), "POST", "/messages", body);
        }
        if (r && r->result_int() == 202 &&
            r->body() == R"({"bytes":)" + std::to_string(body.size()) + "}") {
          ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(handled_.load(), kThreads * kPerThread);
}

TEST_F(HttpServerTest, PortInUseIsAClearError) {
  StartServer();
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = port();
  options.metrics = &registry_;
  HttpServer second(options);
  const Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, errc::unavailable);
  EXPECT_NE(st.error().message.find(std::to_string(port())), std::string::npos)
      << st.error().message;

  ServerOptions bad = options;
  bad.host = "not-an-address";
  HttpServer third(bad);
  const Status st3 = third.Start();
  ASSERT_FALSE(st3.ok());
  EXPECT_EQ(st3.error().code, errc::invalid_argument);
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndIsIdempotent) {
  StartServer();
  Connection idle(port());
  ASSERT_TRUE(idle.Send(MakeRequest("GET", "/health")));
  ASSERT_TRUE(idle.ReadResponse());
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(idle.WaitForClose());
  EXPECT_FALSE(Fetch(port(), "GET", "/health"));
}

TEST_F(HttpServerTest, IdleTimeoutClosesConnection) {
  ServerOptions options;
  options.idle_timeout = 1s;
  StartServer(options);
  Connection c(port());
  ASSERT_TRUE(c.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.WaitForClose());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
}

TEST_F(HttpServerTest, AsyncHandlerAnswersFromAnotherThread) {
  std::vector<std::thread> workers;
  std::mutex workers_mu;
  StartServer({}, [&](HttpServer& s) {
    s.RouteAsync("POST", "/slow", [&](const HttpRequest& r, Respond respond) {
      std::lock_guard<std::mutex> lock(workers_mu);
      workers.emplace_back([body = r.body, respond = std::move(respond)] {
        std::this_thread::sleep_for(20ms);
        respond(JsonOk(R"({"echo":")" + body + "\"}", 202));
        respond(JsonOk("ignored"));
      });
    });
    s.RouteAsync("GET", "/dropped", [](const HttpRequest&, Respond) {});
  });
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("POST", "/slow", "abc")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 202u);
  EXPECT_EQ(r->body(), R"({"echo":"abc"})");
  // Keep-alive after an async answer; a dropped Respond is a 500.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/dropped")));
  const auto dropped = c.ReadResponse();
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->result_int(), 500u);
  std::lock_guard<std::mutex> lock(workers_mu);
  for (auto& w : workers) w.join();
}

// The seam for SSE: a stream handler takes the connection over.
class StreamTest : public HttpServerTest {
 protected:
  void StartStreaming(ServerOptions options = {}) {
    StartServer(options, [this](HttpServer& s) {
      s.RouteStream("GET", "/events",
                    [this](const HttpRequest& r, const std::shared_ptr<StreamSink>& sink) {
                      if (r.query.count("reject")) return JsonError(400, "bad_request", "rejected");
                      sink->SetOnClose([this] { closed_.set_value(); });
                      {
                        std::lock_guard<std::mutex> lock(mu_);
                        sink_ = sink;
                      }
                      HttpResponse head;
                      head.content_type = "text/event-stream";
                      head.headers.emplace_back("Cache-Control", "no-cache");
                      head.body = ": hello\n\n";
                      return head;
                    });
    });
  }

  std::shared_ptr<StreamSink> WaitForSink() {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (sink_) return sink_;
      }
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }

  std::mutex mu_;
  std::shared_ptr<StreamSink> sink_;
  std::promise<void> closed_;
};

TEST_F(StreamTest, SendsChunksInOrderAndEndsOnClose) {
  StartStreaming();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events")));
  auto sink = WaitForSink();
  ASSERT_TRUE(sink);
  const std::string head = c.ReadUntil(": hello\n\n");
  EXPECT_NE(head.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(registry_.GetGauge("embedstream_http_streams_open", "").Value(), 1.0);

  for (int i = 0; i < 100; ++i) EXPECT_TRUE(sink->Send("data: " + std::to_string(i) + "\n\n"));
  EXPECT_TRUE(sink->Send(""));
  sink->Close();
  const auto r = c.ReadResponse();  // the whole chunked response, decoded
  ASSERT_TRUE(r);
  std::string expected = ": hello\n\n";
  for (int i = 0; i < 100; ++i) expected += "data: " + std::to_string(i) + "\n\n";
  EXPECT_EQ(r->body(), expected);
  EXPECT_TRUE(c.WaitForClose());
  EXPECT_EQ(closed_.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(sink->IsOpen());
  EXPECT_FALSE(sink->Send("late"));
}

TEST_F(StreamTest, ClientDisconnectRunsOnClose) {
  StartStreaming();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events")));
  auto sink = WaitForSink();
  ASSERT_TRUE(sink);
  c.ReadUntil(": hello\n\n");
  c.Close();
  EXPECT_EQ(closed_.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(sink->IsOpen());
  EXPECT_FALSE(sink->Send("data: x\n\n"));
  bool called_at_once = false;
  sink->SetOnClose([&] { called_at_once = true; });
  EXPECT_TRUE(called_at_once);
}

TEST_F(StreamTest, ServerStopEndsStreams) {
  StartStreaming();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events")));
  auto sink = WaitForSink();
  ASSERT_TRUE(sink);
  server_->Stop();
  EXPECT_EQ(closed_.get_future().wait_for(0s), std::future_status::ready);
  EXPECT_FALSE(sink->Send("after stop"));
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(StreamTest, SlowClientIsCutOff) {
  ServerOptions options;
  options.stream_queue_max_bytes = 64 * 1024;
  StartStreaming(options);
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events")));
  auto sink = WaitForSink();
  ASSERT_TRUE(sink);
  // The client reads nothing: socket buffers fill, then the queue limit trips.
  const std::string event = "data: " + std::string(8192, 'x') + "\n\n";
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; ++i) refused = !sink->Send(event);
  EXPECT_TRUE(refused);
  EXPECT_EQ(closed_.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(StreamTest, StreamsTogetherAreBoundedByTheTotalBudget) {
  ServerOptions options;
  options.stream_queue_max_bytes = 64 << 20;
  options.streams_max_total_bytes = 256 * 1024;
  StartStreaming(options);
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events")));
  auto sink = WaitForSink();
  ASSERT_TRUE(sink);
  // Under the per-client limit, over the total: this stream is cut.
  const std::string event = "data: " + std::string(8192, 'x') + "\n\n";
  bool refused = false;
  size_t sent = 0;
  for (int i = 0; i < 100000 && !refused; ++i) {
    refused = !sink->Send(event);
    if (!refused) sent += event.size();
  }
  EXPECT_TRUE(refused);
  EXPECT_LT(sent, size_t{32} << 20);  // socket buffers + 256 KiB, far below the client limit
  EXPECT_EQ(closed_.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(StreamTest, Non2xxHeadIsAnOrdinaryResponse) {
  StartStreaming();
  Connection c(port());
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/events?reject=1")));
  const auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 400u);
  EXPECT_EQ(Header(*r, http::field::content_length), std::to_string(r->body().size()));
  // The connection is still an ordinary keep-alive one.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/health")));
  const auto next = c.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u);
}

// The design target: 1,000 concurrent streams on one io thread.
TEST_F(HttpServerTest, HoldsAThousandStreams) {
  constexpr int kClients = 1000;
  constexpr int kEvents = 10;
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 2 * kClients + 100) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 2 * kClients + 100);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < 2 * kClients + 100) GTEST_SKIP() << "needs " << 2 * kClients + 100 << " fds";

  std::mutex mu;
  std::vector<std::shared_ptr<StreamSink>> sinks;
  std::atomic<int> closed{0};
  StartServer({}, [&](HttpServer& s) {
    s.RouteStream("GET", "/events",
                  [&](const HttpRequest&, const std::shared_ptr<StreamSink>& sink) {
                    sink->SetOnClose([&] { ++closed; });
                    std::lock_guard<std::mutex> lock(mu);
                    sinks.push_back(sink);
                    HttpResponse head;
                    head.content_type = "text/event-stream";
                    return head;
                  });
  });
  std::vector<std::unique_ptr<Connection>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Connection>(port()));
    ASSERT_TRUE(clients.back()->Send(MakeRequest("GET", "/events")));
  }
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (sinks.size() == kClients) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(sinks.size(), size_t{kClients});
  for (int e = 0; e < kEvents; ++e) {
    for (auto& sink : sinks) ASSERT_TRUE(sink->Send("data: event " + std::to_string(e) + "\n\n"));
  }
  const std::string last = "data: event " + std::to_string(kEvents - 1) + "\n\n";
  int complete = 0;
  for (auto& client : clients) {
    if (client->ReadUntil(last).find(last) != std::string::npos) ++complete;
  }
  EXPECT_EQ(complete, kClients);
  EXPECT_EQ(registry_.GetGauge("embedstream_http_streams_open", "").Value(), double{kClients});
  server_->Stop();
  EXPECT_EQ(closed.load(), kClients);
}

TEST_F(HttpServerTest, RecordsRequestMetricsPerRoute) {
  StartServer();
  ASSERT_TRUE(Fetch(port(), "GET", "/health"));
  ASSERT_TRUE(Fetch(port(), "GET", "/health"));
  ASSERT_TRUE(Fetch(port(), "GET", "/throw"));
  ASSERT_TRUE(Fetch(port(), "GET", "/nowhere"));
  // A response is counted before it is written, so these are all in.
  const std::string text = registry_.RenderPrometheus();
  EXPECT_NE(
      text.find(R"(embedstream_http_requests_total{code="2xx",method="GET",route="/health"} 2)"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(R"(embedstream_http_requests_total{code="5xx",method="GET",route="/throw"} 1)"),
      std::string::npos);
  EXPECT_NE(
      text.find(R"(embedstream_http_requests_total{code="4xx",method="any",route="unmatched"} 1)"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          R"(embedstream_http_request_duration_seconds_count{method="GET",route="/health"} 2)"),
      std::string::npos);
}

}  // namespace
}  // namespace embedstream::server
