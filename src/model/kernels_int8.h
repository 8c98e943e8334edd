#pragma once
// The int8 encoder's element-wise kernels (the GEMMs themselves are oneDNN's
// u8 x s8 -> s32 matmul): dynamic quantization of activations, one scale and
// zero point per row (token), and the epilogues that turn a GEMM's s32
// accumulators back into f32 with the bias, GELU and residual add fused.
// Weights are quantized once, symmetric, one scale per output channel.
// Each fast kernel has a plain reference (`...Ref`, double arithmetic);
// tests/unit/model/kernels_int8_test.cc holds one to the other.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace embedstream::model::kernels {

// A row quantized asymmetrically: x ~= scale * (q - zero), q in [0, qmax]
// (qmax 255, or 127 where the CPU's int8 instruction would saturate).
struct RowQuant {
  float scale = 1.0f;
  int32_t zero = 0;
};

// Quantizes each row of x [rows, cols] * inv_smooth (one factor per column;
// null: none) to [0, qmax] with its own scale and zero point (the row's range,
// widened to hold 0 so 0 is exact).
void QuantizeRows(const float* x, size_t rows, size_t cols, int qmax, const float* inv_smooth,
                  uint8_t* q, RowQuant* rq);
void QuantizeRowsRef(const float* x, size_t rows, size_t cols, int qmax, const float* inv_smooth,
                     uint8_t* q, RowQuant* rq);

// Smoothing (SmoothQuant): a GEMM input's column j is divided by s[j] and the
// weights' column j multiplied by it, which leaves the product unchanged and
// moves a column's outliers (BERT has a few, the same for every text) into
// the weights, where per-channel scales absorb them:
// s[j] = act_absmax[j]^alpha / weight_absmax[j]^(1 - alpha), within [1e-3, 1e3].
std::vector<float> SmoothingFactors(const std::vector<float>& act_absmax, const float* w, size_t n,
                                    size_t k, float alpha);

// Weights [n, k] row-major (PyTorch Linear) quantized per output channel j:
// q[j, i] = round(w[j, i] / scale[j]), |q| <= qmax (127, or 63 where the
// CPU's int8 instruction would saturate a pair of u8 x s8 products: AVX2
// without VNNI). col_sum[j] = sum_i q[j, i] (for the activations' zero point).
struct QuantizedWeights {
  std::vector<int8_t> q;  // [n, k]
  std::vector<float> scale;
  std::vector<int32_t> col_sum;
};
QuantizedWeights QuantizeWeights(const float* w, size_t n, size_t k, int qmax);

// What happens to y = dequantized accumulator + bias.
enum class Epilogue {
  kStore,         // out = y
  kAddTo,         // out += y (the residual)
  kGeluQuantize,  // out = GELU(y), then quantized per row into q_out / rq_out
};

// acc [rows, cols] s32 = q_a . q_w^T; y[r, c] = rq[r].scale * scale[c] *
// (acc[r, c] - rq[r].zero * col_sum[c]) + bias[c].
struct DequantArgs {
  const int32_t* acc = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  const RowQuant* rq = nullptr;
  const float* scale = nullptr;
  const int32_t* col_sum = nullptr;
  const float* bias = nullptr;
  Epilogue epilogue = Epilogue::kStore;
  float* out = nullptr;                   // [rows, cols] f32
  uint8_t* q_out = nullptr;               // kGeluQuantize: [rows, cols]
  RowQuant* rq_out = nullptr;             // kGeluQuantize: [rows]
  int qmax_out = 255;                     // kGeluQuantize: the quantized range [0, qmax_out]
  const float* inv_smooth_out = nullptr;  // kGeluQuantize: see QuantizeRows
};
void Dequantize(const DequantArgs& a);
void DequantizeRef(const DequantArgs& a);

}  // namespace embedstream::model::kernels
