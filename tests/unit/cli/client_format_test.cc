#include "cli/client_format.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace embedstream::cli {
namespace {

using nlohmann::json;

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

}  // namespace
}  // namespace embedstream::cli
