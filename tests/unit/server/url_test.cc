#include "server/url.h"

#include <gtest/gtest.h>

namespace embedstream::server {
namespace {

TEST(Url, PercentDecodesAndKeepsMalformedEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("%E2%9C%93", false), "\xE2\x9C\x93");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("%zz%41", false), "%zzA");
}

TEST(Url, ParsesQueryStrings) {
  const auto q = ParseQuery("limit=5&user_id=a%26b&text=hello+world&flag&&limit=9&=x");
  EXPECT_EQ(q.at("limit"), "5");  // first value wins
  EXPECT_EQ(q.at("user_id"), "a&b");
  EXPECT_EQ(q.at("text"), "hello world");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(q.at(""), "x");
  EXPECT_EQ(q.size(), 5u);
  EXPECT_TRUE(ParseQuery("").empty());
}

TEST(Url, SplitsTargetAtFirstQuestionMark) {
  auto [path, query] = SplitTarget("/messages/a%20b?x=1?y");
  EXPECT_EQ(path, "/messages/a b");
  EXPECT_EQ(query, "x=1?y");
  auto [bare, none] = SplitTarget("/health");
  EXPECT_EQ(bare, "/health");
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace embedstream::server
