// The chunker on the real all-MiniLM-L6-v2 tokenizer: chunks fit, cover
// every wordpiece in order, never cut a sentence that fits, and their spans
// slice the original text to a string that tokenizes alone to exactly the
// chunk's pieces (so a sentence-transformers vector of the span equals the
// chunk's vector; tests/e2e/test_documents.py checks the vectors).

#include "pipeline/chunker.h"

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/bert_tokenizer.h"

namespace embedstream::pipeline {
namespace {

using text::BertTokenizer;
using text::TokenizedWord;
using Split = ChunkingOptions::Split;

const BertTokenizer& Tokenizer() {
  static const BertTokenizer tok = [] {
    auto t = BertTokenizer::Load(testing::ModelDir());
    if (!t) throw std::runtime_error(t.error().ToString());
    return std::move(*t);
  }();
  return tok;
}

// Every text of the parity fixtures joined into long documents, plus prose
// with sentences, paragraphs, quotes and CJK.
std::vector<std::string> LongTexts() {
  std::vector<std::string> texts;
  std::ifstream in(testing::SourceDir() / "tests/fixtures/parity/parity.jsonl");
  std::string line, doc;
  while (std::getline(in, line)) {
    doc += nlohmann::json::parse(line).at("text").get<std::string>();
    doc += " ";
    if (doc.size() > 6000) {
      texts.push_back(doc);
      doc.clear();
    }
  }
  std::mt19937 rng(7);
  const char* words[] = {"river", "Mountain",   "électricité", "东京",  "data",
                         "(x)",   "\"quoted\"", "e.g.",        "naïve", "don't",
                         "3.14",  "emoji🙂",  "ALPHA",       "über"};
  for (int d = 0; d < 6; ++d) {
    std::string t;
    for (int s = 0; s < 120; ++s) {
      const int n = 3 + static_cast<int>(rng() % 30);
      for (int w = 0; w < n; ++w) {
        t += words[rng() % std::size(words)];
        t += w + 1 < n ? " " : "";
      }
      const char* ends[] = {". ", "! ", "? ", ".\" ", ".\n\n", "。", " "};
      t += ends[rng() % std::size(ends)];
    }
    texts.push_back(t);
  }
  return texts;
}

struct Cut {
  std::vector<int32_t> pieces;
  std::vector<TokenizedWord> words;
  std::vector<ChunkSpan> chunks;
};

Cut CutText(const std::string& t, size_t budget, size_t overlap, Split split) {
  Cut c;
  Tokenizer().EncodeWords(t, c.pieces, c.words);
  c.chunks = CutChunks(t, c.words, budget, overlap, split);
  return c;
}

// Python's t[char_start:char_end] (code points).
std::string SliceChars(const std::string& t, size_t begin, size_t end) {
  size_t chars = 0, b = std::string::npos, e = t.size();
  for (size_t i = 0; i <= t.size(); ++i) {
    if (i == t.size() || (static_cast<unsigned char>(t[i]) & 0xC0) != 0x80) {
      if (chars == begin && b == std::string::npos) b = i;
      if (chars == end) {
        e = i;
        break;
      }
      ++chars;
    }
  }
  return t.substr(b, e - b);
}

TEST(Chunker, WordSpansTokenizeAloneToTheirPieces) {
  for (const std::string& t : LongTexts()) {
    std::vector<int32_t> pieces;
    std::vector<TokenizedWord> words;
    Tokenizer().EncodeWords(t, pieces, words);
    // The same pieces as Encode without truncation.
    const std::vector<int32_t> whole = Tokenizer().Encode(t, 1 << 20);
    ASSERT_EQ(std::vector<int32_t>(whole.begin() + 1, whole.end() - 1), pieces);
    for (const auto& w : words) {
      const auto ids = Tokenizer().Encode(t.substr(w.begin, w.end - w.begin), 1 << 20);
      ASSERT_EQ(ids.size(), w.pieces + 2) << t.substr(w.begin, w.end - w.begin);
      for (uint32_t k = 0; k < w.pieces; ++k) ASSERT_EQ(ids[k + 1], pieces[w.first_piece + k]);
    }
  }
}

TEST(Chunker, ChunksFitCoverEveryPieceAndSliceTheText) {
  for (Split split : {Split::kSentence, Split::kTokens}) {
    for (const std::string& t : LongTexts()) {
      const Cut c = CutText(t, 254, 32, split);
      ASSERT_GT(c.chunks.size(), 1u);
      uint32_t covered = 0;  // pieces [0, covered) are in some chunk
      for (size_t i = 0; i < c.chunks.size(); ++i) {
        const ChunkSpan& s = c.chunks[i];
        ASSERT_LE(s.pieces, 254u);
        ASSERT_LE(s.first_piece, covered) << "a gap before chunk " << i;
        if (i > 0) {
          ASSERT_GT(s.first_piece, c.chunks[i - 1].first_piece) << "no progress";
        }
        covered = std::max(covered, s.first_piece + s.pieces);
        const std::string span = t.substr(s.byte_begin, s.byte_end - s.byte_begin);
        EXPECT_EQ(SliceChars(t, s.char_begin, s.char_end), span);
        // The span alone tokenizes to exactly the chunk's pieces.
        const auto ids = Tokenizer().Encode(span, 1 << 20);
        ASSERT_EQ(ids.size(), s.pieces + 2u);
        for (uint32_t k = 0; k < s.pieces; ++k) ASSERT_EQ(ids[k + 1], c.pieces[s.first_piece + k]);
      }
      EXPECT_EQ(covered, c.pieces.size());
    }
  }
}

TEST(Chunker, SentencesThatFitAreNeverCut) {
  // Sentences of 5..40 words; a chunk boundary may only fall between them.
  std::mt19937 rng(11);
  std::string t;
  std::vector<size_t> ends;  // byte offsets where a sentence ends (after its '.')
  for (int s = 0; s < 200; ++s) {
    const int n = 5 + static_cast<int>(rng() % 36);
    for (int w = 0; w < n; ++w) t += (w ? " word" : "Word") + std::to_string(rng() % 1000);
    t += ".";
    ends.push_back(t.size());
    t += " ";
  }
  for (size_t overlap : {0u, 32u}) {
    const Cut c = CutText(t, 126, overlap, Split::kSentence);
    ASSERT_GT(c.chunks.size(), 5u);
    for (const ChunkSpan& s : c.chunks) {
      EXPECT_TRUE(s.byte_begin == 0 || t[s.byte_begin - 2] == '.') << s.byte_begin;
      EXPECT_TRUE(std::find(ends.begin(), ends.end(), s.byte_end) != ends.end()) << s.byte_end;
    }
  }
}

TEST(Chunker, ChineseSentencesEndAtTheirFullWidthStopWithoutASpace) {
  std::string t;
  for (int i = 0; i < 60; ++i) t += "我爱自然语言处理。今天天气很好，我们去公园散步吧！";
  const Cut c = CutText(t, 126, 0, Split::kSentence);
  ASSERT_GT(c.chunks.size(), 2u);
  for (const ChunkSpan& s : c.chunks) {
    const std::string span = t.substr(s.byte_begin, s.byte_end - s.byte_begin);
    EXPECT_EQ(span.rfind("我爱", 0), 0u) << span;  // starts at a sentence
    EXPECT_TRUE(span.ends_with("！")) << span;     // and ends at one
  }
}

TEST(Chunker, OverlapRepeatsTheEndOfTheChunkBefore) {
  const std::string t = LongTexts().back();
  const Cut c = CutText(t, 100, 20, Split::kTokens);
  ASSERT_GT(c.chunks.size(), 3u);
  for (size_t i = 1; i < c.chunks.size(); ++i) {
    const ChunkSpan& a = c.chunks[i - 1];
    const ChunkSpan& b = c.chunks[i];
    const uint32_t repeated = a.first_piece + a.pieces - b.first_piece;
    EXPECT_GT(repeated, 0u);
    EXPECT_LE(repeated, 20u);
  }
  const Cut none = CutText(t, 100, 0, Split::kTokens);
  for (size_t i = 1; i < none.chunks.size(); ++i) {
    EXPECT_EQ(none.chunks[i].first_piece,
              none.chunks[i - 1].first_piece + none.chunks[i - 1].pieces);
  }
}

TEST(Chunker, AWordLongerThanAChunkIsCutBetweenItsPieces) {
  // 60 pieces of one "word" (digits split into wordpieces) with budget 16.
  std::string t = "start ";
  for (int i = 0; i < 60; ++i) t += "x7q";
  t += " end.";
  const Cut c = CutText(t, 16, 0, Split::kTokens);
  uint32_t total = 0;
  for (const auto& s : c.chunks) {
    EXPECT_LE(s.pieces, 16u);
    total += s.pieces;
  }
  EXPECT_EQ(total, c.pieces.size());
}

TEST(Chunker, PlanFollowsOnOverflow) {
  const std::string t = LongTexts().front();
  std::vector<int32_t> pieces;
  std::vector<TokenizedWord> words;
  Tokenizer().EncodeWords(t, pieces, words);
  ChunkingOptions o;
  ChunkPlan p = PlanChunks(t, words, pieces.size(), o, 256);
  EXPECT_EQ(p.kind, ChunkPlan::Kind::kChunked);
  EXPECT_EQ(p.max_tokens, 256u);
  EXPECT_EQ(p.tokens, pieces.size() + 2);
  o.on_overflow = ChunkingOptions::Overflow::kTruncate;
  p = PlanChunks(t, words, pieces.size(), o, 256);
  ASSERT_EQ(p.kind, ChunkPlan::Kind::kTruncated);
  EXPECT_EQ(p.spans.front().pieces, 254u);  // what sentence-transformers keeps
  EXPECT_EQ(p.spans.front().first_piece, 0u);
  o.on_overflow = ChunkingOptions::Overflow::kReject;
  EXPECT_EQ(PlanChunks(t, words, pieces.size(), o, 256).kind, ChunkPlan::Kind::kTooLong);
  // A short text is whole whatever the options; max_tokens above the model's is capped.
  Tokenizer().EncodeWords("a short text", pieces, words);
  o.max_tokens = 4096;
  p = PlanChunks("a short text", words, pieces.size(), o, 256);
  EXPECT_EQ(p.kind, ChunkPlan::Kind::kWhole);
  EXPECT_EQ(p.max_tokens, 256u);
}

}  // namespace
}  // namespace embedstream::pipeline
