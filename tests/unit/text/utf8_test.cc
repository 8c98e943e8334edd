#include "text/utf8.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

std::vector<char32_t> DecodeAll(std::string_view s) {
  std::vector<char32_t> cps;
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    EXPECT_GE(d.size, 1u);
    cps.push_back(d.cp);
    i += d.size;
  }
  return cps;
}

constexpr char32_t R = kReplacementChar;

TEST(Utf8, DecodesWellFormedSequences) {
  EXPECT_EQ(DecodeAll("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"),
            (std::vector<char32_t>{'a', 0xE9, 0x4E2D, 0x1F600}));
  // Boundaries of each length.
  EXPECT_EQ(
      DecodeAll("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"),
      (std::vector<char32_t>{0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF}));
  EXPECT_EQ(DecodeAll(std::string("\0x", 2)), (std::vector<char32_t>{0, 'x'}));
}

TEST(Utf8, LoneContinuationBytesAreOneReplacementEach) {
  EXPECT_EQ(DecodeAll("\x80"), (std::vector<char32_t>{R}));
  EXPECT_EQ(DecodeAll("a\x80\xBF"
                      "b"),
            (std::vector<char32_t>{'a', R, R, 'b'}));
}

TEST(Utf8, TruncatedSequencesAreOneReplacementPerByte) {
  EXPECT_EQ(DecodeAll("\xC3"), (std::vector<char32_t>{R}));
  EXPECT_EQ(DecodeAll("\xE4\xB8"), (std::vector<char32_t>{R, R}));
  EXPECT_EQ(DecodeAll("\xF0\x9F\x98"), (std::vector<char32_t>{R, R, R}));
  EXPECT_EQ(DecodeAll("\xE4\xB8x"), (std::vector<char32_t>{R, R, 'x'}));
  EXPECT_EQ(DecodeAll("\xC3\xC3\xA9"), (std::vector<char32_t>{R, 0xE9}));
}

TEST(Utf8, OverlongEncodingsAreRejected) {
  EXPECT_EQ(DecodeAll("\xC0\xAF"), (std::vector<char32_t>{R, R}));  // '/' in 2 bytes
  EXPECT_EQ(DecodeAll("\xC1\xBF"), (std::vector<char32_t>{R, R}));
  EXPECT_EQ(DecodeAll("\xE0\x80\xAF"), (std::vector<char32_t>{R, R, R}));  // '/' in 3 bytes
  EXPECT_EQ(DecodeAll("\xE0\x9F\xBF"), (std::vector<char32_t>{R, R, R}));
  EXPECT_EQ(DecodeAll("\xF0\x80\x80\xAF"), (std::vector<char32_t>{R, R, R, R}));
  EXPECT_EQ(DecodeAll("\xF0\x8F\xBF\xBF"), (std::vector<char32_t>{R, R, R, R}));
}

TEST(Utf8, SurrogatesAndOutOfRangeAreRejected) {
  EXPECT_EQ(DecodeAll("\xED\xA0\x80"), (std::vector<char32_t>{R, R, R}));  // U+D800
  EXPECT_EQ(DecodeAll("\xED\xBF\xBF"), (std::vector<char32_t>{R, R, R}));  // U+DFFF
  EXPECT_EQ(DecodeAll("\xED\x9F\xBF"), (std::vector<char32_t>{0xD7FF}));
  EXPECT_EQ(DecodeAll("\xF4\x90\x80\x80"), (std::vector<char32_t>{R, R, R, R}));  // > U+10FFFF
  EXPECT_EQ(DecodeAll("\xF5\x80\x80\x80"), (std::vector<char32_t>{R, R, R, R}));
  EXPECT_EQ(DecodeAll("\xFE\xFF"), (std::vector<char32_t>{R, R}));
}

TEST(Utf8, EncodeRoundTrips) {
  for (char32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                      0x10000u, 0x1F600u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, s);
    const DecodedChar d = DecodeUtf8(s, 0);
    EXPECT_EQ(d.cp, cp);
    EXPECT_EQ(d.size, s.size());
  }
}

}  // namespace
}  // namespace embedstream::text
