#include "text/bert_tokenizer.h"

#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

using Ids = std::vector<int32_t>;

// [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 hello=5 world=6 !=7 ,=8 un=9 ##aff=10
// ##able=11 中=12 cafe=13 [=14 mask=15 ]=16 ##s=17 a=18 ##a=19
std::vector<std::string> SmallVocab() {
  return {"[PAD]", "[UNK]",  "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!",   ",", "un",
          "##aff", "##able", "中",    "cafe",  "[",      "mask",  "]",     "##s", "a", "##a"};
}

BertTokenizer Make(BertTokenizerOptions options = {}) {
  auto tok = BertTokenizer::FromVocab(SmallVocab(), std::move(options));
  EXPECT_TRUE(tok.ok()) << tok.error().ToString();
  return std::move(*tok);
}

TEST(BertTokenizer, EncodesWithClsAndSep) {
  const BertTokenizer tok = Make();
  EXPECT_EQ(tok.Encode("Hello, world!", 16), (Ids{2, 5, 8, 6, 7, 3}));
  EXPECT_EQ(tok.Encode("unaffable CAFÉ 中中", 16), (Ids{2, 9, 10, 11, 13, 12, 12, 3}));
  EXPECT_EQ(tok.Encode("hellos xyz", 16), (Ids{2, 5, 17, 1, 3}));
  EXPECT_EQ(tok.vocab_size(), 20u);
  EXPECT_EQ(tok.cls_id(), 2);
  EXPECT_EQ(tok.sep_id(), 3);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
}

TEST(BertTokenizer, EmptyAndWhitespaceOnlyInputIsClsSep) {
  const BertTokenizer tok = Make();
  for (std::string_view text :
       {std::string_view(""), std::string_view("   "), std::string_view("\t\n\r \u3000\u00a0"),
        std::string_view("\0\x01\x7f", 3), std::string_view("\x80\xff"),
        std::string_view("\u200b\ufeff")}) {
    EXPECT_EQ(tok.Encode(text, 16), (Ids{2, 3})) << text;
    EXPECT_TRUE(tok.Tokenize(text).empty());
  }
}

TEST(BertTokenizer, TruncatesToMaxTokensIncludingSpecials) {
  const BertTokenizer tok = Make();
  const std::string text = "hello world hello world";
  EXPECT_EQ(tok.Encode(text, 6), (Ids{2, 5, 6, 5, 6, 3}));
  EXPECT_EQ(tok.Encode(text, 5), (Ids{2, 5, 6, 5, 3}));
  EXPECT_EQ(tok.Encode(text, 3), (Ids{2, 5, 3}));
  EXPECT_EQ(tok.Encode(text, 2), (Ids{2, 3}));
  EXPECT_EQ(tok.Encode(text, 1), (Ids{2, 3}));  // below 2 counts as 2
  EXPECT_EQ(tok.Encode(text, 0), (Ids{2, 3}));
  // Truncation cuts inside a word's pieces, as HF does.
  EXPECT_EQ(tok.Encode("unaffable", 4), (Ids{2, 9, 10, 3}));
  // Added tokens count like any piece.
  EXPECT_EQ(tok.Encode("[MASK] [MASK] hello", 4), (Ids{2, 4, 4, 3}));
}

TEST(BertTokenizer, EncodeIntoAppendsWithoutAllocating) {
  const BertTokenizer tok = Make();
  Ids out = {99};
  out.reserve(64);
  const int32_t* data = out.data();
  EXPECT_EQ(tok.EncodeInto("hello world", 8, out), 4u);
  EXPECT_EQ(out, (Ids{99, 2, 5, 6, 3}));
  // A long text truncated to what fits: still no reallocation.
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "unaffable ";
  EXPECT_EQ(tok.EncodeInto(text, 59, out), 59u);
  EXPECT_EQ(out.size(), 64u);
  EXPECT_EQ(out.data(), data);
}

TEST(BertTokenizer, SpecialTokensInTheTextMapToTheirIds) {
  const BertTokenizer tok = Make();
  EXPECT_EQ(tok.Encode("hello [MASK]!", 16), (Ids{2, 5, 4, 7, 3}));
  EXPECT_EQ(tok.Encode("a[CLS]a [SEP][PAD][UNK]", 16), (Ids{2, 18, 2, 18, 3, 0, 1, 3}));
  // Matching is on the raw text: lowercase is not special.
  EXPECT_EQ(tok.Encode("[mask]", 16), (Ids{2, 14, 15, 16, 3}));
  EXPECT_EQ(tok.Tokenize("x [MASK]"), (std::vector<std::string>{"[UNK]", "[MASK]"}));

  BertTokenizerOptions split;
  split.split_special_tokens = true;
  EXPECT_EQ(Make(split).Encode("[MASK]", 16), (Ids{2, 14, 15, 16, 3}));
}

