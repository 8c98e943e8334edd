#include "cli/client_commands.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "server/sse_hub.h"

namespace embedstream::cli {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(ClientFlags, FlagThenEnvironmentThenDefault) {
  ::unsetenv("EMBEDSTREAM_URL");
  ::unsetenv("EMBEDSTREAM_AUTH_TOKEN");
  ClientFlags flags;
  EXPECT_EQ(flags.ResolvedUrl(), "http://localhost:5000");
  EXPECT_EQ(flags.ResolvedToken(), "");
  ::setenv("EMBEDSTREAM_URL", "http://env:1", 1);
  ::setenv("EMBEDSTREAM_AUTH_TOKEN", "envtok", 1);
  EXPECT_EQ(flags.ResolvedUrl(), "http://env:1");
  EXPECT_EQ(flags.ResolvedToken(), "envtok");
  flags.url = "http://flag:2";
  flags.token = "flagtok";
  EXPECT_EQ(flags.ResolvedUrl(), "http://flag:2");
  EXPECT_EQ(flags.ResolvedToken(), "flagtok");
  ::unsetenv("EMBEDSTREAM_URL");
  ::unsetenv("EMBEDSTREAM_AUTH_TOKEN");
}

// A stand-in for `embedstream serve`'s API (docs/API.md), enough to run the
// commands end to end in-process.
class ClientCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<server::HttpServer>(
        server::ServerOptions{.host = "127.0.0.1", .port = 0, .metrics = &registry_});
    server_->Route("POST", "/messages", [this](const server::HttpRequest& r) {
      last_body_ = r.body;
      last_auth_ = r.headers.count("authorization") ? r.headers.at("authorization") : "";
      const auto j = json::parse(r.body, nullptr, false);
      if (j.is_discarded() || !j.contains("message"))
        return server::JsonError(400, "missing_text", "give \"message\" or \"text\"");
      return server::JsonOk(R"({"id":"m-42","status":"pending","created":true})", 202);
    });
    server_->Route("GET", "/messages", [this](const server::HttpRequest& r) {
      last_target_ = r.target;
      return server::JsonOk(
          R"({"messages":[{"id":"m1","text":"hi","status":"embedded","created_at":1700000000}],)"
          R"("limit":1,"offset":0,"total":1})");
    });
    server_->Route("GET", "/messages/*", [this](const server::HttpRequest& r) {
      last_target_ = r.target;
      if (r.path != "/messages/a b")
        return server::JsonError(404, "not_found", "no message with id '" + r.path + "'");
      return server::JsonOk(R"({"id":"a b","text":"hi","status":"pending","metadata":null})");
    });
    server_->Route("GET", "/status", [](const server::HttpRequest&) {
      return server::JsonOk(R"({"total":1,"pending":0,"embedded":1,"failed":0})");
    });
    server_->Route("GET", "/stats",
                   [](const server::HttpRequest&) { return server::JsonOk(R"({"uptime_s":3})"); });
    server_->Route("POST", "/embeddings/search", [this](const server::HttpRequest& r) {
      last_body_ = r.body;
      return server::JsonOk(
          R"({"results":[{"id":"m1","score":0.75,"text":"hi","metadata":null}],"count":1,)"
          R"("took_ms":0.5,"model":"mini"})");
    });
    hub_ = std::make_unique<server::SseHub>(server::SseHubOptions{.metrics = &registry_});
    hub_->Attach(*server_);
    ASSERT_TRUE(server_->Start().ok());
    flags_.url = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  void TearDown() override {
    hub_->Stop();
    server_->Stop();
  }

  MetricsRegistry registry_;
  std::unique_ptr<server::HttpServer> server_;
  std::unique_ptr<server::SseHub> hub_;
  ClientFlags flags_;
  std::string last_body_, last_auth_, last_target_;
  std::ostringstream out_, err_;
};

