#include "server/sse_hub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace embedstream::server {
namespace {

using namespace std::chrono_literals;

// One SSE frame as a client sees it: fields, or only comment lines.
struct Frame {
  std::string id;
  std::string event;
  std::string data;
  std::vector<std::string> comments;
  bool IsEvent() const { return !event.empty() || !data.empty(); }
};

// A blocking HTTP/1.1 client on a raw socket (5 s timeouts, so a broken hub
// fails a test instead of hanging it) that decodes the chunked body and
// splits it into SSE frames.
class SseClient {
 public:
  SseClient(uint16_t port, const std::string& target, const std::string& extra_headers = "",
            int receive_buffer_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = 5;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (receive_buffer_bytes > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    const std::string request = "GET " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" +
                                extra_headers + "\r\n";
    connected_ = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(request.size());
  }
  ~SseClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  bool connected() const { return connected_; }

  // The response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n"); empty on timeout.
  std::string Head() {
    while (head_.empty()) {
      if (!Receive()) return "";
    }
    return head_;
  }

  // The next frame; nullopt on timeout or end of stream.
  std::optional<Frame> NextFrame() {
    for (;;) {
      const auto end = body_.find("\n\n");
      if (end != std::string::npos) {
        const std::string text = body_.substr(0, end + 1);
        body_.erase(0, end + 2);
        return Parse(text);
      }
      if (ended_ || !Receive()) return std::nullopt;
    }
  }

  // The next frame with an event (comments skipped).
  std::optional<Frame> NextEvent() {
    for (;;) {
      auto frame = NextFrame();
      if (!frame || frame->IsEvent()) return frame;
    }
  }

  // True if the stream ends (last chunk, EOF or reset) within the timeout.
  bool WaitForEnd() {
    while (!ended_) {
      if (!Receive()) return ended_ || eof_;
    }
    return true;
  }

 private:
  static Frame Parse(const std::string& text) {
    Frame f;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t nl = text.find('\n', pos);
      const std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      if (line[0] == ':') {
        f.comments.push_back(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
        continue;
      }
      const size_t colon = line.find(": ");
      const std::string field = line.substr(0, colon);
      const std::string value = colon == std::string::npos ? "" : line.substr(colon + 2);
      if (field == "id") f.id = value;
      if (field == "event") f.event = value;
      if (field == "data") f.data += value;
    }
    return f;
  }

  // Reads once and decodes what it can; false on timeout, EOF or error.
  bool Receive() {
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    raw_.append(chunk, static_cast<size_t>(n));
    if (head_.empty()) {
      const auto end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return true;
      head_ = raw_.substr(0, end + 4);
      raw_.erase(0, end + 4);
    }
    for (;;) {  // chunked transfer coding: "<hex size>\r\n<bytes>\r\n"
      const auto line_end = raw_.find("\r\n");
      if (line_end == std::string::npos) break;
      const size_t size = std::strtoul(raw_.substr(0, line_end).c_str(), nullptr, 16);
      if (raw_.size() < line_end + 2 + size + 2) break;
      body_.append(raw_, line_end + 2, size);
      raw_.erase(0, line_end + 2 + size + 2);
      if (size == 0) ended_ = true;
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  bool ended_ = false;
  std::string raw_;
  std::string head_;
  std::string body_;
};

class SseHubTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (hub_) hub_->Stop();
    if (server_) server_->Stop();
  }

  void Start(SseHubOptions hub_options = {}, ServerOptions server_options = {}) {
    hub_options.metrics = &registry_;
    hub_ = std::make_unique<SseHub>(hub_options);
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    server_options.metrics = &registry_;
    server_ = std::make_unique<HttpServer>(server_options);
    hub_->Attach(*server_);
    const Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().ToString();
  }

  uint16_t port() const { return server_->port(); }

  // Waits (up to 5 s) until the hub has `n` clients.
  bool WaitForClients(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (hub_->clients() == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return hub_->clients() == n;
  }

  // A connected client whose stream has started (its head is read).
  std::unique_ptr<SseClient> Connect(const std::string& target,
                                     const std::string& extra_headers = "") {
    const size_t before = hub_->clients();
    auto c = std::make_unique<SseClient>(port(), target, extra_headers);
    EXPECT_TRUE(c->connected());
    const std::string head = c->Head();
    EXPECT_NE(head.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos) << head;
    EXPECT_TRUE(WaitForClients(before + 1));
    return c;
  }

  uint64_t PublishFor(const std::string& user_id, const std::string& key = "") {
    std::string message_id = "m";
    message_id += std::to_string(++messages_);
    return hub_->Publish({.type = "message_received",
                          .message_id = std::move(message_id),
                          .user_id = user_id,
                          .key = key,
                          .data_json = ""});
  }

  MetricsRegistry registry_;
  std::unique_ptr<SseHub> hub_;
  std::unique_ptr<HttpServer> server_;
  int messages_ = 0;
};

TEST_F(SseHubTest, EventsArriveInOrderWithIdsAndSeedFields) {
  Start();
  auto c = Connect("/events");
  auto hello = c->NextFrame();
  ASSERT_TRUE(hello);
  EXPECT_FALSE(hello->IsEvent());

  EXPECT_EQ(hub_->Publish({.type = "message_received", .message_id = "m1", .user_id = "u1"}), 1u);
  EXPECT_EQ(hub_->Publish({.type = "message_processing", .message_id = "m1", .user_id = "u1"}), 2u);
  for (int k = 1; k <= 5; ++k) {
    hub_->Publish({.type = "stage_completed",
                   .message_id = "m1",
                   .user_id = "u1",
                   .data_json = "{\"stage\":" + std::to_string(k) + ",\n \"stages\":5}"});
  }
  hub_->Publish({.type = "message_completed",
                 .message_id = "m1",
                 .user_id = "u1",
                 .key = "k1",
                 .data_json = R"({"dims":384})",
                 .timestamp = 1699123456.5});

  const std::vector<std::string> types = {
      "message_received", "message_processing", "stage_completed", "stage_completed",
      "stage_completed",  "stage_completed",    "stage_completed", "message_completed"};
  for (size_t i = 0; i < types.size(); ++i) {
    const auto e = c->NextEvent();
    ASSERT_TRUE(e) << "event " << i;
    EXPECT_EQ(e->id, std::to_string(i + 1));
    EXPECT_EQ(e->event, types[i]);
    const auto data = nlohmann::json::parse(e->data);
    EXPECT_EQ(data["type"], types[i]);
    EXPECT_EQ(data["message_id"], "m1");
    EXPECT_EQ(data["user_id"], "u1");
    EXPECT_TRUE(data["timestamp"].is_number());
    if (types[i] == "stage_completed") {
      EXPECT_EQ(data["stage"], static_cast<int>(i) - 1);
      EXPECT_EQ(data["stages"], 5);
    }
    if (types[i] == "message_completed") {
      EXPECT_EQ(data["key"], "k1");
      EXPECT_EQ(data["dims"], 384);
      EXPECT_DOUBLE_EQ(data["timestamp"].get<double>(), 1699123456.5);
    }
  }
  EXPECT_EQ(registry_.GetCounter("embedstream_sse_events_published_total", "").Value(), 8u);
  EXPECT_EQ(registry_.GetGauge("embedstream_sse_clients", "").Value(), 1.0);
}

TEST_F(SseHubTest, FiltersByUserIdAndByKey) {
  Start();
  auto by_user = Connect("/events?user_id=u1");
  auto by_key = Connect("/events?key=k2");
  auto by_both = Connect("/events?user_id=u1&key=k2");
  PublishFor("u1", "k1");  // 1
  PublishFor("u2", "k2");  // 2
  PublishFor("u1", "k2");  // 3
  PublishFor("u3", "k3");  // 4: nobody's
  PublishFor("u1", "k1");  // 5
  PublishFor("u2", "k2");  // 6
  const auto ids = [](SseClient& c, size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      auto e = c.NextEvent();
      if (!e) break;
      out.push_back(e->id);
    }
    return out;
  };
  EXPECT_EQ(ids(*by_user, 3), (std::vector<std::string>{"1", "3", "5"}));
  EXPECT_EQ(ids(*by_key, 3), (std::vector<std::string>{"2", "3", "6"}));
  PublishFor("u1", "k2");  // 7: lets the single-match client prove it skipped 5 and 6
  EXPECT_EQ(ids(*by_both, 2), (std::vector<std::string>{"3", "7"}));
}

TEST_F(SseHubTest, LastEventIdResumeReplaysOnlyNewerEvents) {
  Start();
  for (int i = 0; i < 5; ++i) PublishFor(i % 2 == 0 ? "u1" : "u2");
  auto c = Connect("/events", "Last-Event-ID: 3\r\n");
  auto e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "4");
  e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "5");
  PublishFor("u1");
  e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "6");

  // The query parameter works too, together with a filter.
  auto q = Connect("/events?last_event_id=1&user_id=u1");
  e = q->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "3");
  e = q->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "5");
  e = q->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "6");

  // Up to date: no replay, no reset, then live.
  auto current = Connect("/events", "Last-Event-ID: 6\r\n");
  PublishFor("u2");
  e = current->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "7");
}

