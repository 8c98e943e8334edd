#include "pipeline/record.h"

#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace embedstream::pipeline {
namespace {

DecodeResult Decode(std::string_view s, InputFormat f = InputFormat::kAuto) {
  DecodeOptions o;
  o.format = f;
  return DecodeRecord(s, o);
}

TEST(DecodeRecord, Seed000Json) {
  auto r = Decode(
      R"({"id":"550e8400-e29b-41d4-a716-446655440000","text":"hi","timestamp":1699123456.789,"source":"kafka-cli","metadata":{"user_id":"u1","n":2}})");
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->id, "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(r.record->text, "hi");
  EXPECT_DOUBLE_EQ(*r.record->timestamp, 1699123456.789);
  EXPECT_EQ(r.record->source, "kafka-cli");
  EXPECT_EQ(nlohmann::json::parse(r.record->metadata_json)["user_id"], "u1");
}

TEST(DecodeRecord, Seed001MessageFieldAndNumericId) {
  auto r = Decode(R"({"id": 42, "message": "from seed 001"})");
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->id, "42");
  EXPECT_EQ(r.record->text, "from seed 001");
  EXPECT_FALSE(r.record->timestamp.has_value());
}

TEST(DecodeRecord, PlainTextAndForcedText) {
  auto r = Decode("just words");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.record->text, "just words");
  EXPECT_TRUE(r.record->id.empty());
  auto forced = Decode(R"({"not": "json to me"})", InputFormat::kText);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced.record->text, R"({"not": "json to me"})");
}

TEST(DecodeRecord, ReasonsForBadRecords) {
  struct Case {
    std::string input;
    std::string reason;
  } cases[] = {
      {"{\"text\": \"unterminated", "invalid_json"},
      {"{\"text\": \"a\"} trailing", "invalid_json"},
      {R"({"id": "x"})", "missing_text"},
      {R"({"text": 5})", "wrong_type"},
      {R"({"text": "a", "id": [1]})", "wrong_type"},
      {R"({"text": "a", "metadata": "flat"})", "wrong_type"},
      {"caf\xc3", "invalid_utf8"},
      {"\xed\xa0\x80 surrogate", "invalid_utf8"},
  };
  for (const auto& c : cases) {
    auto r = Decode(c.input);
    EXPECT_FALSE(r.ok()) << c.input;
    EXPECT_EQ(r.error.reason, c.reason) << c.input << " -> " << r.error.detail;
    EXPECT_FALSE(r.error.detail.empty());
  }
  auto arr = Decode("[1,2]", InputFormat::kJson);
  EXPECT_EQ(arr.error.reason, "invalid_json");
}

TEST(DecodeRecord, SizeLimit) {
  DecodeOptions o;
  o.max_bytes = 10;
  auto r = DecodeRecord("0123456789ab", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error.reason, "too_large");
}

TEST(EmbeddingRecord, HasSeed000FieldsExactly) {
  std::string out;
  OutputFields f;
  f.id = "id-1";
  f.original_text = "Hello \"world\"";
  f.model_name = "sentence-transformers/all-MiniLM-L6-v2";
  f.input_timestamp = 1699123456.789;
  f.processing_timestamp = 1699123457.123;
  f.input_source = "kafka-cli";
  const std::vector<float> v = {0.25f, -0.5f, 0.125f};
  AppendEmbeddingRecord(out, f, v);
  const auto j = nlohmann::json::parse(out);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  const std::vector<std::string> expected = {"embedding",     "embedding_dimension",  "id",
                                             "input_source",  "input_timestamp",      "model_name",
                                             "original_text", "processing_timestamp", "timestamp"};
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(j["original_text"], "Hello \"world\"");
  EXPECT_EQ(j["embedding_dimension"], 3);
  EXPECT_EQ(j["embedding"][1].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(j["timestamp"].get<double>(), 1699123456.789);
  EXPECT_DOUBLE_EQ(j["input_timestamp"].get<double>(), 1699123456.789);
}

}  // namespace
}  // namespace embedstream::pipeline
