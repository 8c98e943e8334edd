#include "model/kernels_int8.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/multiversion.h"
#include "model/simd_math.h"

namespace embedstream::model::kernels {
namespace {

// The row's range, widened to hold 0; a constant row of 0 gets scale 1.
ES_INLINE RowQuant RowParams(float lo, float hi, int qmax) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  RowQuant rq;
  if (hi - lo > 0.0f) rq.scale = (hi - lo) / static_cast<float>(qmax);
  rq.zero = static_cast<int32_t>(std::lround(-lo / rq.scale));
  rq.zero = std::clamp(rq.zero, 0, qmax);
  return rq;
}

// q = x quantized with rq (x already smoothed).
ES_INLINE void QuantizeWith(const float* x, size_t cols, int qmax, const RowQuant& rq, uint8_t* q) {
  const float inv = 1.0f / rq.scale;
  const auto zero = static_cast<float>(rq.zero);
  const auto top = static_cast<float>(qmax);
#pragma omp simd
  for (size_t i = 0; i < cols; ++i) {
    float v = RoundFast(x[i] * inv) + zero;
    v = v < 0.0f ? 0.0f : v;
    v = v > top ? top : v;
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

// A row of at most this many columns is smoothed in a buffer on the stack
// (BERT-base's FFN has 3,072).
constexpr size_t kMaxRowOnStack = 8192;

// Quantizes x * inv_smooth (per column; null: 1) by its range into q; the
// smoothed row goes to `buf` (n floats; may be x itself).
ES_INLINE RowQuant QuantizeSmoothed(const float* x, size_t n, int qmax, const float* inv_smooth,
                                    float* buf, uint8_t* q) {
  float lo = 0.0f, hi = 0.0f;
  if (inv_smooth != nullptr) {
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < n; ++i) {
      const float v = x[i] * inv_smooth[i];
      buf[i] = v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    x = buf;
  } else {
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < n; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
  }
  const RowQuant rq = RowParams(lo, hi, qmax);
  QuantizeWith(x, n, qmax, rq, q);
  return rq;
}

ES_MULTIVERSION
void QuantizeRow(const float* x, size_t cols, int qmax, const float* inv_smooth, uint8_t* q,
                 RowQuant* out) {
  alignas(64) float smoothed[kMaxRowOnStack];
  ES_CHECK(cols <= kMaxRowOnStack);
  *out = QuantizeSmoothed(x, cols, qmax, inv_smooth, smoothed, q);
}

ES_MULTIVERSION
void DequantizeRow(const DequantArgs& a, size_t r) {
  const int32_t* acc = a.acc + r * a.cols;
  float* out = a.out != nullptr ? a.out + r * a.cols : nullptr;
  const float rs = a.rq[r].scale;
  const auto rz = static_cast<float>(a.rq[r].zero);
  const float* scale = a.scale;
  const int32_t* col_sum = a.col_sum;
  const float* bias = a.bias;
  const size_t n = a.cols;
  switch (a.epilogue) {
    case Epilogue::kStore:
#pragma omp simd
      for (size_t c = 0; c < n; ++c) {
        const float v = static_cast<float>(acc[c]) - rz * static_cast<float>(col_sum[c]);
        out[c] = rs * scale[c] * v + bias[c];
      }
      break;
    case Epilogue::kAddTo:
#pragma omp simd
      for (size_t c = 0; c < n; ++c) {
        const float v = static_cast<float>(acc[c]) - rz * static_cast<float>(col_sum[c]);
        out[c] += rs * scale[c] * v + bias[c];
      }
      break;
    case Epilogue::kGeluQuantize: {
      // GELU, smoothing and the row's range into a buffer that stays in L1
      // (`out` gets the GELU values only when asked: calibration).
      alignas(64) float g[kMaxRowOnStack];
      ES_CHECK(n <= kMaxRowOnStack);
#pragma omp simd
      for (size_t c = 0; c < n; ++c) {
        const float v = static_cast<float>(acc[c]) - rz * static_cast<float>(col_sum[c]);
        g[c] = GeluErfFast(rs * scale[c] * v + bias[c]);
      }
      if (out != nullptr) std::memcpy(out, g, n * sizeof(float));
      a.rq_out[r] = QuantizeSmoothed(g, n, a.qmax_out, a.inv_smooth_out, g, a.q_out + r * n);
      break;
    }
  }
}

// Exact products of small integers: s32 accumulators up to 2^24 convert
// exactly; beyond that the f32 rounding is far below the quantization step.
double Dequantized(const DequantArgs& a, size_t r, size_t c) {
  const double v = static_cast<double>(a.acc[r * a.cols + c]) -
                   static_cast<double>(a.rq[r].zero) * static_cast<double>(a.col_sum[c]);
  return static_cast<double>(a.rq[r].scale) * static_cast<double>(a.scale[c]) * v +
         static_cast<double>(a.bias[c]);
}

}  // namespace

void QuantizeRows(const float* x, size_t rows, size_t cols, int qmax, const float* inv_smooth,
                  uint8_t* q, RowQuant* rq) {
  const auto n = static_cast<int64_t>(rows);
#pragma omp parallel for schedule(static) if (n > 16)
  for (int64_t r = 0; r < n; ++r) {
    const auto ur = static_cast<size_t>(r);
    QuantizeRow(x + ur * cols, cols, qmax, inv_smooth, q + ur * cols, rq + ur);
  }
}

void QuantizeRowsRef(const float* x, size_t rows, size_t cols, int qmax, const float* inv_smooth,
                     uint8_t* q, RowQuant* rq) {
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < cols; ++i) {
      row[i] = x[r * cols + i] * (inv_smooth != nullptr ? inv_smooth[i] : 1.0f);
    }
    const float lo = *std::min_element(row.begin(), row.end());
    const float hi = *std::max_element(row.begin(), row.end());
    rq[r] = RowParams(lo, hi, qmax);
    for (size_t i = 0; i < cols; ++i) {
      const double v = std::nearbyint(static_cast<double>(row[i]) / rq[r].scale) + rq[r].zero;
      q[r * cols + i] = static_cast<uint8_t>(std::clamp(v, 0.0, static_cast<double>(qmax)));
    }
  }
}