TEST_F(SseHubTest, ResumeOlderThanTheRingSendsResetThenWhatItHas) {
  Start({.ring_capacity = 3});
  for (int i = 0; i < 10; ++i) PublishFor("u1");  // the ring keeps 8, 9, 10
  auto c = Connect("/events", "Last-Event-ID: 2\r\n");
  auto e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "reset");
  EXPECT_TRUE(e->id.empty());
  const auto data = nlohmann::json::parse(e->data);
  EXPECT_EQ(data["last_event_id"], 2);
  EXPECT_EQ(data["oldest_event_id"], 8);
  EXPECT_EQ(data["latest_event_id"], 10);
  for (const char* id : {"8", "9", "10"}) {
    e = c->NextEvent();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, id);
  }
  PublishFor("u1");
  e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "11");

  // An id this hub never issued (e.g. from before a restart) also resets.
  auto future = Connect("/events", "Last-Event-ID: 500\r\n");
  e = future->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "reset");
}

// An events bus (app/event_bus.h) delivers events with its own ids, the same
// on every instance.
std::string BusData(const std::string& type, const std::string& message_id,
                    const std::string& user_id) {
  return LifecycleEventData({.type = type, .message_id = message_id, .user_id = user_id},
                            1699123456.25);
}

TEST(LifecycleEventDataTest, IsTheFramesDataLine) {
  const std::string data = LifecycleEventData({.type = "stage_completed",
                                               .message_id = "m1",
                                               .user_id = "u1",
                                               .key = "k1",
                                               .data_json = "{\"stage\":2,\n\"stages\":3}"},
                                              12.5);
  EXPECT_EQ(data.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(data);
  EXPECT_EQ(j["type"], "stage_completed");
  EXPECT_EQ(j["message_id"], "m1");
  EXPECT_EQ(j["user_id"], "u1");
  EXPECT_EQ(j["key"], "k1");
  EXPECT_EQ(j["timestamp"], 12.5);
  EXPECT_EQ(j["stage"], 2);
  EXPECT_EQ(j["stages"], 3);
}

TEST_F(SseHubTest, ExternalIdsAreTheBussAndARedeliveryIsIgnored) {
  Start({.external_ids = true});
  hub_->SetFloor(40);  // the bus's window starts at 41
  auto c = Connect("/events?user_id=u1");
  EXPECT_TRUE(
      hub_->Deliver(41, "message_received", "u1", "m1", BusData("message_received", "m1", "u1")));
  EXPECT_TRUE(
      hub_->Deliver(42, "message_received", "u2", "m2", BusData("message_received", "m2", "u2")));
  EXPECT_FALSE(
      hub_->Deliver(41, "message_received", "u1", "m1", BusData("message_received", "m1", "u1")));
  EXPECT_FALSE(hub_->Deliver(42, "x", "u1", "m1", BusData("x", "m1", "u1")));
  // A bus may skip ids (e.g. offsets of records that are not events).
  EXPECT_TRUE(
      hub_->Deliver(45, "message_completed", "u1", "m1", BusData("message_completed", "m1", "u1")));
  EXPECT_EQ(hub_->latest_id(), 45u);
  auto e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "41");
  EXPECT_EQ(e->event, "message_received");
  EXPECT_EQ(nlohmann::json::parse(e->data)["timestamp"], 1699123456.25);  // the origin's time
  e = c->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "45");
  EXPECT_EQ(e->event, "message_completed");

  // Resume within the window replays what follows, across the skipped ids.
  auto r = Connect("/events?user_id=u1", "Last-Event-ID: 41\r\n");
  e = r->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "45");
  // Before the window: reset, then what the window holds.
  auto old = Connect("/events", "Last-Event-ID: 7\r\n");
  e = old->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "reset");
  EXPECT_EQ(nlohmann::json::parse(e->data)["oldest_event_id"], 41);
  e = old->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "41");
}

