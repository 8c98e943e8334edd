#include "api/openapi.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "test_util.h"

namespace embedstream::api {
namespace {

using json = nlohmann::json;

std::string ReadSource() {
  std::ifstream in(embedstream::testing::SourceDir() / "docs/openapi.yaml", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json Convert(std::string_view yaml) {
  auto out = YamlToJson(yaml);
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().ToString());
  return out.ok() ? json::parse(*out) : json();
}

TEST(OpenApiTest, EmbeddedYamlIsTheSourceFile) {
  const std::string source = ReadSource();
  ASSERT_FALSE(source.empty()) << "docs/openapi.yaml not readable";
  EXPECT_EQ(OpenApiYaml().size(), source.size());
  EXPECT_TRUE(OpenApiYaml() == source) << "rebuild: the embedded document differs from the file";
}

TEST(OpenApiTest, DocumentConvertsToOpenApi31) {
  const auto& text = OpenApiJson();
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  const json doc = json::parse(*text);
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
  EXPECT_TRUE(doc.at("info").at("title").is_string());
  // Status codes stay strings (quoted in the YAML), as OpenAPI wants.
  EXPECT_TRUE(doc.at("paths").at("/health").at("get").at("responses").contains("200"));
  for (const char* path :
       {"/", "/health", "/ready", "/stats", "/config", "/metrics", "/events", "/openapi.json",
        "/messages", "/messages/{id}", "/documents", "/status", "/embeddings/search"}) {
    EXPECT_TRUE(doc.at("paths").contains(path)) << path;
  }
  // Keys keep the document's order (openapi first), for people reading it.
  EXPECT_EQ(text->rfind("{\"openapi\":\"3.1.0\"", 0), 0u) << text->substr(0, 80);
}

TEST(OpenApiTest, ScalarsFollowTheCoreSchema) {
  const json j = Convert(
      "quoted: '200'\n"
      "double_quoted: \"true\"\n"
      "plain_int: 200\n"
      "negative: -7\n"
      "hex: 0x1F\n"
      "float: 1.5\n"
      "exp: 2.5e3\n"
      "version: 3.1.0\n"
      "yes_word: yes\n"
      "t: true\n"
      "f: FALSE\n"
      "n: null\n"
      "tilde: ~\n"
      "empty:\n"
      "str: !!str 12\n"
      "block: |\n  two\n  lines\n"
      "seq: [a, 'null', null, 1]\n"
      "? 404\n"
      ": not found\n"
      "nested: {a: {b: [1, {c: d}]}}\n");
  EXPECT_EQ(j.at("quoted"), "200");
  EXPECT_EQ(j.at("double_quoted"), "true");
  EXPECT_EQ(j.at("plain_int"), 200);
  EXPECT_EQ(j.at("negative"), -7);
  EXPECT_EQ(j.at("hex"), 31);
  EXPECT_EQ(j.at("float"), 1.5);
  EXPECT_EQ(j.at("exp"), 2500.0);
  EXPECT_EQ(j.at("version"), "3.1.0");
  EXPECT_EQ(j.at("yes_word"), "yes");  // YAML 1.2: not a boolean
  EXPECT_EQ(j.at("t"), true);
  EXPECT_EQ(j.at("f"), false);
  EXPECT_TRUE(j.at("n").is_null());
  EXPECT_TRUE(j.at("tilde").is_null());
  EXPECT_TRUE(j.at("empty").is_null());
  EXPECT_EQ(j.at("str"), "12");
  EXPECT_EQ(j.at("block"), "two\nlines\n");
  EXPECT_EQ(j.at("seq"), json::parse(R"(["a", "null", null, 1])"));
  EXPECT_EQ(j.at("404"), "not found");  // keys are strings
  EXPECT_EQ(j.at("nested"), json::parse(R"({"a": {"b": [1, {"c": "d"}]}})"));
}

TEST(OpenApiTest, RefusesWhatJsonCannotHold) {
  for (const char* bad : {"a: .inf\n", "a: -.Inf\n", "a: .nan\n", "a: [unclosed\n", "[1, 2]: x\n",
                          "a: 99999999999999999999\n", "a: !custom x\n"}) {
    auto out = YamlToJson(bad);
    EXPECT_FALSE(out.ok()) << bad << " -> " << (out.ok() ? *out : "");
    if (!out.ok()) {
      EXPECT_EQ(out.error().code, errc::invalid_argument) << bad;
    }
  }
}

TEST(OpenApiTest, ServedAsJson) {
  server::HttpServer http({.host = "127.0.0.1", .port = 0});
  RegisterOpenApi(http);
  ASSERT_TRUE(http.Start().ok());
  const std::string resp = embedstream::testing::RawHttpExchange(
      http.port(), "GET /openapi.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  http.Stop();
  const size_t head_end = resp.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << resp.substr(0, 200);
  std::string head = resp.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(head.rfind("http/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("content-type: application/json"), std::string::npos) << head;
  ASSERT_TRUE(OpenApiJson().ok());
  EXPECT_TRUE(std::string_view(resp).substr(head_end + 4) == *OpenApiJson());
}

}  // namespace
}  // namespace embedstream::api
