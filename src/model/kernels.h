#pragma once
// Element-wise and per-sequence kernels of the BERT forward pass that are not
// GEMMs. Each has a plain reference (`...Ref`, double accumulation, std::exp
// / std::erf) and a fast version (OpenMP across rows/heads, SIMD within,
// compiled for several ISAs and picked at run time by the loader's ifunc).
// tests/unit/model/kernels_test.cc holds every fast kernel to its reference.
//
// Packed layout: the tokens of all sequences of a batch are rows of one
// [tokens, width] matrix; `offsets` has n+1 entries, sequence s owns rows
// [offsets[s], offsets[s+1]).

#include <cstddef>
#include <cstdint>

#include "model/model_config.h"

namespace embedstream::model::kernels {

// x[r] = LayerNorm(x[r]) * gamma + beta for every row, in place. When
// `bf16_out` is not null the result is also written there as bf16.
void LayerNorm(float* x, size_t rows, size_t cols, const float* gamma, const float* beta, float eps,
               uint16_t* bf16_out = nullptr);
void LayerNormRef(float* x, size_t rows, size_t cols, const float* gamma, const float* beta,
                  float eps);

// Multi-head self-attention over packed sequences. `qkv` is [tokens, 3*hidden]
// (Q | K | V, heads contiguous inside each), `ctx` is [tokens, hidden]. Each
// token attends to the tokens of its own sequence only. When `ctx_bf16` is not
// null the context is written there as bf16 instead of to `ctx`.
void Attention(const float* qkv, float* ctx, const int32_t* offsets, size_t num_seqs,
               size_t num_heads, size_t head_dim, uint16_t* ctx_bf16 = nullptr);
void AttentionRef(const float* qkv, float* ctx, const int32_t* offsets, size_t num_seqs,
                  size_t num_heads, size_t head_dim);

// out[s] = pooled hidden states of sequence s (then L2-normalised when asked).
void Pool(const float* hidden, size_t cols, const int32_t* offsets, size_t num_seqs,
          PoolingMode mode, bool normalize, float* out);
void PoolRef(const float* hidden, size_t cols, const int32_t* offsets, size_t num_seqs,
             PoolingMode mode, bool normalize, float* out);

// Round-to-nearest-even f32 -> bf16 (NaN stays NaN).
void F32ToBF16(const float* src, uint16_t* dst, size_t n);
float BF16ToF32(uint16_t v);

// x = x * 0.5 * (1 + erf(x / sqrt(2))), reference only (the fast path fuses
// GELU into the GEMM).
void GeluErfRef(float* x, size_t n);

// y[r] = x[r] . W^T + b with W [n, k] row-major (PyTorch Linear), double
// accumulation. Reference GEMM for tests and the reference backend.
void LinearRef(const float* x, size_t rows, size_t k, const float* w, const float* b, size_t n,
               float* y);

}  // namespace embedstream::model::kernels
