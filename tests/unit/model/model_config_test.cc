#include "model/model_config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace embedstream::model {
namespace {

class ModelConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = embedstream::testing::MakeTempDir("cfg");
    Put("config.json", R"({"model_type":"bert","hidden_size":64,"num_hidden_layers":2,
      "num_attention_heads":4,"intermediate_size":128,"max_position_embeddings":128,
      "vocab_size":100,"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu"})");
    Put("sentence_bert_config.json", R"({"max_seq_length": 64, "do_lower_case": false})");
    Put("modules.json",
        R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
      {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
      {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}])");
    std::filesystem::create_directory(dir_ / "1_Pooling");
    Put("1_Pooling/config.json", R"({"word_embedding_dimension":64,"pooling_mode_cls_token":false,
      "pooling_mode_mean_tokens":true,"pooling_mode_max_tokens":false})");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Put(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::filesystem::path dir_;
};

TEST_F(ModelConfigTest, ReadsEverythingFromFiles) {
  auto c = LoadModelConfig(dir_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->num_layers, 2);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->head_dim(), 16);
  EXPECT_EQ(c->intermediate_size, 128);
  EXPECT_EQ(c->max_seq_length, 64);
  EXPECT_EQ(c->pooling, PoolingMode::kMean);
  EXPECT_TRUE(c->normalize);
  EXPECT_EQ(c->name, dir_.filename().string());
  auto named = LoadModelConfig(dir_, "org/model");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->name, "org/model");
}

TEST_F(ModelConfigTest, NameFromFetchRecord) {
  Put(".embedstream-fetch.json", R"({"model": "sentence-transformers/all-MiniLM-L6-v2"})");
  auto c = LoadModelConfig(dir_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "sentence-transformers/all-MiniLM-L6-v2");
}

TEST_F(ModelConfigTest, MaxSeqLengthIsCappedByPositions) {
  Put("sentence_bert_config.json", R"({"max_seq_length": 4096})");
  auto c = LoadModelConfig(dir_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->max_seq_length, 128);
}

TEST_F(ModelConfigTest, ClearErrors) {
  EXPECT_EQ(LoadModelConfig(dir_ / "nope").error().code, errc::not_found);
  Put("config.json", "{ broken");
  EXPECT_EQ(LoadModelConfig(dir_).error().code, errc::corrupt);
  Put("config.json", R"({"model_type":"bert","hidden_size":65,"num_hidden_layers":2,
      "num_attention_heads":4,"intermediate_size":128,"max_position_embeddings":128,"vocab_size":100})");
  auto indivisible = LoadModelConfig(dir_);
  ASSERT_FALSE(indivisible.ok());
  EXPECT_NE(indivisible.error().message.find("divisible"), std::string::npos);
  Put("config.json", R"({"model_type":"gpt2","hidden_size":64})");
  EXPECT_EQ(LoadModelConfig(dir_).error().code, errc::unsupported);
  Put("config.json", R"({"model_type":"bert","hidden_size":64})");
  auto missing = LoadModelConfig(dir_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing 'vocab_size'"), std::string::npos)
      << missing.error().message;
}

TEST_F(ModelConfigTest, PoolingModes) {
  Put("1_Pooling/config.json", R"({"pooling_mode_cls_token":true})");
  auto cls = LoadModelConfig(dir_);
  ASSERT_TRUE(cls.ok());
  EXPECT_EQ(cls->pooling, PoolingMode::kCls);
  Put("1_Pooling/config.json",
      R"({"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":true})");
  EXPECT_EQ(LoadModelConfig(dir_).error().code, errc::unsupported);
}

}  // namespace
}  // namespace embedstream::model
