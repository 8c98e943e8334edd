#include "api/api_routes.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/uuid.h"

namespace embedstream::api {
namespace {

MessageRequest MustParse(std::string_view body) {
  auto r = ParseMessageRequest(body);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << body << " -> " << e->error << ": " << e->detail;
    return {};
  }
  return std::get<MessageRequest>(r);
}

std::string ErrorOf(std::string_view body) {
  auto r = ParseMessageRequest(body);
  auto* e = std::get_if<ApiError>(&r);
  if (e == nullptr) return "accepted";
  EXPECT_EQ(e->status, 400);
  EXPECT_FALSE(e->detail.empty());
  return e->error;
}

TEST(ParseMessageRequest, AcceptsMessageOrTextWithIdMetadataAndUser) {
  auto a = MustParse(R"({"message":"hello","id":"m1","metadata":{"k":[1,2]}})");
  EXPECT_EQ(a.message.id, "m1");
  EXPECT_EQ(a.message.text, "hello");
  EXPECT_EQ(nlohmann::json::parse(a.message.metadata_json),
            nlohmann::json::parse(R"({"k":[1,2]})"));
  EXPECT_TRUE(a.user_id.empty());

  auto b = MustParse(R"({"text":"hi","user_id":"u7","metadata":{"user_id":"ignored","x":1}})");
  EXPECT_EQ(b.message.text, "hi");
  EXPECT_EQ(b.user_id, "u7");
  auto meta = nlohmann::json::parse(b.message.metadata_json);
  EXPECT_EQ(meta["user_id"], "u7");  // the top-level field wins
  EXPECT_EQ(meta["x"], 1);
  EXPECT_TRUE(ParseUuid(b.message.id).has_value()) << "a generated UUID: " << b.message.id;

  auto c = MustParse(R"({"text":"hi","metadata":{"user_id":"from-meta"}})");
  EXPECT_EQ(c.user_id, "from-meta");
  auto d = MustParse(R"({"text":"hi","metadata":null})");
  EXPECT_EQ(d.message.metadata_json, "");
}

TEST(ParseMessageRequest, RejectsEachBadShapeWithItsCode) {
  EXPECT_EQ(ErrorOf("{"), "invalid_json");
  EXPECT_EQ(ErrorOf(""), "invalid_json");
  EXPECT_EQ(ErrorOf("\"text\""), "wrong_type");
  EXPECT_EQ(ErrorOf("{\"message\":\"caf\xc3\"}"), "invalid_utf8");
  EXPECT_EQ(ErrorOf(R"({})"), "missing_text");
  EXPECT_EQ(ErrorOf(R"({"message":null})"), "wrong_type");
  EXPECT_EQ(ErrorOf(R"({"message":["a"]})"), "wrong_type");
  EXPECT_EQ(ErrorOf(R"({"message":" \n\t"})"), "empty_text");
  EXPECT_EQ(ErrorOf(R"({"message":"a","text":"b"})"), "conflicting_fields");
  EXPECT_EQ(ErrorOf(R"({"message":"a","id":1})"), "wrong_type");
  EXPECT_EQ(ErrorOf(R"({"message":"a","id":""})"), "invalid_id");
  EXPECT_EQ(ErrorOf(R"({"message":"a","id":"a\nb"})"), "invalid_id");
  EXPECT_EQ(ErrorOf(R"({"message":"a","id":")" + std::string(kMaxIdBytes + 1, 'x') + "\"}"),
            "invalid_id");
  EXPECT_EQ(ErrorOf(R"({"message":"a","metadata":"x"})"), "invalid_metadata");
  EXPECT_EQ(ErrorOf(R"({"message":"a","metadata":{"big":")" + std::string(kMaxMetadataBytes, 'x') +
                    "\"}}"),
            "invalid_metadata");
  EXPECT_EQ(ErrorOf(R"({"message":"a","user_id":{}})"), "wrong_type");
  EXPECT_EQ(ErrorOf(R"({"message":"a","Message":"b"})"), "unknown_field");
}

// Issue 12: a 400,000-deep metadata (an 800 KB body) crashed the server with
// SIGSEGV (the parsed tree was copied recursively); numbers beyond double
// range got 500.
TEST(ParseMessageRequest, DeepNestingIsTooDeepWithoutBuildingTheTree) {
  const size_t n = 400000;
  std::string deep = R"({"message":"x","metadata":{"a":)";
  deep.append(n, '[');
  deep.append(n, ']');
  deep += "}}";
  EXPECT_EQ(ErrorOf(deep), "too_deep");
  // The limit itself: kMaxJsonDepth nested containers in all are fine, one
  // more is not.
  auto nested = [](int levels) {  // the body object is level 1, metadata level 2
    std::string b = R"({"message":"x","metadata":{"a":)";
    b.append(static_cast<size_t>(levels - 2), '[');
    b += "1";
    b.append(static_cast<size_t>(levels - 2), ']');
    return b + "}}";
  };
  EXPECT_EQ(ErrorOf(nested(kMaxJsonDepth)), "accepted");
  EXPECT_EQ(ErrorOf(nested(kMaxJsonDepth + 1)), "too_deep");
  auto r = ParseSearchRequest(std::string(100000, '[') + std::string(100000, ']'), 3);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).error, "too_deep");
}

