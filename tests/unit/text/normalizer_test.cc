#include "text/normalizer.h"

#include <string>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

constexpr BertNormalizerConfig kNone{
    .clean_text = false, .handle_chinese_chars = false, .strip_accents = false, .lowercase = false};

BertNormalizerConfig Only(bool BertNormalizerConfig::*step) {
  BertNormalizerConfig c = kNone;
  c.*step = true;
  return c;
}

TEST(BertNormalizer, AllStepsOffIsIdentityOnValidUtf8) {
  const BertNormalizer n(kNone);
  const std::string text = "Héllo\tWORLD\x01 中文 İ \u200b";
  EXPECT_EQ(n.Normalize(text), text);
}

TEST(BertNormalizer, CleanTextDropsControlsAndMapsWhitespace) {
  const BertNormalizer n(Only(&BertNormalizerConfig::clean_text));
  EXPECT_EQ(n.Normalize(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(n.Normalize("a\x01\x1f\x7f"
                        "b"),
            "ab");
  EXPECT_EQ(n.Normalize("a\tb\nc\rd"), "a b c d");
  EXPECT_EQ(n.Normalize("a\vb\fc"), "abc");  // \v \f are Cc: dropped, not spaces
  EXPECT_EQ(n.Normalize("a\u0085b"), "ab");  // NEL is Cc too
  EXPECT_EQ(n.Normalize("a\u00a0b\u3000c\u2028d\u2029e\u2003f"), "a b c d e f");
  EXPECT_EQ(n.Normalize("zero\u200bwidth\u200djoin\ufeff\u00ad"), "zerowidthjoin");
  EXPECT_EQ(n.Normalize("a\ufffdb"), "ab");
  EXPECT_EQ(n.Normalize("pua\ue000\U000F0000"), "pua");
  EXPECT_EQ(n.Normalize("Keeps Case, é and 中"), "Keeps Case, é and 中");
}

TEST(BertNormalizer, HandleChineseCharsSurroundsIdeographsWithSpaces) {
  const BertNormalizer n(Only(&BertNormalizerConfig::handle_chinese_chars));
  EXPECT_EQ(n.Normalize("ab中文cd"), "ab 中  文 cd");
  EXPECT_EQ(n.Normalize("𠀀"), " 𠀀 ");
  EXPECT_EQ(n.Normalize("\U0002B820"), "\U0002B820");  // outside HF's ranges
  EXPECT_EQ(n.Normalize("ひらがなカタカナ한국어"), "ひらがなカタカナ한국어");
}

TEST(BertNormalizer, StripAccentsDecomposesAndDropsMn) {
  const BertNormalizer n(Only(&BertNormalizerConfig::strip_accents));
  EXPECT_EQ(n.Normalize("Café naïve façade"), "Cafe naive facade");
  EXPECT_EQ(n.Normalize("e\u0301"), "e");
  EXPECT_EQ(n.Normalize("Ελληνικά"), "Ελληνικα");
  EXPECT_EQ(n.Normalize("İ"), "I");
  EXPECT_EQ(n.Normalize("한"), "\u1112\u1161\u11ab");  // Hangul stays decomposed
  EXPECT_EQ(n.Normalize("ﬁ ß"), "ﬁ ß");                // no compatibility mapping
  EXPECT_EQ(n.Normalize("\u00c5\u212b"), "AA");
}

TEST(BertNormalizer, StripAccentsReordersSurvivingCombiningMarks) {
  const BertNormalizer n(Only(&BertNormalizerConfig::strip_accents));
  // U+1D16D (ccc 226) and U+1D165 (ccc 216) are Mc: kept, and NFD sorts them.
  EXPECT_EQ(n.Normalize("x\U0001D16D\U0001D165y"), "x\U0001D165\U0001D16Dy");
  EXPECT_EQ(n.Normalize("x\U0001D16D\u0301\U0001D165 z"), "x\U0001D165\U0001D16D z");
  EXPECT_EQ(n.Normalize("x\U0001D16D\U0001D165"), "x\U0001D165\U0001D16D");
}

TEST(BertNormalizer, LowercaseIsFullUnicodeLowercase) {
  const BertNormalizer n(Only(&BertNormalizerConfig::lowercase));
  EXPECT_EQ(n.Normalize("Hello WORLD"), "hello world");
  EXPECT_EQ(n.Normalize("ÀÉÎ"), "àéî");
  EXPECT_EQ(n.Normalize("İ"), "i\u0307");
  EXPECT_EQ(n.Normalize("ΣΑΣ"), "σασ");  // char-wise: no final sigma
  EXPECT_EQ(n.Normalize("ẞß"), "ßß");
  EXPECT_EQ(n.Normalize("ПРИВЕТ"), "привет");
}

TEST(BertNormalizer, StepsRunInHfOrder) {
  const BertNormalizer n({});
  // Strip before lowercase: 'İ' loses its dot first and becomes plain 'i'.
  EXPECT_EQ(n.Normalize("İstanbul"), "istanbul");
  EXPECT_EQ(n.Normalize("Héllo\tWORLD 中文"), "hello world  中  文 ");
  EXPECT_EQ(n.Normalize("CAFÉ\u200b!"), "cafe!");
  // Cleaning runs before stripping: the NFD of U+0387 is a plain '·'.
  EXPECT_EQ(n.Normalize("\u0387"), "\u00b7");
}

TEST(BertNormalizer, StripAccentsFollowsConfigNotLowercase) {
  const BertNormalizer n({.clean_text = true,
                          .handle_chinese_chars = true,
                          .strip_accents = false,
                          .lowercase = true});
  EXPECT_EQ(n.Normalize("CAFÉ İ"), "café i\u0307");
}

TEST(BertNormalizer, InvalidUtf8IsDroppedByCleanText) {
  const BertNormalizer n({});
  EXPECT_EQ(n.Normalize("a\x80"
                        "b\xC3"
                        "c\xE4\xB8"
                        "d\xC0\xAF"
                        "e\xED\xA0\x80"
                        "f\xFF"),
            "abcdef");
  const BertNormalizer raw(kNone);
  EXPECT_EQ(raw.Normalize("a\x80"
                          "b"),
            "a\ufffd"
            "b");
  EXPECT_EQ(raw.Normalize("\xE4\xB8"), "\ufffd\ufffd");
}

TEST(BertNormalizer, AppendKeepsExistingContent) {
  const BertNormalizer n({});
  std::string out = "x";
  n.NormalizeAppend("AB", out);
  EXPECT_EQ(out, "xab");
}

}  // namespace
}  // namespace embedstream::text
