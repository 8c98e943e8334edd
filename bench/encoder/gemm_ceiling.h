#pragma once
// The GEMM ceiling: oneDNN matmul alone on the encoder's own shapes
// (M = rows of a batch, the four K x N weight matrices of a BERT layer),
// weights pre-packed, no fusion, no attention, no LayerNorm — the speed
// the encoder could reach if it were nothing but its GEMMs.

#include <cstdint>

namespace embedstream::bench {

struct GemmCeiling {
  double gflops = 0;           // achieved over the four shapes
  double flops_per_token = 0;  // GEMM FLOPs one token costs (all layers)
  double tokens_per_s = 0;     // gflops * 1e9 / flops_per_token
};

// What each encoder runs: f32; bf16 src/weights with f32 dst; int8: u8 src,
// s8 weights, s32 dst.
enum class GemmType { kF32, kBF16, kInt8 };
GemmCeiling MeasureGemmCeiling(int64_t rows, int64_t hidden, int64_t ffn, int64_t layers,
                               GemmType type, double min_seconds);

}  // namespace embedstream::bench