TEST(BertTokenizer, LongWordsBecomeUnk) {
  const BertTokenizer tok = Make();
  EXPECT_EQ(tok.Encode(std::string(100, 'a'), 200).size(), 102u);
  EXPECT_EQ(tok.Encode(std::string(101, 'a'), 200), (Ids{2, 1, 3}));
  // Counted after normalization: 60 "a" + U+0301 pairs are 120 code points in the
  // input but 60 once the accents are stripped.
  std::string accented;
  for (int i = 0; i < 60; ++i) accented += "a\u0301";
  EXPECT_EQ(tok.Encode(accented, 200).size(), 62u);
  BertTokenizerOptions small;
  small.max_input_chars_per_word = 3;
  EXPECT_EQ(Make(small).Encode("aaa aaaa", 16), (Ids{2, 18, 19, 19, 1, 3}));
}

TEST(BertTokenizer, InvalidUtf8NeverFailsAndVanishes) {
  const BertTokenizer tok = Make();
  const Ids hello = tok.Encode("hello", 16);
  // Lone continuation bytes, truncated sequences, overlong forms, surrogates.
  for (std::string_view bad :
       {"hel\x80lo", "hel\xbf\x80lo", "hello\xc3", "hello\xe4\xb8", "\xf0\x9f\x98hello",
        "hel\xc0\xaflo", "hel\xe0\x80\xaflo", "hel\xed\xa0\x80lo", "hel\xed\xbf\xbflo",
        "hel\xf4\x90\x80\x80lo", "hel\xfflo"}) {
    EXPECT_EQ(tok.Encode(bad, 16), hello) << ::testing::PrintToString(bad);
  }
  // Without clean_text the U+FFFD stays and the word is unknown.
  BertTokenizerOptions raw;
  raw.clean_text = false;
  EXPECT_EQ(Make(raw).Encode("hel\x80lo", 16), (Ids{2, 1, 3}));
}

TEST(BertTokenizer, RandomBytesNeverBreakTheContract) {
  const BertTokenizer tok = Make();
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> len(0, 300), byte(0, 255);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text(static_cast<size_t>(len(rng)), '\0');
    for (char& c : text) c = static_cast<char>(byte(rng));
    const size_t max_tokens = 2 + static_cast<size_t>(iter % 40);
    const Ids ids = tok.Encode(text, max_tokens);
    ASSERT_GE(ids.size(), 2u);
    ASSERT_LE(ids.size(), max_tokens);
    EXPECT_EQ(ids.front(), 2);
    EXPECT_EQ(ids.back(), 3);
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && static_cast<size_t>(id) < tok.vocab_size());
  }
}

TEST(BertTokenizer, LongInputsAcrossNormalizationChunks) {
  const BertTokenizer tok = Make();
  std::string spaced;
  for (int i = 0; i < 10000; ++i) spaced += (i % 2 == 0) ? "hello " : "world\t";
  const Ids ids = tok.Encode(spaced, 1 << 20);
  ASSERT_EQ(ids.size(), 10002u);
  for (size_t i = 1; i + 1 < ids.size(); ++i) ASSERT_EQ(ids[i], i % 2 == 1 ? 5 : 6);

  std::string unspaced;
  for (int i = 0; i < 10000; ++i) unspaced += "中";  // 30 KB, no ASCII space
  EXPECT_EQ(tok.Encode(unspaced, 1 << 20).size(), 10002u);
}

TEST(BertTokenizer, TokenizeReturnsPieces) {
  const BertTokenizer tok = Make();
  EXPECT_EQ(tok.Tokenize("Unaffable, hello!"),
            (std::vector<std::string>{"un", "##aff", "##able", ",", "hello", "!"}));
  EXPECT_EQ(tok.IdToToken(10), "##aff");
  EXPECT_EQ(tok.IdToToken(-1), "");
  EXPECT_EQ(tok.IdToToken(20), "");
}

TEST(BertTokenizer, ConstMethodsAreThreadSafe) {
  const BertTokenizer tok = Make();
  const std::vector<std::string> texts = {"Hello, world!", "unaffable CAFÉ 中中", "[MASK] hellos",
                                          std::string(5000, 'a') + " hello"};
  std::vector<Ids> want;
  for (const std::string& t : texts) want.push_back(tok.Encode(t, 64));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 500; ++iter) {
        const size_t i = static_cast<size_t>(iter + t) % texts.size();
        if (tok.Encode(texts[i], 64) != want[i]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(BertTokenizer, MissingSpecialTokensAreErrors) {
  for (const char* missing : {"[UNK]", "[CLS]", "[SEP]", "[PAD]"}) {
    std::vector<std::string> vocab = SmallVocab();
    std::erase(vocab, std::string(missing));
    auto tok = BertTokenizer::FromVocab(vocab, {});
    ASSERT_FALSE(tok.ok()) << missing;
    EXPECT_EQ(tok.error().code, errc::invalid_argument);
    EXPECT_NE(tok.error().message.find(missing), std::string::npos) << tok.error().message;
  }
  auto empty = BertTokenizer::FromVocab({}, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, errc::invalid_argument);
}

TEST(BertTokenizer, StripAccentsDefaultsToLowercase) {
  BertTokenizerOptions cased;
  cased.lowercase = false;  // strip_accents unset: off too
  EXPECT_EQ(Make(cased).Encode("cafe café", 8), (Ids{2, 13, 1, 3}));
  cased.strip_accents = true;
  EXPECT_EQ(Make(cased).Encode("cafe café", 8), (Ids{2, 13, 13, 3}));
}

}  // namespace
}  // namespace embedstream::text
