#include "model/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/multiversion.h"
#include "model/simd_math.h"

namespace embedstream::model::kernels {
namespace {

ES_INLINE uint16_t ToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

ES_MULTIVERSION
void LayerNormRow(float* x, size_t cols, const float* gamma, const float* beta, float eps,
                  uint16_t* bf16_out) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < cols; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(cols);
  float var = 0.0f;
#pragma omp simd reduction(+ : var)
  for (size_t i = 0; i < cols; ++i) {
    const float d = x[i] - mean;
    var += d * d;
  }
  const float inv = 1.0f / std::sqrt(var / static_cast<float>(cols) + eps);
#pragma omp simd
  for (size_t i = 0; i < cols; ++i) x[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
  if (bf16_out != nullptr) {
#pragma omp simd
    for (size_t i = 0; i < cols; ++i) bf16_out[i] = ToBF16(x[i]);
  }
}

// One (sequence, head) pair, register-blocked: kRows query rows at a time;
// scores for 16 keys per step (K transposed and zero-padded to a multiple of
// 16 so every step is a full vector), then softmax, then P.V with the kRows x
// D accumulator tile held in registers. q/k/v point at the head's first
// column of the sequence's first row; rows are `stride` floats apart.
// scratch: D * Lp + kRows * Lp floats, Lp = L rounded up to 16.
constexpr size_t kRows = 8;
constexpr size_t kKeyBlock = 16;

ES_INLINE size_t PaddedLength(size_t len) { return (len + kKeyBlock - 1) / kKeyBlock * kKeyBlock; }

template <size_t D>
ES_INLINE void AttentionHeadTiled(const float* q, const float* k, const float* v, size_t stride,
                                  size_t len, float* out, size_t out_stride, uint16_t* out_bf16,
                                  float* scratch) {
  const size_t L = len;
  const size_t Lp = PaddedLength(L);
  float* kt = scratch;          // [D][Lp]
  float* s = scratch + D * Lp;  // [kRows][Lp]
  // Row by row: each key row is read once, contiguously.
  for (size_t j = 0; j < L; ++j) {
    const float* kj = k + j * stride;
    for (size_t d = 0; d < D; ++d) kt[d * Lp + j] = kj[d];
  }
  for (size_t d = 0; d < D; ++d) {
    for (size_t j = L; j < Lp; ++j) kt[d * Lp + j] = 0.0f;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (size_t i0 = 0; i0 < L; i0 += kRows) {
    // Rows past the end repeat the last row; their results are dropped.
    const float* qr[kRows];
    for (size_t r = 0; r < kRows; ++r) qr[r] = q + std::min(i0 + r, L - 1) * stride;
    for (size_t j0 = 0; j0 < Lp; j0 += kKeyBlock) {
      float acc[kRows][kKeyBlock] = {};
      for (size_t d = 0; d < D; ++d) {
        const float* kv = kt + d * Lp + j0;
#pragma GCC unroll 8
        for (size_t r = 0; r < kRows; ++r) {
          const float qd = qr[r][d];
#pragma omp simd
          for (size_t jj = 0; jj < kKeyBlock; ++jj) acc[r][jj] += qd * kv[jj];
        }
      }
      for (size_t r = 0; r < kRows; ++r) {
#pragma omp simd
        for (size_t jj = 0; jj < kKeyBlock; ++jj) s[r * Lp + j0 + jj] = acc[r][jj] * scale;
      }
    }
    // Softmax numerators over whole 16-key blocks (padded keys masked out);
    // the 1/sum is applied to the P.V result instead of to every probability.
    float inv_sum[kRows];
    for (size_t r = 0; r < kRows; ++r) {
      float* sr = s + r * Lp;
      for (size_t j = L; j < Lp; ++j) sr[j] = -1e30f;
      float lane_max[kKeyBlock];
      for (size_t jj = 0; jj < kKeyBlock; ++jj) lane_max[jj] = sr[jj];
      for (size_t j0 = kKeyBlock; j0 < Lp; j0 += kKeyBlock) {
        for (size_t jj = 0; jj < kKeyBlock; ++jj) {
          lane_max[jj] = sr[j0 + jj] > lane_max[jj] ? sr[j0 + jj] : lane_max[jj];
        }
      }
      float mx = lane_max[0];
      for (size_t jj = 1; jj < kKeyBlock; ++jj) mx = lane_max[jj] > mx ? lane_max[jj] : mx;
      float lane_sum[kKeyBlock] = {};
      for (size_t j0 = 0; j0 < Lp; j0 += kKeyBlock) {
        for (size_t jj = 0; jj < kKeyBlock; ++jj) {
          const float e = ExpFast(sr[j0 + jj] - mx);
          sr[j0 + jj] = e;
          lane_sum[jj] += e;
        }
      }
      float sum = 0.0f;
      for (size_t jj = 0; jj < kKeyBlock; ++jj) sum += lane_sum[jj];
      inv_sum[r] = 1.0f / sum;
    }
    float acc[kRows][D] = {};
    for (size_t j = 0; j < L; ++j) {
      const float* vj = v + j * stride;
#pragma GCC unroll 8
      for (size_t r = 0; r < kRows; ++r) {
        const float p = s[r * Lp + j];
#pragma omp simd
        for (size_t d = 0; d < D; ++d) acc[r][d] += p * vj[d];
      }
    }
    const size_t rows = std::min(kRows, L - i0);
    for (size_t r = 0; r < rows; ++r) {
      const float inv = inv_sum[r];
      if (out_bf16 != nullptr) {
        uint16_t* o = out_bf16 + (i0 + r) * out_stride;
#pragma omp simd
        for (size_t d = 0; d < D; ++d) o[d] = ToBF16(acc[r][d] * inv);
      } else {
        float* o = out + (i0 + r) * out_stride;
#pragma omp simd
        for (size_t d = 0; d < D; ++d) o[d] = acc[r][d] * inv;
      }
    }
  }
}

// Any head size: the same algorithm one query row at a time.
ES_INLINE void AttentionHeadGeneric(const float* q, const float* k, const float* v, size_t stride,
                                    size_t len, size_t head_dim, float* out, size_t out_stride,
                                    uint16_t* out_bf16, float* scratch) {
  const size_t L = len;
  const size_t D = head_dim;
  float* kt = scratch;         // [D][L]
  float* p = scratch + D * L;  // [L]
  for (size_t j = 0; j < L; ++j) {
    for (size_t d = 0; d < D; ++d) kt[d * L + j] = k[j * stride + d];
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::vector<float> acc(D);
  for (size_t i = 0; i < L; ++i) {
    const float* qi = q + i * stride;
    std::fill(p, p + L, 0.0f);
    for (size_t d = 0; d < D; ++d) {
      const float qd = qi[d] * scale;
#pragma omp simd
      for (size_t j = 0; j < L; ++j) p[j] += qd * kt[d * L + j];
    }
    float mx = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < L; ++j) mx = std::max(mx, p[j]);
    float sum = 0.0f;
    for (size_t j = 0; j < L; ++j) {
      p[j] = ExpFast(p[j] - mx);
      sum += p[j];
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (size_t j = 0; j < L; ++j) {
      const float pj = p[j] / sum;
#pragma omp simd
      for (size_t d = 0; d < D; ++d) acc[d] += pj * v[j * stride + d];
    }
    for (size_t d = 0; d < D; ++d) {
      if (out_bf16 != nullptr) {
        out_bf16[i * out_stride + d] = ToBF16(acc[d]);
      } else {
        out[i * out_stride + d] = acc[d];
      }
    }
  }
}

size_t AttentionScratchFloats(size_t len, size_t head_dim) {
  const size_t Lp = PaddedLength(len);
  return head_dim * Lp + kRows * Lp + Lp;
}

ES_MULTIVERSION
void AttentionHead(const float* q, const float* k, const float* v, size_t stride, size_t len,
                   size_t head_dim, float* out, size_t out_stride, uint16_t* out_bf16,
                   float* scratch) {
  switch (head_dim) {
    case 32:
      AttentionHeadTiled<32>(q, k, v, stride, len, out, out_stride, out_bf16, scratch);
      return;
    case 64:
      AttentionHeadTiled<64>(q, k, v, stride, len, out, out_stride, out_bf16, scratch);
      return;
    default:
      AttentionHeadGeneric(q, k, v, stride, len, head_dim, out, out_stride, out_bf16, scratch);
  }
}

ES_MULTIVERSION
void SumRows(const float* x, size_t rows, size_t cols, float* out) {
#pragma omp simd
  for (size_t c = 0; c < cols; ++c) out[c] = 0.0f;
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
#pragma omp simd
    for (size_t c = 0; c < cols; ++c) out[c] += xr[c];
  }
}

void Normalize(float* v, size_t n) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
  // sentence-transformers: F.normalize(p=2, eps=1e-12)
  const double norm = std::max(std::sqrt(ss), 1e-12);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] / norm);
}

}  // namespace

