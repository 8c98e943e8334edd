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

TEST(ParseFilterTerm, ValuesAreJsonScalarsElseStrings) {
  struct Case {
    const char* arg;
    const char* key;
    const char* value_json;
  };
  for (const Case& c : std::vector<Case>{
           {"metadata.lang=en", "metadata.lang", R"("en")"},
           {"metadata.n=42", "metadata.n", "42"},
           {"n=-4.5", "n", "-4.5"},
           {"ok=true", "ok", "true"},
           {"ok=false", "ok", "false"},
           {"gone=null", "gone", "null"},
           {R"(q="42")", "q", R"("42")"},
           {"zip=007", "zip", R"("007")"},  // not valid JSON: a string
           {"s=hello world", "s", R"("hello world")"},
           {"e=", "e", R"("")"},
           {"eq=a=b", "eq", R"("a=b")"},  // split at the first '='
           {" k =v", "k", R"("v")"},
           {"u=\xC3\xA9t\xC3\xA9", "u", "\"\xC3\xA9t\xC3\xA9\""},
       }) {
    const auto t = ParseFilterTerm(c.arg);
    ASSERT_TRUE(t.ok()) << c.arg << ": " << t.error().ToString();
    EXPECT_EQ(t->key, c.key) << c.arg;
    EXPECT_EQ(t->value_json, c.value_json) << c.arg;
  }
}

TEST(ParseFilterTerm, RefusesMissingEqualsEmptyKeyAndCompoundValues) {
  for (const char* bad : {"lang", "=en", " =en", "a=[1,2]", R"(a={"b":1})"}) {
    const auto t = ParseFilterTerm(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(t.error().code, errc::invalid_argument);
    }
  }
}

TEST(BuildSearchBody, QueryLimitAndFilterObject) {
  auto body = BuildSearchBody("cats", 5, {});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, R"({"query":"cats","limit":5})");
  body = BuildSearchBody("cats", 3, {"metadata.lang=en", "metadata.n=2", "flag=true"});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(
      *body,
      R"({"query":"cats","limit":3,"filter":{"metadata.lang":"en","metadata.n":2,"flag":true}})");
  body = BuildSearchBody("cats", 3, {"a=1", "a=2"});
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.error().message.find("given twice"), std::string::npos);
  EXPECT_FALSE(BuildSearchBody("cats", 3, {"nokey"}).ok());
}

TEST(BuildCreateBody, OptionalFieldsAndMetadataMustBeAnObject) {
  auto body = BuildCreateBody("hello", "", "", "");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, R"({"message":"hello"})");
  body = BuildCreateBody("hello", "m1", R"({"lang":"en"})", "u1");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, R"({"message":"hello","id":"m1","metadata":{"lang":"en"},"user_id":"u1"})");
  for (const char* bad : {"[1]", "42", "{nope", "\"s\""}) {
    body = BuildCreateBody("hello", "", bad, "");
    EXPECT_FALSE(body.ok()) << bad;
  }
}

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

TEST(Formatting, EllipsizeCountsCodePointsAndFlattensControls) {
  EXPECT_EQ(Ellipsize("short", 10), "short");
  EXPECT_EQ(Ellipsize("0123456789", 10), "0123456789");
  EXPECT_EQ(Ellipsize("0123456789abc", 10), "012345678\xE2\x80\xA6");
  EXPECT_EQ(Ellipsize("line\nbreak\ttab", 20), "line break tab");
  // Multi-byte characters are never cut in half.
  EXPECT_EQ(Ellipsize("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(PercentEncode("a b/c?d&e=é~"), "a%20b%2Fc%3Fd%26e%3D%C3%A9~");
  EXPECT_EQ(FormatUnixTime(1700000000.9), "2023-11-14 22:13:20");
}

TEST(Formatting, MessageListTable) {
  const auto text = FormatMessageList(R"({"messages":[
      {"id":"m2","text":"second\nline","status":"pending","metadata":null,"created_at":1700000001.5},
      {"id":"m1","text":"first","status":"embedded","metadata":{"user_id":"u"},"created_at":1700000000}],
      "limit":2,"offset":0,"total":7})");
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  EXPECT_EQ(*text,
            "ID  STATUS    CREATED (UTC)        TEXT\n"
            "m2  pending   2023-11-14 22:13:21  second line\n"
            "m1  embedded  2023-11-14 22:13:20  first\n"
            "1-2 of 7\n");
  EXPECT_EQ(*FormatMessageList(R"({"messages":[],"limit":20,"offset":0,"total":0})"),
            "no messages\n");
  EXPECT_FALSE(FormatMessageList(R"({"nope":1})").ok());
  EXPECT_FALSE(FormatMessageList("not json").ok());
}

TEST(Formatting, SearchResultsTable) {
  const auto text = FormatSearchResults(R"({"results":[
      {"id":"a","score":0.91234,"text":"cats purr","metadata":null},
      {"id":"bb","score":0.5,"text":"dogs bark","metadata":{"lang":"en"}}],
      "count":2,"took_ms":1.7,"model":"all-MiniLM-L6-v2"})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "RANK  SCORE   ID  TEXT\n"
            "1     0.9123  a   cats purr\n"
            "2     0.5000  bb  dogs bark\n"
            "2 results in 1.7 ms (all-MiniLM-L6-v2)\n");
  EXPECT_EQ(*FormatSearchResults(R"({"results":[],"count":0,"took_ms":0.2})"),
            "no results in 0.2 ms\n");
}

TEST(Formatting, MessageAndKeyValues) {
  const auto m =
      FormatMessage(R"({"text":"hello","id":"m1","metadata":{"user_id":"u1"},"status":"embedded",)"
                    R"("model_name":"mini","created_at":1700000000,"embedded_at":1700000001})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m,
            "id:          m1\n"
            "status:      embedded\n"
            "model_name:  mini\n"
            "created_at:  2023-11-14 22:13:20 UTC (1700000000)\n"
            "embedded_at: 2023-11-14 22:13:21 UTC (1700000001)\n"
            "metadata:    {\"user_id\":\"u1\"}\n"
            "text:        hello\n");
  const auto kv = FormatKeyValues(R"({"total":3,"kafka":{"lag":0,"topic":"t"},"list":[1,2]})");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(*kv,
            "  kafka.lag:   0\n"
            "  kafka.topic: t\n"
            "  list:        [1,2]\n"
            "  total:       3\n");
  EXPECT_EQ(FormatEventLine("4", "stage_completed", R"({"a":1})", false),
            R"(4 stage_completed {"a":1})");
  EXPECT_EQ(FormatEventLine("", "reset", "x\ny", true), "x y");
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
