// Every fast kernel against its plain reference.

#include "model/kernels.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::model::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST(Kernels, LayerNormMatchesReference) {
  const size_t rows = 37, cols = 384;
  auto x = Random(rows * cols, 1, 3.0f);
  auto gamma = Random(cols, 2);
  auto beta = Random(cols, 3);
  auto fast = x, ref = x;
  std::vector<uint16_t> bf(rows * cols);
  LayerNorm(fast.data(), rows, cols, gamma.data(), beta.data(), 1e-12f, bf.data());
  LayerNormRef(ref.data(), rows, cols, gamma.data(), beta.data(), 1e-12f);
  EXPECT_LT(MaxAbsDiff(fast, ref), 2e-5f);
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_NEAR(BF16ToF32(bf[i]), fast[i], std::fabs(fast[i]) * (1.0f / 128) + 1e-30f);
  }
}

TEST(Kernels, AttentionMatchesReferenceOnPackedSequences) {
  const size_t heads = 12, head_dim = 32, hidden = heads * head_dim;
  const std::vector<int32_t> offsets = {0, 1, 18, 145, 147};  // lengths 1, 17, 127, 2
  const auto tokens = static_cast<size_t>(offsets.back());
  auto qkv = Random(tokens * 3 * hidden, 4, 2.0f);
  std::vector<float> fast(tokens * hidden), ref(tokens * hidden);
  Attention(qkv.data(), fast.data(), offsets.data(), offsets.size() - 1, heads, head_dim);
  AttentionRef(qkv.data(), ref.data(), offsets.data(), offsets.size() - 1, heads, head_dim);
  EXPECT_LT(MaxAbsDiff(fast, ref), 1e-5f);
  // A token attends only inside its own sequence: a length-1 sequence's
  // context is exactly its own V.
  for (size_t d = 0; d < hidden; ++d) EXPECT_EQ(fast[d], qkv[2 * hidden + d]);

  std::vector<uint16_t> bf(tokens * hidden);
  Attention(qkv.data(), nullptr, offsets.data(), offsets.size() - 1, heads, head_dim, bf.data());
  for (size_t i = 0; i < bf.size(); ++i) {
    ASSERT_NEAR(BF16ToF32(bf[i]), ref[i], std::fabs(ref[i]) / 128 + 1e-5f);
  }
}

TEST(Kernels, PoolingMatchesReferenceForEveryMode) {
  const size_t cols = 384;
  const std::vector<int32_t> offsets = {0, 5, 6, 40};
  auto h = Random(static_cast<size_t>(offsets.back()) * cols, 5);
  for (PoolingMode mode :
       {PoolingMode::kMean, PoolingMode::kCls, PoolingMode::kMax, PoolingMode::kMeanSqrtLen}) {
    for (bool normalize : {false, true}) {
      std::vector<float> fast(3 * cols), ref(3 * cols);
      Pool(h.data(), cols, offsets.data(), 3, mode, normalize, fast.data());
      PoolRef(h.data(), cols, offsets.data(), 3, mode, normalize, ref.data());
      EXPECT_LT(MaxAbsDiff(fast, ref), 1e-5f) << PoolingModeName(mode) << normalize;
      if (normalize) {
        double ss = 0;
        for (size_t c = 0; c < cols; ++c) ss += fast[c] * fast[c];
        EXPECT_NEAR(ss, 1.0, 1e-5);
      }
    }
  }
}

TEST(Kernels, BF16RoundsToNearestEven) {
  const float vals[] = {1.0f, 1.00390625f /* tie -> even */, 1.01171875f /* tie -> up */, -3.5f,
                        0.0f};
  uint16_t out[5];
  F32ToBF16(vals, out, 5);
  EXPECT_EQ(out[0], 0x3F80);
  EXPECT_EQ(out[1], 0x3F80);
  EXPECT_EQ(out[2], 0x3F82);
  EXPECT_EQ(BF16ToF32(out[3]), -3.5f);
  EXPECT_EQ(out[4], 0);
  const float nan = std::nanf("");
  uint16_t n;
  F32ToBF16(&nan, &n, 1);
  EXPECT_TRUE(std::isnan(BF16ToF32(n)));
}

TEST(Kernels, GeluErfIsExact) {
  std::vector<float> x = {-3.0f, -1.0f, 0.0f, 0.5f, 2.0f};
  GeluErfRef(x.data(), x.size());
  EXPECT_NEAR(x[0], -0.00404969f, 1e-7f);
  EXPECT_NEAR(x[1], -0.15865525f, 1e-7f);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_NEAR(x[3], 0.34573123f, 1e-7f);
  EXPECT_NEAR(x[4], 1.95449974f, 1e-6f);
}

}  // namespace
}  // namespace embedstream::model::kernels