TEST_F(ClientCommandsTest, CreatePrintsTheIdAndSendsTheToken) {
  MessagesCommand cmd;
  cmd.client = flags_;
  cmd.client.token = "s3cret";
  cmd.text = "hello";
  cmd.user_id = "u1";
  cmd.metadata = R"({"lang":"en"})";
  EXPECT_EQ(cmd.Create(out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "m-42\n");
  EXPECT_EQ(last_body_, R"({"message":"hello","metadata":{"lang":"en"},"user_id":"u1"})");
  EXPECT_EQ(last_auth_, "Bearer s3cret");

  std::ostringstream out;
  cmd.client.json = true;
  EXPECT_EQ(cmd.Create(out, err_), kExitOk);
  EXPECT_EQ(json::parse(out.str())["status"], "pending");
}

TEST_F(ClientCommandsTest, BadMetadataIsAUsageError) {
  MessagesCommand cmd;
  cmd.client = flags_;
  cmd.text = "hello";
  cmd.metadata = "[1]";
  EXPECT_EQ(cmd.Create(out_, err_), kExitUsage);
  EXPECT_NE(err_.str().find("--metadata must be a JSON object"), std::string::npos);
  EXPECT_TRUE(last_body_.empty());  // nothing was sent
}

TEST_F(ClientCommandsTest, ListGetAndStats) {
  MessagesCommand cmd;
  cmd.client = flags_;
  cmd.limit = 1;
  cmd.offset = 0;
  EXPECT_EQ(cmd.List(out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(last_target_, "/messages?limit=1&offset=0");
  EXPECT_NE(out_.str().find("m1  embedded  2023-11-14 22:13:20  hi"), std::string::npos)
      << out_.str();

  std::ostringstream get_out;
  cmd.id = "a b";
  EXPECT_EQ(cmd.Get(get_out, err_), kExitOk) << err_.str();
  EXPECT_EQ(last_target_, "/messages/a%20b");
  EXPECT_NE(get_out.str().find("status:   pending"), std::string::npos) << get_out.str();

  std::ostringstream stats_out;
  cmd.client.json = true;
  EXPECT_EQ(cmd.Stats(stats_out, err_), kExitOk) << err_.str();
  const auto j = json::parse(stats_out.str());
  EXPECT_EQ(j["status"]["embedded"], 1);
  EXPECT_EQ(j["stats"]["uptime_s"], 3);
}

TEST_F(ClientCommandsTest, ServerErrorExitsOneWithErrorAndDetail) {
  MessagesCommand cmd;
  cmd.client = flags_;
  cmd.id = "missing";
  EXPECT_EQ(cmd.Get(out_, err_), kExitServerError);
  EXPECT_EQ(err_.str(),
            "error: the server answered 404 not_found: no message with id '/messages/missing'\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ClientCommandsTest, CannotConnectExitsTwo) {
  // A port nobody listens on.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  SearchCommand cmd;
  cmd.client.url = url;
  cmd.query = "x";
  EXPECT_EQ(cmd.Run(out_, err_), kExitUsage);
  EXPECT_EQ(err_.str(), "error: cannot connect to " + url +
                            ": Connection refused; is `embedstream serve` running?\n");

  std::ostringstream err;
  cmd.client.url = "https://example.com";
  EXPECT_EQ(cmd.Run(out_, err), kExitUsage);
  EXPECT_NE(err.str().find("https is not supported"), std::string::npos);
}

TEST_F(ClientCommandsTest, SearchSendsFiltersAndPrintsATable) {
  SearchCommand cmd;
  cmd.client = flags_;
  cmd.query = "hello";
  cmd.limit = 3;
  cmd.filters = {"metadata.user_id=u1", "metadata.n=2"};
  EXPECT_EQ(cmd.Run(out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(last_body_,
            R"({"query":"hello","limit":3,"filter":{"metadata.user_id":"u1","metadata.n":2}})");
  EXPECT_EQ(out_.str(),
            "RANK  SCORE   ID  TEXT\n"
            "1     0.7500  m1  hi\n"
            "1 result in 0.5 ms (mini)\n");

  std::ostringstream err;
  cmd.filters = {"oops"};
  EXPECT_EQ(cmd.Run(out_, err), kExitUsage);
  EXPECT_NE(err.str().find("expected key=value"), std::string::npos);
}

TEST_F(ClientCommandsTest, EventsPrintsOneLinePerEventUntilCount) {
  std::thread publisher([this] {
    for (int i = 0; i < 500 && hub_->clients() == 0; ++i) std::this_thread::sleep_for(10ms);
    hub_->Publish({.type = "message_received", .message_id = "m1", .user_id = "u2"});
    hub_->Publish({.type = "message_received", .message_id = "m2", .user_id = "u1"});
    hub_->Publish({.type = "stage_completed",
                   .message_id = "m2",
                   .user_id = "u1",
                   .data_json = R"({"stage":1,"stages":3,"name":"tokenize"})"});
  });
  EventsCommand cmd;
  cmd.client = flags_;
  cmd.user_id = "u1";
  cmd.count = 2;
  cmd.timeout_s = 10;
  EXPECT_EQ(cmd.Run(out_, err_), kExitOk) << err_.str();
  publisher.join();
  std::istringstream lines(out_.str());
  std::string line;
  std::vector<std::string> seen;
  while (std::getline(lines, line)) seen.push_back(line);
  ASSERT_EQ(seen.size(), 2u) << out_.str();
  EXPECT_EQ(seen[0].rfind("2 message_received {", 0), 0u) << seen[0];
  EXPECT_EQ(seen[1].rfind("3 stage_completed {", 0), 0u) << seen[1];
  const auto data = json::parse(seen[1].substr(seen[1].find('{')));
  EXPECT_EQ(data["message_id"], "m2");
  EXPECT_EQ(data["name"], "tokenize");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ClientCommandsTest, EventsStopsAfterTheTimeout) {
  EventsCommand cmd;
  cmd.client = flags_;
  cmd.client.json = true;
  cmd.timeout_s = 0.3;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(cmd.Run(out_, err_), kExitOk) << err_.str();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "");
}

}  // namespace
}  // namespace embedstream::cli
