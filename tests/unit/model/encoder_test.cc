// The encoder against the real all-MiniLM-L6-v2 weights: fast path vs the
// plain reference, bf16 vs f32, determinism, batch-composition invariance,
// and clear errors for broken model dirs.

#include "model/sentence_encoder.h"

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/cpu_features.h"
#include "test_util.h"

namespace embedstream::model {
namespace {

using embedstream::testing::Cosine;

using embedstream::testing::ModelDir;

std::unique_ptr<SentenceEncoder> LoadOrDie(const EncoderOptions& opt) {
  auto enc = SentenceEncoder::Load(ModelDir(), opt);
  EXPECT_TRUE(enc.ok()) << enc.error().ToString()
                        << " (set EMBEDSTREAM_MODEL_DIR or run scripts/fetch_model.sh)";
  return enc.ok() ? std::move(*enc) : nullptr;
}

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> t = {
        "Machine learning is fascinating!",   "",      "Hello, this is a test message!",
        "Ünïcödé façade — naïve café 東京 🚀", "short",
    };
    std::string long_text;
    for (int i = 0; i < 80; ++i)
      long_text += "streaming vectors arrive in order number " + std::to_string(i) + ". ";
    t.push_back(long_text);  // far past 256 tokens: truncated
    return t;
  }();
  return texts;
}

std::vector<float> EmbedAll(SentenceEncoder& enc, const std::vector<std::string>& texts) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> out(texts.size() * enc.dim());
  enc.Embed(views, out.data());
  return out;
}

class EncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fast_ = LoadOrDie({}).release();
    EncoderOptions ref;
    ref.backend = BackendKind::kReference;
    reference_ = LoadOrDie(ref).release();
  }
  static void TearDownTestSuite() {
    delete fast_;
    delete reference_;
  }
  void SetUp() override {
    ASSERT_NE(fast_, nullptr);
    ASSERT_NE(reference_, nullptr);
  }
  static SentenceEncoder* fast_;
  static SentenceEncoder* reference_;
};
SentenceEncoder* EncoderTest::fast_ = nullptr;
SentenceEncoder* EncoderTest::reference_ = nullptr;

TEST_F(EncoderTest, ConfigComesFromTheModelFiles) {
  EXPECT_EQ(fast_->dim(), 384u);
  EXPECT_EQ(fast_->config().num_layers, 6);
  EXPECT_EQ(fast_->config().num_heads, 12);
  EXPECT_EQ(fast_->config().max_seq_length, 256);
  EXPECT_TRUE(fast_->config().normalize);
  EXPECT_EQ(fast_->info().model_name, "sentence-transformers/all-MiniLM-L6-v2");
  EXPECT_EQ(fast_->Tokenize(Texts().back()).size(), 256u);
}

TEST_F(EncoderTest, FastF32MatchesReference) {
  const auto fast = EmbedAll(*fast_, Texts());
  const auto ref = EmbedAll(*reference_, Texts());
  const size_t D = fast_->dim();
  for (size_t i = 0; i < Texts().size(); ++i) {
    const double cos = Cosine(&fast[i * D], &ref[i * D], D);
    EXPECT_GE(cos, 0.99999) << "text " << i;
    for (size_t d = 0; d < D; ++d) ASSERT_NEAR(fast[i * D + d], ref[i * D + d], 5e-5) << i;
  }
}

TEST_F(EncoderTest, OutputIsNormalisedAndFinite) {
  const auto v = EmbedAll(*fast_, Texts());
  const size_t D = fast_->dim();
  for (size_t i = 0; i < Texts().size(); ++i) {
    double ss = 0;
    for (size_t d = 0; d < D; ++d) {
      ASSERT_TRUE(std::isfinite(v[i * D + d]));
      ss += static_cast<double>(v[i * D + d]) * v[i * D + d];
    }
    EXPECT_NEAR(ss, 1.0, 1e-5) << "text " << i;
  }
}

// The same text at different positions among 40 others of varied lengths
// (different row counts, offsets and GEMM shapes) gets the vector it gets
// alone, within `tolerance`.
void ExpectBatchInvariant(SentenceEncoder& enc, float tolerance) {
  const size_t D = enc.dim();
  const std::string probe = "The quick brown fox jumps over the lazy dog.";
  const auto probe_ids = enc.Tokenize(probe);
  PackedBatch alone;
  alone.Add(probe_ids);
  std::vector<float> v_alone(D);
  enc.EmbedBatch(alone, v_alone.data());
  for (size_t position : {0u, 17u, 40u}) {
    PackedBatch mixed;
    size_t probe_index = 0;
    for (size_t i = 0; i <= 40; ++i) {
      if (i == position) {
        probe_index = mixed.num_sequences();
        mixed.Add(probe_ids);
      } else {
        std::string filler;
        for (size_t w = 0; w < (i * 7) % 60 + 1; ++w) filler += "word" + std::to_string(w) + " ";
        mixed.Add(enc.Tokenize(filler));
      }
    }
    std::vector<float> out(mixed.num_sequences() * D);
    enc.EmbedBatch(mixed, out.data());
    for (size_t d = 0; d < D; ++d) {
      ASSERT_NEAR(out[probe_index * D + d], v_alone[d], tolerance) << "position " << position;
    }
  }
}

TEST_F(EncoderTest, RepeatedRunsAreBitIdentical) {
  const auto a = EmbedAll(*fast_, Texts());
  const auto b = EmbedAll(*fast_, Texts());
  EXPECT_EQ(a, b);
}

TEST_F(EncoderTest, BatchCompositionDoesNotChangeAVector) { ExpectBatchInvariant(*fast_, 1e-6f); }

