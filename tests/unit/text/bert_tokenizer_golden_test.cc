// BertTokenizer against Hugging Face `tokenizers` on the real all-MiniLM-L6-v2
// tokenizer: tests/fixtures/text/tokenizer_golden.jsonl holds HF's ids for ~300
// varied texts (make_tokenizer_golden.py). Needs the model's tokenizer files
// (scripts/fetch_model.sh).

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/bert_tokenizer.h"

namespace embedstream::text {
namespace {

constexpr size_t kMaxTokens = 256;  // sentence-transformers' max_seq_length for this model

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<GoldenCase> LoadGolden() {
  const auto path = testing::SourceDir() / "tests/fixtures/text/tokenizer_golden.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<GoldenCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()});
  }
  return cases;
}

std::string Escaped(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', /*ensure_ascii=*/true);
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

void ExpectMatchesGolden(const BertTokenizer& tok) {
  const std::vector<GoldenCase> cases = LoadGolden();
  ASSERT_GE(cases.size(), 250u);
  size_t mismatches = 0;
  for (const GoldenCase& c : cases) {
    const std::vector<int32_t> got = tok.Encode(c.text, kMaxTokens);
    if (got != c.ids) {
      ++mismatches;
      ADD_FAILURE() << "text: " << Escaped(c.text) << "\n  got:  " << Join(got)
                    << "\n  want: " << Join(c.ids);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << cases.size() << " texts";
}

TEST(BertTokenizerGolden, TokenizerJsonMatchesHf) {
  auto tok = BertTokenizer::Load(testing::ModelDir());
  ASSERT_TRUE(tok.ok()) << tok.error().ToString() << " (run scripts/fetch_model.sh)";
  EXPECT_EQ(tok->vocab_size(), 30522u);
  EXPECT_EQ(tok->cls_id(), 101);
  EXPECT_EQ(tok->sep_id(), 102);
  EXPECT_EQ(tok->unk_id(), 100);
  EXPECT_EQ(tok->pad_id(), 0);
  ExpectMatchesGolden(*tok);
}

TEST(BertTokenizerGolden, VocabTxtMatchesHf) {
  const auto dir = testing::MakeTempDir("vocab");
  std::filesystem::copy_file(testing::ModelDir() / "vocab.txt", dir / "vocab.txt");
  std::filesystem::copy_file(testing::ModelDir() / "tokenizer_config.json",
                             dir / "tokenizer_config.json");
  auto tok = BertTokenizer::Load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  ExpectMatchesGolden(*tok);
}

// Information only, never an assertion: single-thread throughput on English.
TEST(BertTokenizerGolden, PrintsThroughput) {
  auto tok = BertTokenizer::Load(testing::ModelDir());
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  const std::string paragraph =
      "Sentence embeddings map a message to a dense vector, so that messages with "
      "similar meaning end up close together. The pipeline reads records from Kafka, "
      "tokenizes them, runs the encoder in batches and writes the vectors to Qdrant. "
      "It's important that tokenization doesn't become the bottleneck: on 2 cores, "
      "every microsecond per message counts (throughput ~ 10,000 msgs/s). ";
  std::vector<std::string> messages;
  size_t bytes = 0;
  while (bytes < (4u << 20)) {
    messages.push_back(paragraph);
    bytes += paragraph.size();
  }
  std::vector<int32_t> ids;
  ids.reserve(1 << 16);
  size_t pieces = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& m : messages) {
    ids.clear();
    pieces += tok->EncodeInto(m, SIZE_MAX, ids);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ info ] BertTokenizer: %.1f MB/s, %.2f M tokens/s, %.2f us per %zu-byte message\n",
              static_cast<double>(bytes) / 1e6 / s, static_cast<double>(pieces) / 1e6 / s,
              s * 1e6 / static_cast<double>(messages.size()), paragraph.size());
  EXPECT_GT(pieces, 0u);
}

}  // namespace
}  // namespace embedstream::text
