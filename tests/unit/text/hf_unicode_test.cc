#include "text/hf_unicode.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"
#include "text/normalizer.h"
#include "text/utf8.h"

namespace embedstream::text {
namespace {

std::vector<char32_t> Lower(char32_t cp) {
  char32_t out[kHfMappingMax];
  return {out, out + HfLowercase(cp, out)};
}

std::vector<char32_t> Decompose(char32_t cp) {
  char32_t out[kHfMappingMax];
  return {out, out + HfDecompose(cp, out)};
}

TEST(HfUnicode, Whitespace) {
  for (char32_t c : {U'\t', U'\n', U'\v', U'\f', U'\r', U' ', U'\u0085', U'\u00A0', U'\u1680',
                     U'\u2000', U'\u200A', U'\u2028', U'\u2029', U'\u202F', U'\u205F', U'\u3000'}) {
    EXPECT_TRUE(HfIsWhitespace(c)) << std::hex << static_cast<uint32_t>(c);
  }
  // Not White_Space although Python's isspace() says so, or zero width.
  for (char32_t c : {U'\x1C', U'\x1F', U'\u200B', U'\u180E', U'\uFEFF', U'a'}) {
    EXPECT_FALSE(HfIsWhitespace(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(HfUnicode, ControlIsHfsFrozenCcCfCo) {
  for (char32_t c : {U'\x01', U'\x0B', U'\x7F', U'\u0085', U'\u00AD', U'\u200B', U'\u200D',
                     U'\uFEFF', U'\uE000', U'\uF8FF', U'\U000F0000', U'\U000E0041'}) {
    EXPECT_TRUE(HfIsControl(c)) << std::hex << static_cast<uint32_t>(c);
  }
  // \t \n \r count as whitespace; U+0890 and U+13430 are Cf only since Unicode 12/14.
  for (char32_t c : {U'\t', U'\n', U'\r', U' ', U'a', U'\u0890', U'\U00013430', U'\uFFFD'}) {
    EXPECT_FALSE(HfIsControl(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(HfUnicode, Punctuation) {
  for (char32_t c = 0; c < 128; ++c) {
    const bool ascii_punct = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
                             (c >= 123 && c <= 126);
    EXPECT_EQ(HfIsPunctuation(c), ascii_punct) << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'\u00A1', U'\u00BF', U'\u2014', U'\u201C', U'\u3002', U'\uFF01', U'\u166D'}) {
    EXPECT_TRUE(HfIsPunctuation(c)) << std::hex << static_cast<uint32_t>(c);
  }
  // Symbols are not punctuation; U+2E52 became Po after HF's tables were frozen.
  for (char32_t c : {U'\u00A9', U'\u20AC', U'\u2192', U'\U0001F600', U'\u2E52'}) {
    EXPECT_FALSE(HfIsPunctuation(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(HfUnicode, ChineseCharRangesFollowHf) {
  EXPECT_TRUE(HfIsChineseChar(0x4E00));
  EXPECT_TRUE(HfIsChineseChar(0x9FFF));
  EXPECT_TRUE(HfIsChineseChar(0x3400));
  EXPECT_TRUE(HfIsChineseChar(0x20000));
  EXPECT_TRUE(HfIsChineseChar(0xF900));
  EXPECT_TRUE(HfIsChineseChar(0x2F800));
  EXPECT_TRUE(HfIsChineseChar(0x2B81F));
  // HF writes 0x2B920 where Google's BERT has 0x2B820.
  EXPECT_FALSE(HfIsChineseChar(0x2B820));
  EXPECT_FALSE(HfIsChineseChar(0x2B91F));
  EXPECT_TRUE(HfIsChineseChar(0x2B920));
  EXPECT_FALSE(HfIsChineseChar(0x3042));  // hiragana
  EXPECT_FALSE(HfIsChineseChar(0xAC00));  // hangul
}

TEST(HfUnicode, LowercaseIsRustsToLowercase) {
  EXPECT_EQ(Lower('A'), std::vector<char32_t>{'a'});
  EXPECT_EQ(Lower(0x130), (std::vector<char32_t>{'i', 0x307}));  // 'İ' expands
  EXPECT_EQ(Lower(0x1E9E), std::vector<char32_t>{0xDF});         // 'ẞ' -> 'ß'
  EXPECT_EQ(Lower(0x3A3), std::vector<char32_t>{0x3C3});         // no final-sigma rule
  EXPECT_EQ(Lower(0x212A), std::vector<char32_t>{'k'});          // Kelvin sign
  EXPECT_EQ(Lower(0xDF), std::vector<char32_t>{0xDF});
}

TEST(HfUnicode, Decompose) {
  EXPECT_EQ(Decompose(0xE9), (std::vector<char32_t>{'e', 0x301}));
  EXPECT_EQ(Decompose(0x1E69), (std::vector<char32_t>{'s', 0x323, 0x307}));
  EXPECT_EQ(Decompose(0xD55C), (std::vector<char32_t>{0x1112, 0x1161, 0x11AB}));  // 한
  EXPECT_EQ(Decompose(0xFB01), std::vector<char32_t>{0xFB01});    // compatibility only
  EXPECT_EQ(Decompose(0x11938), std::vector<char32_t>{0x11938});  // HF's NFD is older
  EXPECT_TRUE(HfIsNonspacingMark(0x301));
  EXPECT_FALSE(HfIsNonspacingMark(0x898));  // Mn since Unicode 14, not in HF's tables
}

// Every scalar value on its own through BertNormalizer (all steps, and lowercase
// only) and BertPreTokenizer's classes, against HF (hf_unicode_golden.tsv).
TEST(HfUnicode, MatchesHfForEveryCodepoint) {
  const auto path = testing::SourceDir() / "tests/fixtures/text/hf_unicode_golden.tsv";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const BertNormalizer full({});
  const BertNormalizer lower_only({.clean_text = false,
                                   .handle_chinese_chars = false,
                                   .strip_accents = false,
                                   .lowercase = true});

  auto parse_cps = [](const std::string& field) {
    std::string out;
    std::istringstream ss(field);
    std::string hex;
    while (ss >> hex) AppendUtf8(static_cast<char32_t>(std::stoul(hex, nullptr, 16)), out);
    return out;
  };
  size_t checked = 0;
  size_t failures = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string first_hex, last_hex, full_kind, lower_kind, pre_kind;
    ASSERT_TRUE(std::getline(fields, first_hex, '\t') && std::getline(fields, last_hex, '\t') &&
                std::getline(fields, full_kind, '\t') && std::getline(fields, lower_kind, '\t') &&
                std::getline(fields, pre_kind))
        << line;
    const auto first = static_cast<char32_t>(std::stoul(first_hex, nullptr, 16));
    const auto last = static_cast<char32_t>(std::stoul(last_hex, nullptr, 16));
    for (char32_t cp = first; cp <= last; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      std::string ch;
      AppendUtf8(cp, ch);
      std::string want_full;
      if (full_kind == "=") {
        want_full = ch;
      } else if (full_kind == "_") {
        want_full = " ";
      } else if (full_kind == "C") {
        want_full = " " + ch + " ";
      } else if (full_kind == "H") {
        const char32_t s = cp - 0xAC00;
        AppendUtf8(0x1100 + s / 588, want_full);
        AppendUtf8(0x1161 + (s % 588) / 28, want_full);
        if (s % 28 != 0) AppendUtf8(0x11A7 + s % 28, want_full);
      } else if (full_kind != "-") {
        want_full = parse_cps(full_kind);
      }
      const std::string want_lower = lower_kind == "=" ? ch : parse_cps(lower_kind);
      const char want_pre = pre_kind[0];
      const char got_pre = HfIsWhitespace(cp) ? 'S' : HfIsPunctuation(cp) ? 'P' : 'N';

      const std::string got_full = full.Normalize(ch);
      const std::string got_lower = lower_only.Normalize(ch);
      if (got_full != want_full || got_lower != want_lower || got_pre != want_pre) {
        if (++failures <= 20) {
          ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": full '" << got_full
                        << "' want '" << want_full << "', lower '" << got_lower << "' want '"
                        << want_lower << "', pre " << got_pre << " want " << want_pre;
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 0x110000u - 0x800u);
  EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace embedstream::text