TEST_F(SseHubTest, ExternalIdsResumeAheadOfThisInstanceWaitsForTheBus) {
  // The client saw id 12 on another instance; this one has read up to 10.
  std::atomic<uint64_t> on_bus{12};
  Start({.external_ids = true, .bus_latest = [&on_bus] { return on_bus.load(); }});
  for (uint64_t id = 1; id <= 10; ++id) {
    const std::string mid = std::to_string(id);
    hub_->Deliver(id, "message_received", "u1", mid, BusData("message_received", mid, "u1"));
  }
  auto c = Connect("/events", "Last-Event-ID: 12\r\n");
  for (uint64_t id = 11; id <= 13; ++id) {
    hub_->Deliver(id, "message_processing", "u1", "m", BusData("message_processing", "m", "u1"));
  }
  auto e = c->NextEvent();  // no reset, no 11 or 12: the client has them
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "13");
  EXPECT_EQ(e->event, "message_processing");

  // An id the bus never issued (a recreated topic): reset.
  auto future = Connect("/events", "Last-Event-ID: 500\r\n");
  e = future->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "reset");
  EXPECT_EQ(nlohmann::json::parse(e->data)["latest_event_id"], 13);
}

TEST_F(SseHubTest, BadLastEventIdIs400) {
  Start();
  SseClient c(port(), "/events", "Last-Event-ID: abc\r\n");
  ASSERT_TRUE(c.connected());
  EXPECT_NE(c.Head().find("HTTP/1.1 400"), std::string::npos);
  EXPECT_EQ(hub_->clients(), 0u);
}

