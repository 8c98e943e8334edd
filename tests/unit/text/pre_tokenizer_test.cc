#include "text/pre_tokenizer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

using Words = std::vector<std::string>;

TEST(BertPreTokenizer, SplitsOnWhitespaceAndIsolatesPunctuation) {
  // HF's own unit test.
  EXPECT_EQ(BertPreTokenizer::Split("Hey friend!     How are you?!?"),
            (Words{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
  EXPECT_EQ(BertPreTokenizer::Split("don't"), (Words{"don", "'", "t"}));
  EXPECT_EQ(BertPreTokenizer::Split("a.b,c"), (Words{"a", ".", "b", ",", "c"}));
}

TEST(BertPreTokenizer, EveryAsciiPunctuationIsItsOwnWord) {
  const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  Words want;
  for (char c : punct) want.emplace_back(1, c);
  EXPECT_EQ(BertPreTokenizer::Split(punct), want);
  EXPECT_EQ(BertPreTokenizer::Split("x" + punct + "y").size(), punct.size() + 2);
}

TEST(BertPreTokenizer, UnicodePunctuationAndWhitespace) {
  EXPECT_EQ(BertPreTokenizer::Split("«hi»—ok…"), (Words{"«", "hi", "»", "—", "ok", "…"}));
  EXPECT_EQ(BertPreTokenizer::Split("你好。世界！"), (Words{"你好", "。", "世界", "！"}));
  EXPECT_EQ(BertPreTokenizer::Split("a\u3000b\u00a0c\u2003d\te\nf\vg"),
            (Words{"a", "b", "c", "d", "e", "f", "g"}));
  // Symbols, emoji and zero-width chars are not separators.
  EXPECT_EQ(BertPreTokenizer::Split("a€b 1+1 x😀y a\u200bb"),
            (Words{"a€b", "1", "+", "1", "x😀y", "a\u200bb"}));
}

TEST(BertPreTokenizer, EmptyAndWhitespaceOnly) {
  EXPECT_TRUE(BertPreTokenizer::Split("").empty());
  EXPECT_TRUE(BertPreTokenizer::Split(" \t\n\u3000 ").empty());
}

TEST(BertPreTokenizer, CountsCodePoints) {
  size_t pos = 0;
  PreTokenizedWord w;
  ASSERT_TRUE(BertPreTokenizer::NextWord("  héllo😀 x", pos, w));
  EXPECT_EQ(w.text, "héllo😀");
  EXPECT_EQ(w.chars, 6u);
  ASSERT_TRUE(BertPreTokenizer::NextWord("  héllo😀 x", pos, w));
  EXPECT_EQ(w.text, "x");
  EXPECT_EQ(w.chars, 1u);
  EXPECT_FALSE(BertPreTokenizer::NextWord("  héllo😀 x", pos, w));
}

}  // namespace
}  // namespace embedstream::text
