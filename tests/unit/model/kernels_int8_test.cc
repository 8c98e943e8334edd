// The int8 encoder's kernels: every fast kernel against its reference, and a
// quantized GEMM (integer product + Dequantize) against the f32 one.

#include "model/kernels_int8.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "model/kernels.h"

namespace embedstream::model::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Rows of different shapes: centred, all positive, all negative, all zero, one outlier.
std::vector<float> TestRows(size_t rows, size_t cols) {
  auto x = Random(rows * cols, 7, 2.0f);
  for (size_t c = 0; c < cols; ++c) {
    x[1 * cols + c] = std::fabs(x[1 * cols + c]) + 0.5f;
    x[2 * cols + c] = -std::fabs(x[2 * cols + c]) - 0.5f;
    x[3 * cols + c] = 0.0f;
  }
  x[4 * cols + 5] = 80.0f;
  return x;
}

TEST(KernelsInt8, QuantizeRowsMatchesReferenceAndStaysWithinHalfAStep) {
  const size_t rows = 41, cols = 384;
  std::vector<float> inv_smooth(cols);
  for (size_t c = 0; c < cols; ++c) inv_smooth[c] = 0.25f + static_cast<float>(c % 7) * 0.3f;
  const std::vector<const float*> smoothings = {nullptr, inv_smooth.data()};
  for (const float* smooth : smoothings)
    for (int qmax : {255, 127}) {
      auto x = TestRows(rows, cols);
      std::vector<uint8_t> q(rows * cols), q_ref(rows * cols);
      std::vector<RowQuant> rq(rows), rq_ref(rows);
      QuantizeRows(x.data(), rows, cols, qmax, smooth, q.data(), rq.data());
      QuantizeRowsRef(x.data(), rows, cols, qmax, smooth, q_ref.data(), rq_ref.data());
      if (smooth != nullptr) {  // what was quantized
        for (size_t i = 0; i < x.size(); ++i) x[i] *= smooth[i % cols];
      }
      for (size_t r = 0; r < rows; ++r) {
        ASSERT_NEAR(rq[r].scale, rq_ref[r].scale, 1e-6f * rq_ref[r].scale) << r;
        ASSERT_EQ(rq[r].zero, rq_ref[r].zero) << r;
        ASSERT_GE(rq[r].zero, 0);
        ASSERT_LE(rq[r].zero, qmax);
        for (size_t c = 0; c < cols; ++c) {
          const size_t i = r * cols + c;
          // Ties may round either way between the two: at most one step apart.
          ASSERT_LE(std::abs(static_cast<int>(q[i]) - static_cast<int>(q_ref[i])), 1)
              << r << "," << c;
          ASSERT_LE(q[i], qmax);
          const float back = rq[r].scale * static_cast<float>(static_cast<int>(q[i]) - rq[r].zero);
          ASSERT_NEAR(back, x[i], rq[r].scale * 0.5f + 1e-6f) << "row " << r << " col " << c;
        }
      }
      // Zero is exact, so a row of zeros stays zeros.
      for (size_t c = 0; c < cols; ++c) ASSERT_EQ(q[3 * cols + c], rq[3].zero);
    }
}

TEST(KernelsInt8, SmoothingMovesAColumnsOutliersIntoTheWeights) {
  const size_t n = 8, k = 6;
  auto w = Random(n * k, 5, 0.1f);
  for (size_t j = 0; j < n; ++j) w[j * k + 1] = 0.4f;  // column 1: weights 0.4 at most
  std::vector<float> act = {1, 16, 0, 4, 1, 1};        // column 1: an activation outlier
  const auto s = SmoothingFactors(act, w.data(), n, k, 0.5f);
  ASSERT_EQ(s.size(), k);
  EXPECT_NEAR(s[1], std::sqrt(16.0f) / std::sqrt(0.4f), 1e-4f);
  EXPECT_EQ(s[2], 1.0f);  // a column never seen is left alone
  // After smoothing, column 1's activations and weights have the same range.
  EXPECT_NEAR(act[1] / s[1], 0.4f * s[1], 1e-4f);
  for (float v : s) EXPECT_TRUE(v >= 1e-3f && v <= 1e3f);
}

TEST(KernelsInt8, WeightsArePerChannelSymmetricWithinHalfAStep) {
  const size_t n = 48, k = 384;
  auto w = Random(n * k, 3, 0.05f);
  w[7 * k + 11] = 2.0f;  // an outlier widens its own channel's step only
  for (int qmax : {127, 63}) {
    const QuantizedWeights qw = QuantizeWeights(w.data(), n, k, qmax);
    ASSERT_EQ(qw.q.size(), n * k);
    for (size_t j = 0; j < n; ++j) {
      int32_t sum = 0;
      int peak = 0;
      for (size_t i = 0; i < k; ++i) {
        const int q = qw.q[j * k + i];
        ASSERT_LE(std::abs(q), qmax);
        peak = std::max(peak, std::abs(q));
        sum += q;
        ASSERT_NEAR(q * qw.scale[j], w[j * k + i], qw.scale[j] * 0.5f + 1e-7f);
      }
      EXPECT_EQ(peak, qmax) << "channel " << j << " uses its whole range";
      EXPECT_EQ(sum, qw.col_sum[j]);
    }
    EXPECT_GT(qw.scale[7], 10 * qw.scale[8]);
  }
}