// int8: activations are quantized per token and integer GEMMs are exact, so
// a vector does not depend on its batch at all, and runs repeat bit for bit.
TEST_F(EncoderTest, Int8IsDeterministicBatchInvariantAndCloseToF32) {
  EncoderOptions opt;
  opt.precision = Precision::kInt8;
  auto int8 = LoadOrDie(opt);
  ASSERT_NE(int8, nullptr);
  EXPECT_EQ(int8->info().precision, Precision::kInt8);
  EXPECT_NE(int8->info().kernel.find("u8 x s8"), std::string::npos) << int8->info().kernel;
  const auto a = EmbedAll(*int8, Texts());
  EXPECT_EQ(a, EmbedAll(*int8, Texts()));
  ExpectBatchInvariant(*int8, 0.0f);
  const auto ref = EmbedAll(*reference_, Texts());
  const size_t D = int8->dim();
  for (size_t i = 0; i < Texts().size(); ++i) {
    double ss = 0;
    for (size_t d = 0; d < D; ++d) ss += static_cast<double>(a[i * D + d]) * a[i * D + d];
    EXPECT_NEAR(ss, 1.0, 1e-5) << "text " << i;
    EXPECT_GE(Cosine(&a[i * D], &ref[i * D], D), 0.98) << "text " << i;
  }
}

TEST_F(EncoderTest, Int8AutoChoosesByMeasuredSpeedAndSaysWhy) {
  EncoderOptions opt;
  opt.precision = Precision::kAuto;
  auto enc = LoadOrDie(opt);
  ASSERT_NE(enc, nullptr);
  const EncoderInfo& i = enc->info();
  EXPECT_EQ(i.requested_precision, Precision::kAuto);
  ASSERT_TRUE(i.precision == Precision::kInt8 || i.precision == Precision::kF32);
  EXPECT_NE(i.auto_choice.find("x f32 on a 512-token probe"), std::string::npos) << i.auto_choice;
  EXPECT_NE(i.auto_choice.find(std::string(": ") + PrecisionName(i.precision)), std::string::npos)
      << i.auto_choice;
  EncoderOptions ref;
  ref.backend = BackendKind::kReference;
  ref.precision = Precision::kInt8;
  auto refused = SentenceEncoder::Load(ModelDir(), ref);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, errc::invalid_argument);
}

TEST_F(EncoderTest, Bf16IsCloseToF32OrFallsBackCleanly) {
  EncoderOptions opt;
  opt.precision = Precision::kBF16;
  auto bf16 = LoadOrDie(opt);
  ASSERT_NE(bf16, nullptr);
  const CpuFeatures& f = GetCpuFeatures();
  if (!f.avx512_bf16 && !f.amx_bf16) {
    EXPECT_EQ(bf16->info().precision, Precision::kF32);  // fell back, said so in the log
    opt.allow_precision_fallback = false;
    auto strict = SentenceEncoder::Load(ModelDir(), opt);
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().code, errc::unsupported);
    return;
  }
  EXPECT_EQ(bf16->info().precision, Precision::kBF16);
  const auto a = EmbedAll(*bf16, Texts());
  const auto ref = EmbedAll(*reference_, Texts());
  const size_t D = bf16->dim();
  for (size_t i = 0; i < Texts().size(); ++i) {
    EXPECT_GE(Cosine(&a[i * D], &ref[i * D], D), 0.999) << "text " << i;
  }
}

// A copy of the real model dir (symlinks) with one file replaced.
class BrokenModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = embedstream::testing::MakeTempDir("broken");
    for (const auto& e : std::filesystem::directory_iterator(ModelDir())) {
      std::filesystem::create_symlink(std::filesystem::absolute(e.path()),
                                      dir_ / e.path().filename());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Replace(const std::string& name, const std::string& content) {
    std::filesystem::remove(dir_ / name);
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  Error LoadError() {
    auto enc = SentenceEncoder::Load(dir_, {});
    EXPECT_FALSE(enc.ok());
    return enc.ok() ? Error() : enc.error();
  }
  std::filesystem::path dir_;
};

TEST_F(BrokenModelTest, TruncatedWeights) {
  std::ifstream in(ModelDir() / "model.safetensors", std::ios::binary);
  std::string head(1 << 20, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  Replace("model.safetensors", head);
  const Error e = LoadError();
  EXPECT_EQ(e.code, errc::corrupt);
  EXPECT_NE(e.message.find("truncated"), std::string::npos) << e.message;
}

TEST_F(BrokenModelTest, ShapeDisagreesWithConfig) {
  auto cfg = nlohmann::json::parse(std::ifstream(ModelDir() / "config.json"));
  cfg["intermediate_size"] = 1000;
  Replace("config.json", cfg.dump());
  const Error e = LoadError();
  EXPECT_EQ(e.code, errc::corrupt);
  EXPECT_NE(e.message.find("intermediate.dense.weight"), std::string::npos) << e.message;
}

TEST_F(BrokenModelTest, MissingWeightsAndTokenizer) {
  std::filesystem::remove(dir_ / "model.safetensors");
  EXPECT_EQ(LoadError().code, errc::not_found);
  std::filesystem::remove(dir_ / "tokenizer.json");
  std::filesystem::remove(dir_ / "vocab.txt");
  EXPECT_FALSE(SentenceEncoder::Load(dir_, {}).ok());
}

TEST_F(BrokenModelTest, CorruptConfig) {
  Replace("config.json", "{\"hidden_size\": ");
  EXPECT_EQ(LoadError().code, errc::corrupt);
}

}  // namespace
}  // namespace embedstream::model
