#include "text/vocab.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

TEST(Vocab, FindsEveryTokenById) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back("tok" + std::to_string(i * 7919));
  auto v = Vocab::Build(tokens);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_EQ(v->Find(tokens[i]), static_cast<int32_t>(i));
    EXPECT_EQ(v->Token(static_cast<int32_t>(i)), tokens[i]);
  }
  EXPECT_EQ(v->Find("tok1"), Vocab::kNotFound);
  EXPECT_EQ(v->Find(""), Vocab::kNotFound);
}

TEST(Vocab, FindHashedMatchesPrefixPlusPiece) {
  auto v = Vocab::Build({"[UNK]", "play", "##ing", "##in", "ing"});
  ASSERT_TRUE(v.ok());
  const uint64_t h = Vocab::HashBytes(Vocab::HashBytes(Vocab::kHashSeed, "##"), "ing");
  EXPECT_EQ(v->FindHashed(h, "##", "ing"), 2);
  EXPECT_EQ(v->FindHashed(Vocab::HashBytes(Vocab::kHashSeed, "ing"), "", "ing"), 4);
  EXPECT_EQ(v->Find("##in"), 3);
  EXPECT_EQ(v->max_token_bytes(), 5u);
}

TEST(Vocab, DuplicateStringFindsTheLaterId) {
  auto v = Vocab::Build({"a", "b", "a"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("a"), 2);
  EXPECT_EQ(v->Token(0), "a");
  EXPECT_EQ(v->size(), 3u);
}

TEST(Vocab, EmptyIsAnError) {
  auto v = Vocab::Build({});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, errc::invalid_argument);
}

TEST(Vocab, BinaryTokens) {
  auto v = Vocab::Build({std::string("a\0b", 3), "a"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find(std::string_view("a\0b", 3)), 0);
  EXPECT_EQ(v->Find("a"), 1);
}

}  // namespace
}  // namespace embedstream::text
