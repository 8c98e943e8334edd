#pragma once
// What the oneDNN backends (cpu_backend.cc: f32/bf16, cpu_int8_backend.cc:
// int8) share: row rounding for cached primitives, the four GEMMs of a layer,
// the stage profiler, aligned scratch and the embedding lookup.

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <utility>

#include "core/check.h"
#include "model/bert_weights.h"
#include "model/model_config.h"
#include "model/packed_batch.h"

namespace embedstream::model {

constexpr int64_t kRowQuantum = 32;
// Small batches (a search query, one HTTP message) round to 8 rows instead:
// a 7-token query then runs 8-row GEMMs, not 32-row ones. Adds at most 8
// cached primitives per op.
constexpr int64_t kSmallRowQuantum = 8;
constexpr int64_t kSmallRows = 64;

inline int64_t RoundRows(int64_t tokens) {
  const int64_t q = tokens <= kSmallRows ? kSmallRowQuantum : kRowQuantum;
  return (tokens + q - 1) / q * q;
}
constexpr int64_t kReferenceRows = 512;  // M used to pick the weight layout

// The four GEMMs of a BERT layer; all layers share shapes, so one primitive
// per (op, rows) serves every layer.
enum Op { kQkv = 0, kAttnOut = 1, kFfnIn = 2, kFfnOut = 3, kNumOps = 4 };

// EMBEDSTREAM_PROFILE=1: wall time per stage, printed when the backend is
// destroyed. Costs one clock read per stage when on, nothing when off.
class StageProfile {
 public:
  enum Stage {
    kEmbed,
    kLayerNorm,
    kGemmQkv,
    kAttention,
    kGemmOut,
    kGemmFfnIn,
    kGemmFfnOut,
    kPool,
    kQuantize,
    kEpilogue,
    kNumStages
  };
  StageProfile() : on_(std::getenv("EMBEDSTREAM_PROFILE") != nullptr) {}
  ~StageProfile() {
    if (!on_ || tokens_ == 0) return;
    static const char* kNames[] = {"embed",    "layernorm",   "gemm_qkv",     "attention",
                                   "gemm_out", "gemm_ffn_in", "gemm_ffn_out", "pool",
                                   "quantize", "epilogue"};
    double total = 0;
    for (double t : seconds_) total += t;
    std::fprintf(stderr, "[profile] %zu tokens, %.3f s, %.0f tok/s\n", tokens_, total,
                 static_cast<double>(tokens_) / total);
    for (int i = 0; i < kNumStages; ++i) {
      std::fprintf(stderr, "[profile]   %-13s %8.3f s %5.1f%%\n", kNames[i], seconds_[i],
                   100.0 * seconds_[i] / total);
    }
  }
  void Tokens(size_t n) { tokens_ += n; }
  void Start() {
    if (on_) t0_ = std::chrono::steady_clock::now();
  }
  void Stop(Stage s) {
    if (!on_) return;
    const auto t1 = std::chrono::steady_clock::now();
    seconds_[s] += std::chrono::duration<double>(t1 - t0_).count();
    t0_ = t1;
  }

 private:
  bool on_;
  size_t tokens_ = 0;
  std::chrono::steady_clock::time_point t0_;
  std::array<double, kNumStages> seconds_{};
};

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }
  void Resize(size_t n) {
    if (n <= size_) return;
    std::free(data_);
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    ES_CHECK(data_ != nullptr);
    std::memset(data_, 0, bytes);
    size_ = n;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

// A layer GEMM's weights: K inputs, N outputs.
struct GemmShape {
  int64_t k = 0, n = 0;
};
std::array<GemmShape, kNumOps> LayerShapes(const ModelConfig& config);

// One matmul primitive per (op, rows), made by `make` on first use and kept;
// the user-mode scratchpad they share grows to the largest one's.
class MatmulCache {
 public:
  using Make = std::function<dnnl::matmul::primitive_desc(Op op, int64_t rows)>;
  MatmulCache(const dnnl::engine& engine, Make make) : engine_(engine), make_(std::move(make)) {}
  const dnnl::matmul& Get(Op op, int64_t rows);
  // The scratchpad as a oneDNN memory (DNNL_ARG_SCRATCHPAD).
  dnnl::memory Scratchpad() const;

 private:
  dnnl::engine engine_;
  Make make_;
  std::map<std::pair<int, int64_t>, dnnl::matmul> primitives_;
  AlignedBuffer<unsigned char> scratchpad_;
};

// x = word + position + token type 0, row by row ([tokens, hidden]).
void EmbedTokens(const BertWeights& w, const PackedBatch& batch, float* x);

}  // namespace embedstream::model