QuantizedWeights QuantizeWeights(const float* w, size_t n, size_t k, int qmax) {
  QuantizedWeights out;
  out.q.resize(n * k);
  out.scale.resize(n);
  out.col_sum.resize(n);
  const auto top = static_cast<float>(qmax);
  for (size_t j = 0; j < n; ++j) {
    const float* row = w + j * k;
    float amax = 0.0f;
    for (size_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
    // (A scale that clips the largest weights for a finer step on the rest,
    // chosen by least squared error, measured no better on the parity set.)
    const float scale = amax > 0.0f ? amax / top : 1.0f;
    int32_t sum = 0;
    for (size_t i = 0; i < k; ++i) {
      const float q = std::clamp(std::nearbyint(row[i] / scale), -top, top);
      out.q[j * k + i] = static_cast<int8_t>(q);
      sum += static_cast<int32_t>(q);
    }
    out.scale[j] = scale;
    out.col_sum[j] = sum;
  }
  return out;
}

std::vector<float> SmoothingFactors(const std::vector<float>& act_absmax, const float* w, size_t n,
                                    size_t k, float alpha) {
  std::vector<float> wmax(k, 0.0f);
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < k; ++i) wmax[i] = std::max(wmax[i], std::fabs(w[j * k + i]));
  }
  std::vector<float> s(k, 1.0f);
  for (size_t i = 0; i < k; ++i) {
    if (act_absmax[i] <= 0.0f || wmax[i] <= 0.0f) continue;
    const double v = std::pow(static_cast<double>(act_absmax[i]), alpha) /
                     std::pow(static_cast<double>(wmax[i]), 1.0 - alpha);
    s[i] = static_cast<float>(std::clamp(v, 1e-3, 1e3));
  }
  return s;
}

void Dequantize(const DequantArgs& a) {
  const auto n = static_cast<int64_t>(a.rows);
#pragma omp parallel for schedule(static) if (n > 16)
  for (int64_t r = 0; r < n; ++r) DequantizeRow(a, static_cast<size_t>(r));
}

void DequantizeRef(const DequantArgs& a) {
  for (size_t r = 0; r < a.rows; ++r) {
    float* out = a.out + r * a.cols;
    for (size_t c = 0; c < a.cols; ++c) {
      const double y = Dequantized(a, r, c);
      switch (a.epilogue) {
        case Epilogue::kStore:
          out[c] = static_cast<float>(y);
          break;
        case Epilogue::kAddTo:
          out[c] = static_cast<float>(out[c] + y);
          break;
        case Epilogue::kGeluQuantize:
          out[c] = static_cast<float>(0.5 * y * (1.0 + std::erf(y / std::sqrt(2.0))));
          break;
      }
    }
    if (a.epilogue == Epilogue::kGeluQuantize) {
      QuantizeRowsRef(out, 1, a.cols, a.qmax_out, a.inv_smooth_out, a.q_out + r * a.cols,
                      a.rq_out + r);
    }
  }
}

}  // namespace embedstream::model::kernels