TEST_F(SseHubTest, SendsHeartbeats) {
  Start({.heartbeat = 100ms});
  auto c = Connect("/events");
  int pings = 0;
  const auto start = std::chrono::steady_clock::now();
  while (pings < 2) {
    auto f = c->NextFrame();
    ASSERT_TRUE(f);
    pings += static_cast<int>(std::count(f->comments.begin(), f->comments.end(), "ping"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(SseHubTest, StuckClientIsDroppedAndPublishDoesNotWait) {
  ServerOptions server_options;
  server_options.stream_queue_max_bytes = 64 * 1024;
  Start({}, server_options);
  // Reads the head, then nothing: its socket buffers fill, then the queue.
  SseClient stuck(port(), "/events", "", 4096);
  ASSERT_TRUE(stuck.connected());
  ASSERT_FALSE(stuck.Head().empty());
  ASSERT_TRUE(WaitForClients(1));

  const std::string payload = R"({"text":")" + std::string(2000, 'x') + R"("})";
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) {
    hub_->Publish({.type = "message_received", .message_id = "m", .data_json = payload});
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::printf("10000 publishes with a stuck client: %.1f ms\n",
              std::chrono::duration<double, std::milli>(elapsed).count());
  EXPECT_TRUE(WaitForClients(0));  // the stuck client is gone
  // Who notices first is a race: the hub (its Send is refused: counted as
  // dropped) or the server closing the overflowing stream (seen by the hub
  // as a disconnect). Either way it is counted at most once.
  EXPECT_LE(registry_.GetCounter("embedstream_sse_clients_dropped_total", "").Value(), 1u);

  // The hub still serves others.
  auto fresh = Connect("/events");
  const uint64_t id = PublishFor("u1");
  const auto e = fresh->NextEvent();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, std::to_string(id));
}

TEST_F(SseHubTest, TwoHundredClientsAllReceiveAnEvent) {
  constexpr size_t kClients = 200;
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 2 * kClients + 100) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 2 * kClients + 100);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < 2 * kClients + 100) GTEST_SKIP() << "needs " << 2 * kClients + 100 << " fds";
  Start();
  std::vector<std::unique_ptr<SseClient>> clients;
  for (size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<SseClient>(port(), "/events"));
    ASSERT_TRUE(clients.back()->connected());
  }
  ASSERT_TRUE(WaitForClients(kClients));
  const uint64_t id = hub_->Publish(
      {.type = "message_failed", .message_id = "m9", .data_json = R"({"error":"boom"})"});
  size_t received = 0;
  for (auto& c : clients) {
    const auto e = c->NextEvent();
    if (e && e->id == std::to_string(id) && e->event == "message_failed") ++received;
  }
  EXPECT_EQ(received, kClients);
}

TEST_F(SseHubTest, StopEndsStreamsAndRefusesNewOnes) {
  Start();
  auto c = Connect("/events");
  hub_->Stop();
  EXPECT_TRUE(c->WaitForEnd());
  EXPECT_EQ(hub_->clients(), 0u);
  SseClient late(port(), "/events");
  ASSERT_TRUE(late.connected());
  EXPECT_NE(late.Head().find("HTTP/1.1 503"), std::string::npos);
  hub_->Stop();  // idempotent
}

}  // namespace
}  // namespace embedstream::server