void LayerNorm(float* x, size_t rows, size_t cols, const float* gamma, const float* beta, float eps,
               uint16_t* bf16_out) {
  const auto n = static_cast<int64_t>(rows);
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < n; ++r) {
    const auto ur = static_cast<size_t>(r);
    LayerNormRow(x + ur * cols, cols, gamma, beta, eps,
                 bf16_out != nullptr ? bf16_out + ur * cols : nullptr);
  }
}

void LayerNormRef(float* x, size_t rows, size_t cols, const float* gamma, const float* beta,
                  float eps) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    double mean = 0.0;
    for (size_t i = 0; i < cols; ++i) mean += row[i];
    mean /= static_cast<double>(cols);
    double var = 0.0;
    for (size_t i = 0; i < cols; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(cols);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (size_t i = 0; i < cols; ++i) {
      row[i] = static_cast<float>((row[i] - mean) * inv * gamma[i] + beta[i]);
    }
  }
}

void Attention(const float* qkv, float* ctx, const int32_t* offsets, size_t num_seqs,
               size_t num_heads, size_t head_dim, uint16_t* ctx_bf16) {
  const size_t hidden = num_heads * head_dim;
  const size_t stride = 3 * hidden;
  size_t max_len = 0;
  for (size_t s = 0; s < num_seqs; ++s) {
    max_len = std::max(max_len, static_cast<size_t>(offsets[s + 1] - offsets[s]));
  }
  const size_t scratch_floats = AttentionScratchFloats(max_len, head_dim);
  const auto tasks = static_cast<int64_t>(num_seqs * num_heads);
#pragma omp parallel
  {
    std::vector<float> scratch(scratch_floats);
    // Batches arrive sorted longest first, so a cyclic static schedule
    // spreads the long sequences over the threads without a shared counter.
#pragma omp for schedule(static, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const size_t s = static_cast<size_t>(t) / num_heads;
      const size_t h = static_cast<size_t>(t) % num_heads;
      const auto begin = static_cast<size_t>(offsets[s]);
      const auto len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
      if (len == 0) continue;
      const float* base = qkv + begin * stride + h * head_dim;
      const size_t out_off = begin * hidden + h * head_dim;
      AttentionHead(base, base + hidden, base + 2 * hidden, stride, len, head_dim,
                    ctx != nullptr ? ctx + out_off : nullptr, hidden,
                    ctx_bf16 != nullptr ? ctx_bf16 + out_off : nullptr, scratch.data());
    }
  }
}