TEST(ParseMessageRequest, NumbersOutOfRangeAre400) {
  EXPECT_EQ(ErrorOf(R"({"message":"x","metadata":{"n":1e400}})"), "invalid_json");
  EXPECT_EQ(ErrorOf(R"({"message":"x","metadata":{"n":-1e400}})"), "invalid_json");
  auto r = ParseSearchRequest(R"({"query":"x","limit":1e400})", 3);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 400);
  EXPECT_EQ(std::get<ApiError>(r).error, "invalid_json");
}

TEST(ParseSearchRequest, QueryVectorLimitAndFilter) {
  auto r = ParseSearchRequest(R"({"query":"ml","limit":3,"filter":{"metadata.a.b":"x","n":2}})", 4);
  ASSERT_TRUE(std::holds_alternative<SearchRequest>(r));
  const auto& s = std::get<SearchRequest>(r);
  EXPECT_EQ(s.query, "ml");
  EXPECT_EQ(s.limit, 3u);
  ASSERT_EQ(s.filter.equals.size(), 2u);
  EXPECT_EQ(s.filter.equals[0], (std::pair<std::string, std::string>{"metadata.a.b", "\"x\""}));
  EXPECT_EQ(s.filter.equals[1], (std::pair<std::string, std::string>{"n", "2"}));

  auto v = ParseSearchRequest(R"({"vector":[1,0,0.5,-2]})", 4);
  ASSERT_TRUE(std::holds_alternative<SearchRequest>(v));
  EXPECT_EQ(std::get<SearchRequest>(v).vector, (std::vector<float>{1, 0, 0.5f, -2}));
  EXPECT_EQ(std::get<SearchRequest>(v).limit, 10u);
}

TEST(ParseSearchRequest, RejectsBadRequests) {
  auto code = [](std::string_view body) {
    auto r = ParseSearchRequest(body, 3);
    auto* e = std::get_if<ApiError>(&r);
    return e == nullptr ? std::string("accepted") : e->error;
  };
  EXPECT_EQ(code(R"({})"), "missing_query");
  EXPECT_EQ(code(R"({"query":""})"), "missing_query");
  EXPECT_EQ(code(R"({"query":"a","vector":[1,2,3]})"), "missing_query");
  EXPECT_EQ(code(R"({"query":1})"), "wrong_type");
  EXPECT_EQ(code(R"({"vector":[1,2]})"), "invalid_vector");
  EXPECT_EQ(code(R"({"vector":[1,"2",3]})"), "invalid_vector");
  EXPECT_EQ(code(R"({"vector":[0,0,0]})"), "invalid_vector");
  EXPECT_EQ(code(R"({"vector":[1e39,0,0]})"), "invalid_vector");
  // Finite, but not normalisable in float: scores came back null, unordered.
  EXPECT_EQ(code(R"({"vector":[1e-40,1e-40,1e-40]})"), "invalid_vector");
  EXPECT_EQ(code(R"({"vector":[3e38,3e38,0]})"), "invalid_vector");
  EXPECT_EQ(code(R"({"vector":[1e-15,0,0]})"), "accepted");
  EXPECT_EQ(code(R"({"query":"a","limit":0})"), "invalid_limit");
  EXPECT_EQ(code(R"({"query":"a","limit":1001})"), "invalid_limit");
  EXPECT_EQ(code(R"({"query":"a","limit":2.5})"), "invalid_limit");
  EXPECT_EQ(code(R"({"query":"a","filter":{"x":[1]}})"), "invalid_filter");
  EXPECT_EQ(code(R"({"query":"a","filter":{"metadata.":1}})"), "invalid_filter");
  EXPECT_EQ(code(R"({"query":"a","filter":{"a..b":1}})"), "invalid_filter");
  EXPECT_EQ(code(R"({"query":"a","k":1})"), "unknown_field");
}

TEST(MessageJson, StatusSpecificFields) {
  store::Message m;
  m.id = "m\"1";
  m.text = "t";
  m.status = store::MessageStatus::failed;
  m.reason = "why";
  m.created_at = 1.5;
  auto j = nlohmann::json::parse(MessageJson(m));
  EXPECT_EQ(j["id"], "m\"1");
  EXPECT_TRUE(j["metadata"].is_null());
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["reason"], "why");
  EXPECT_FALSE(j.contains("model_name"));
  m.status = store::MessageStatus::embedded;
  m.metadata_json = R"({"a":1})";
  m.model_name = "mm";
  j = nlohmann::json::parse(MessageJson(m));
  EXPECT_EQ(j["metadata"]["a"], 1);
  EXPECT_EQ(j["model_name"], "mm");
  EXPECT_FALSE(j.contains("reason"));
}

}  // namespace
}  // namespace embedstream::api
