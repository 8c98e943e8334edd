#include "text/wordpiece.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

// ids: [UNK]=0 un=1 ##aff=2 ##able=3 a=4 ##a=5 ##b=6 b=7 ##ab=8 caf=9 ##é=10
WordPiece Make(size_t max_chars = 100, std::string prefix = "##") {
  std::vector<std::string> tokens = {"[UNK]", "un", "##aff", "##able", "a",  "##a",
                                     "##b",   "b",  "##ab",  "caf",    "##é"};
  if (prefix != "##") {
    for (std::string& t : tokens) {
      if (t.starts_with("##")) t = prefix + t.substr(2);
    }
  }
  auto wp = WordPiece::Create(*Vocab::Build(tokens), {.unk_token = "[UNK]",
                                                      .continuing_subword_prefix = prefix,
                                                      .max_input_chars_per_word = max_chars});
  EXPECT_TRUE(wp.ok());
  return std::move(*wp);
}

std::vector<int32_t> Ids(const WordPiece& wp, std::string_view word, size_t chars,
                         size_t room = SIZE_MAX) {
  std::vector<int32_t> out;
  wp.TokenizeWord(word, chars, room, out);
  return out;
}

TEST(WordPiece, GreedyLongestMatchWithContinuationPrefix) {
  const WordPiece wp = Make();
  EXPECT_EQ(Ids(wp, "unaffable", 9), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(Ids(wp, "a", 1), (std::vector<int32_t>{4}));
  // Longest first: "##ab" beats "##a" + "##b".
  EXPECT_EQ(Ids(wp, "aab", 3), (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(Ids(wp, "aaa", 3), (std::vector<int32_t>{4, 5, 5}));
  EXPECT_EQ(Ids(wp, "café", 4), (std::vector<int32_t>{9, 10}));
}

TEST(WordPiece, NoFullMatchIsOneUnk) {
  const WordPiece wp = Make();
  EXPECT_EQ(Ids(wp, "unx", 3), (std::vector<int32_t>{0}));
  EXPECT_EQ(Ids(wp, "xa", 2), (std::vector<int32_t>{0}));
  // Greedy does not backtrack: "##ab" then "##c" fails, so the word is unk.
  EXPECT_EQ(Ids(wp, "aabc", 4), (std::vector<int32_t>{0}));
}

TEST(WordPiece, LongWordIsUnkCountingCodePoints) {
  const WordPiece wp = Make(4);
  EXPECT_EQ(Ids(wp, "aaaa", 4), (std::vector<int32_t>{4, 5, 5, 5}));
  EXPECT_EQ(Ids(wp, "aaaaa", 5), (std::vector<int32_t>{0}));
  EXPECT_EQ(Ids(wp, "café", 4), (std::vector<int32_t>{9, 10}));  // 5 bytes, 4 chars
  const WordPiece wp100 = Make();
  EXPECT_EQ(Ids(wp100, std::string(100, 'a'), 100).size(), 100u);
  EXPECT_EQ(Ids(wp100, std::string(101, 'a'), 101), (std::vector<int32_t>{0}));
}

TEST(WordPiece, RoomLimitsStoredPiecesButNotTheUnkDecision) {
  const WordPiece wp = Make();
  std::vector<int32_t> out = {42};
  EXPECT_EQ(wp.TokenizeWord("aaaa", 4, 2, out), 4u);
  EXPECT_EQ(out, (std::vector<int32_t>{42, 4, 5}));
  out = {42};
  EXPECT_EQ(wp.TokenizeWord("aaax", 4, 2, out), 1u);  // fails past the room: still unk
  EXPECT_EQ(out, (std::vector<int32_t>{42, 0}));
}

TEST(WordPiece, OtherPrefix) {
  const WordPiece wp = Make(100, "@@");
  EXPECT_EQ(Ids(wp, "unaffable", 9), (std::vector<int32_t>{1, 2, 3}));
}

TEST(WordPiece, MissingUnkIsAnError) {
  auto wp = WordPiece::Create(*Vocab::Build({"a"}), {});
  ASSERT_FALSE(wp.ok());
  EXPECT_EQ(wp.error().code, errc::invalid_argument);
}

TEST(WordPiece, TokensLongerThanTheHashWindow) {
  const std::string long_token(300, 'z');
  auto wp = WordPiece::Create(*Vocab::Build({"[UNK]", long_token, "##z", "z"}),
                              {.max_input_chars_per_word = 1000});
  ASSERT_TRUE(wp.ok());
  std::vector<int32_t> out;
  wp->TokenizeWord(long_token + "zz", 302, SIZE_MAX, out);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 2}));
}

}  // namespace
}  // namespace embedstream::text