void AttentionRef(const float* qkv, float* ctx, const int32_t* offsets, size_t num_seqs,
                  size_t num_heads, size_t head_dim) {
  const size_t hidden = num_heads * head_dim;
  const size_t stride = 3 * hidden;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::vector<double> scores;
  for (size_t s = 0; s < num_seqs; ++s) {
    const auto begin = static_cast<size_t>(offsets[s]);
    const auto len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
    scores.resize(len);
    for (size_t h = 0; h < num_heads; ++h) {
      for (size_t i = 0; i < len; ++i) {
        const float* q = qkv + (begin + i) * stride + h * head_dim;
        double mx = -std::numeric_limits<double>::infinity();
        for (size_t j = 0; j < len; ++j) {
          const float* k = qkv + (begin + j) * stride + hidden + h * head_dim;
          double dot = 0.0;
          for (size_t d = 0; d < head_dim; ++d) dot += static_cast<double>(q[d]) * k[d];
          scores[j] = dot * scale;
          mx = std::max(mx, scores[j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j < len; ++j) {
          scores[j] = std::exp(scores[j] - mx);
          sum += scores[j];
        }
        float* out = ctx + (begin + i) * hidden + h * head_dim;
        for (size_t d = 0; d < head_dim; ++d) {
          double acc = 0.0;
          for (size_t j = 0; j < len; ++j) {
            acc += scores[j] / sum * qkv[(begin + j) * stride + 2 * hidden + h * head_dim + d];
          }
          out[d] = static_cast<float>(acc);
        }
      }
    }
  }
}

void Pool(const float* hidden, size_t cols, const int32_t* offsets, size_t num_seqs,
          PoolingMode mode, bool normalize, float* out) {
  const auto n = static_cast<int64_t>(num_seqs);
#pragma omp parallel for schedule(static) if (num_seqs > 8)
  for (int64_t si = 0; si < n; ++si) {
    const auto s = static_cast<size_t>(si);
    const auto begin = static_cast<size_t>(offsets[s]);
    const auto len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
    float* o = out + s * cols;
    const float* h = hidden + begin * cols;
    switch (mode) {
      case PoolingMode::kCls:
        std::memcpy(o, h, cols * sizeof(float));
        break;
      case PoolingMode::kMax:
        std::memcpy(o, h, cols * sizeof(float));
        for (size_t r = 1; r < len; ++r) {
          for (size_t c = 0; c < cols; ++c) o[c] = std::max(o[c], h[r * cols + c]);
        }
        break;
      case PoolingMode::kMean:
      case PoolingMode::kMeanSqrtLen: {
        SumRows(h, len, cols, o);
        const float denom = mode == PoolingMode::kMean ? static_cast<float>(len)
                                                       : std::sqrt(static_cast<float>(len));
        for (size_t c = 0; c < cols; ++c) o[c] /= std::max(denom, 1e-9f);
        break;
      }
    }
    if (normalize) Normalize(o, cols);
  }
}

void PoolRef(const float* hidden, size_t cols, const int32_t* offsets, size_t num_seqs,
             PoolingMode mode, bool normalize, float* out) {
  for (size_t s = 0; s < num_seqs; ++s) {
    const auto begin = static_cast<size_t>(offsets[s]);
    const auto len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
    float* o = out + s * cols;
    for (size_t c = 0; c < cols; ++c) {
      double acc = mode == PoolingMode::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      for (size_t r = 0; r < len; ++r) {
        const double v = hidden[(begin + r) * cols + c];
        if (mode == PoolingMode::kMax) {
          acc = std::max(acc, v);
        } else if (mode == PoolingMode::kCls) {
          if (r == 0) acc = v;
        } else {
          acc += v;
        }
      }
      if (mode == PoolingMode::kMean) acc /= static_cast<double>(len);
      if (mode == PoolingMode::kMeanSqrtLen) acc /= std::sqrt(static_cast<double>(len));
      o[c] = static_cast<float>(acc);
    }
    if (normalize) Normalize(o, cols);
  }
}

void F32ToBF16(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = ToBF16(src[i]);
}

float BF16ToF32(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void GeluErfRef(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

void LinearRef(const float* x, size_t rows, size_t k, const float* w, const float* b, size_t n,
               float* y) {
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * k;
    for (size_t j = 0; j < n; ++j) {
      const float* wj = w + j * k;
      double acc = b != nullptr ? b[j] : 0.0;
      for (size_t i = 0; i < k; ++i) acc += static_cast<double>(xr[i]) * wj[i];
      y[r * n + j] = static_cast<float>(acc);
    }
  }
}

}  // namespace embedstream::model::kernels
