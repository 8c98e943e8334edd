#include "server/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "server/sse_hub.h"
#include "server/sse_parser.h"

namespace embedstream::server {
namespace {

using namespace std::chrono_literals;

TEST(ParseHttpUrl, HostPortAndDefaults) {
  auto u = ParseHttpUrl("http://localhost:5000");
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, 5000);
  EXPECT_EQ(u->base_path, "");
  EXPECT_EQ(u->ToString(), "http://localhost:5000");

  u = ParseHttpUrl("HTTP://example.com/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->base_path, "");

  u = ParseHttpUrl("  127.0.0.1:8080  ");  // no scheme: http
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);

  u = ParseHttpUrl("http://[::1]:5000/api/v1/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->base_path, "/api/v1");
  EXPECT_EQ(u->ToString(), "http://[::1]:5000/api/v1");
  EXPECT_EQ(u->HostHeader(), "[::1]:5000");
}

TEST(ParseHttpUrl, RefusesHttpsWithAClearMessage) {
  const auto u = ParseHttpUrl("https://search.example.com");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, errc::unsupported);
  EXPECT_NE(u.error().message.find("https is not supported"), std::string::npos);
  EXPECT_NE(u.error().message.find("no TLS"), std::string::npos);
}

TEST(ParseHttpUrl, RefusesMalformedUrls) {
  for (const char* bad : {"", "http://", "http://:5000", "http://host:", "http://host:0",
                          "http://host:65536", "http://host:50x", "ftp://host", "http://::1:5000",
                          "http://host:5000/?q=1", "http://user@host", "http://[::1"}) {
    const auto u = ParseHttpUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.error().code, errc::invalid_argument) << bad;
    }
  }
}

// A free port nobody listens on: bind an ephemeral one and close it.
uint16_t ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class HttpClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    hub_.reset();
    if (server_) server_->Stop();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : pending_) r(JsonOk("{}"));
  }

  void StartServer(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = &registry_;
    server_ = std::make_unique<HttpServer>(options);
    server_->Route("GET", "/health",
                   [](const HttpRequest&) { return JsonOk(R"({"status":"ok"})"); });
    server_->Route("POST", "/echo", [](const HttpRequest& r) {
      nlohmann::json j;
      j["method"] = r.method;
      j["target"] = r.target;
      j["body"] = r.body;
      j["authorization"] = r.headers.count("authorization") ? r.headers.at("authorization") : "";
      j["content_type"] = r.headers.count("content-type") ? r.headers.at("content-type") : "";
      HttpResponse out = JsonOk(j.dump(), 201);
      out.headers.emplace_back("X-Extra", "yes");
      return out;
    });
    server_->Route("GET", "/big", [](const HttpRequest&) {
      HttpResponse out;
      out.content_type = "text/plain";
      out.body = std::string(100000, 'x');
      return out;
    });
    server_->RouteAsync("GET", "/never", [this](const HttpRequest&, Respond respond) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(std::move(respond));
    });
    server_->RouteStream("GET", "/stream",
                         [this](const HttpRequest&, const std::shared_ptr<StreamSink>& sink) {
                           std::lock_guard<std::mutex> lock(mu_);
                           sinks_.push_back(sink);
                           HttpResponse head;
                           head.content_type = "text/event-stream";
                           head.body = ": connected\n\n";
                           return head;
                         });
    hub_ = std::make_unique<SseHub>(SseHubOptions{.metrics = &registry_});
    hub_->Attach(*server_);
    const Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().ToString();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::shared_ptr<StreamSink> WaitForSink() {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!sinks_.empty()) return sinks_.back();
      }
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }

  MetricsRegistry registry_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<SseHub> hub_;
  std::mutex mu_;
  std::vector<Respond> pending_;
  std::vector<std::shared_ptr<StreamSink>> sinks_;
};

TEST_F(HttpClientTest, GetAndPostWithHeaders) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  auto r = client->Request("GET", "/health");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(r->body)["status"], "ok");

  r = client->Request("POST", "/echo?x=1", R"({"message":"hi"})",
                      {{"Content-Type", "application/json"}, {"Authorization", "Bearer t0k"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->headers["x-extra"], "yes");
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["target"], "/echo?x=1");
  EXPECT_EQ(j["body"], R"({"message":"hi"})");
  EXPECT_EQ(j["authorization"], "Bearer t0k");
  EXPECT_EQ(j["content_type"], "application/json");
}