struct Gemm {
  std::vector<uint8_t> xq;
  std::vector<RowQuant> rq;
  QuantizedWeights w;
  std::vector<int32_t> acc;
  std::vector<float> bias;
};

// acc = q_x . q_w^T in int32, as oneDNN computes it.
Gemm QuantizedGemm(const std::vector<float>& x, size_t rows, size_t k, const std::vector<float>& w,
                   size_t n, const std::vector<float>& bias) {
  Gemm g;
  g.xq.resize(rows * k);
  g.rq.resize(rows);
  QuantizeRowsRef(x.data(), rows, k, 255, nullptr, g.xq.data(), g.rq.data());
  g.w = QuantizeWeights(w.data(), n, k, 127);
  g.acc.resize(rows * n);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (size_t i = 0; i < k; ++i) s += g.xq[r * k + i] * g.w.q[j * k + i];
      g.acc[r * n + j] = s;
    }
  }
  g.bias = bias;
  return g;
}

DequantArgs Args(const Gemm& g, size_t rows, size_t n, Epilogue e) {
  DequantArgs a;
  a.acc = g.acc.data();
  a.rows = rows;
  a.cols = n;
  a.rq = g.rq.data();
  a.scale = g.w.scale.data();
  a.col_sum = g.w.col_sum.data();
  a.bias = g.bias.data();
  a.epilogue = e;
  return a;
}

TEST(KernelsInt8, DequantizedGemmApproximatesTheF32GemmAndMatchesReference) {
  const size_t rows = 19, k = 384, n = 200;
  const auto x = TestRows(rows, k);
  const auto w = Random(n * k, 11, 0.05f);
  const auto bias = Random(n, 12, 0.1f);
  const Gemm g = QuantizedGemm(x, rows, k, w, n, bias);
  std::vector<float> exact(rows * n);
  LinearRef(x.data(), rows, k, w.data(), bias.data(), n, exact.data());

  // kStore: fast == reference, both close to the f32 product.
  std::vector<float> fast(rows * n), ref(rows * n);
  DequantArgs a = Args(g, rows, n, Epilogue::kStore);
  a.out = fast.data();
  Dequantize(a);
  a.out = ref.data();
  DequantizeRef(a);
  double err = 0, norm = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_NEAR(fast[i], ref[i], 1e-4f * (1.0f + std::fabs(ref[i]))) << i;
    err += (ref[i] - exact[i]) * (ref[i] - exact[i]);
    norm += exact[i] * exact[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 0.02) << "relative error of the quantized product";

  // kAddTo adds the same values to what is there.
  std::vector<float> base = Random(rows * n, 13), added = base;
  a = Args(g, rows, n, Epilogue::kAddTo);
  a.out = added.data();
  Dequantize(a);
  for (size_t i = 0; i < added.size(); ++i) ASSERT_NEAR(added[i], base[i] + ref[i], 1e-4f) << i;

  // kGeluQuantize: GELU of the same values, then quantized per row.
  for (int qmax : {255, 127}) {
    std::vector<float> gf(rows * n), gr(rows * n);
    std::vector<uint8_t> qf(rows * n), qr(rows * n);
    std::vector<RowQuant> rf(rows), rr(rows);
    a = Args(g, rows, n, Epilogue::kGeluQuantize);
    a.qmax_out = qmax;
    a.out = gf.data();
    a.q_out = qf.data();
    a.rq_out = rf.data();
    Dequantize(a);
    a.out = gr.data();
    a.q_out = qr.data();
    a.rq_out = rr.data();
    DequantizeRef(a);
    for (size_t i = 0; i < gf.size(); ++i) {
      const double v = ref[i];
      const double gelu = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      ASSERT_NEAR(gf[i], gelu, 1e-4 * (1.0 + std::fabs(gelu))) << i;
      ASSERT_NEAR(gf[i], gr[i], 1e-4f * (1.0f + std::fabs(gr[i]))) << i;
      ASSERT_LE(std::abs(static_cast<int>(qf[i]) - static_cast<int>(qr[i])), 1) << i;
      ASSERT_LE(qf[i], qmax);
    }
    for (size_t r = 0; r < rows; ++r) {
      ASSERT_NEAR(rf[r].scale, rr[r].scale, 1e-5f * rr[r].scale);
      ASSERT_LE(std::abs(rf[r].zero - rr[r].zero), 1);
    }
  }
}

}  // namespace
}  // namespace embedstream::model::kernels