TEST_F(HttpClientTest, ErrorStatusIsAResponseNotAnError) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  const auto r = client->Request("GET", "/nowhere");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"], "not_found");
  // The connection is still usable.
  const auto again = client->Request("GET", "/health");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpClientTest, BasePathIsPrefixed) {
  StartServer();
  auto client = HttpClient::Create(Url() + "/");
  ASSERT_TRUE(client.ok());
  const auto r = client->Request("GET", "health");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTest, ReopensAKeepAliveConnectionTheServerClosedWhileIdle) {
  ServerOptions options;
  options.idle_timeout = 1s;
  StartServer(options);
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->Request("GET", "/health").ok());
  std::this_thread::sleep_for(1500ms);  // the server closes the idle connection
  const auto r = client->Request("POST", "/echo", "x");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
}

TEST_F(HttpClientTest, ConnectionRefusedSaysWhatToDo) {
  const uint16_t port = ClosedPort();
  auto client = HttpClient::Create("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(client.ok());
  const auto r = client->Request("GET", "/health");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_EQ(r.error().message, "cannot connect to http://127.0.0.1:" + std::to_string(port) +
                                   ": Connection refused; is `embedstream serve` running?");
  const auto s = client->Stream("/events", {}, [](std::string_view) { return true; });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, errc::unavailable);
}

TEST_F(HttpClientTest, ReadTimeoutIsATimeoutError) {
  StartServer();
  auto client = HttpClient::Create(Url(), {.read_timeout = 200ms});
  ASSERT_TRUE(client.ok());
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = client->Request("GET", "/never");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::timeout);
  EXPECT_NE(r.error().message.find("no response within 200 ms"), std::string::npos)
      << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  // A new request opens a new connection.
  const auto ok = client->Request("GET", "/health");
  ASSERT_TRUE(ok.ok());
}

TEST_F(HttpClientTest, BodyOverLimitIsAnError) {
  StartServer();
  auto client = HttpClient::Create(Url(), {.max_body_bytes = 1000});
  ASSERT_TRUE(client.ok());
  const auto r = client->Request("GET", "/big");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::io_error);
}

TEST_F(HttpClientTest, StreamDeliversChunksUntilTheServerCloses) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  std::string received;
  std::thread feeder([&] {
    auto sink = WaitForSink();
    ASSERT_TRUE(sink);
    for (int i = 0; i < 5; ++i) {
      sink->Send("data: " + std::to_string(i) + "\n\n");
      std::this_thread::sleep_for(5ms);
    }
    sink->Close();
  });
  const auto r = client->Stream("/stream", {}, [&](std::string_view bytes) {
    received.append(bytes);
    return true;
  });
  feeder.join();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(received, ": connected\n\ndata: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
}

TEST_F(HttpClientTest, StreamStopsWhenTheCallbackSaysSoOrTheDurationEnds) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  int calls = 0;
  auto r = client->Stream("/stream", {}, [&](std::string_view) { return ++calls < 1; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(calls, 1);

  const auto t0 = std::chrono::steady_clock::now();
  r = client->Stream(
      "/stream", {}, [](std::string_view) { return true; }, 300ms);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST_F(HttpClientTest, SilentStreamTimesOut) {
  StartServer();
  auto client = HttpClient::Create(Url(), {.stream_idle_timeout = 200ms});
  ASSERT_TRUE(client.ok());
  const auto r = client->Stream("/stream", {}, [](std::string_view) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::timeout);
}

TEST_F(HttpClientTest, StreamErrorStatusReturnsTheBody) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  bool called = false;
  const auto r = client->Stream("/events?last_event_id=x", {}, [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(called);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"], "bad_request");
}

TEST_F(HttpClientTest, FollowsSseHubEvents) {
  StartServer();
  auto client = HttpClient::Create(Url());
  ASSERT_TRUE(client.ok());
  std::thread publisher([&] {
    for (int i = 0; i < 500 && hub_->clients() == 0; ++i) std::this_thread::sleep_for(10ms);
    hub_->Publish({.type = "message_received", .message_id = "m1", .user_id = "u1"});
    hub_->Publish({.type = "message_received", .message_id = "m2", .user_id = "u2"});
    hub_->Publish({.type = "stage_completed",
                   .message_id = "m1",
                   .user_id = "u1",
                   .data_json = R"({"stage":1,"stages":3})"});
  });
  SseParser parser;
  std::vector<std::string> seen;
  const auto r = client->Stream("/events?user_id=u1", {}, [&](std::string_view bytes) {
    parser.Feed(bytes, [&](const SseEvent& e) {
      const auto j = nlohmann::json::parse(e.data);
      seen.push_back(std::string(e.id) + " " + std::string(e.event) + " " +
                     j["message_id"].get<std::string>());
    });
    return seen.size() < 2;
  });
  publisher.join();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "1 message_received m1");
  EXPECT_EQ(seen[1], "3 stage_completed m1");
}

}  // namespace
}  // namespace embedstream::server
