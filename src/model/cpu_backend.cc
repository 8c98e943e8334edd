// oneDNN backend: f32 or bf16 GEMMs with bias, GELU and the residual add
// fused into the matmul, our own kernels for LayerNorm and attention over
// packed (unpadded) sequences. Row counts are rounded up (RoundRows) so a
// bounded set of matmul primitives, created on first use and cached, covers
// every batch; the extra rows are never read back.

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>

#include "core/check.h"
#include "core/cpu_features.h"
#include "core/logging.h"
#include "model/cpu_common.h"
#include "model/encoder_backend.h"
#include "model/kernels.h"

namespace embedstream::model {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

class CpuBackend final : public EncoderBackend {
 public:
  CpuBackend(const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
             Precision precision)
      : config_(config),
        weights_(std::move(weights)),
        precision_(precision),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_),
        shapes_(LayerShapes(config)),
        primitives_(engine_, [this](Op op, int64_t rows) {
          return MakePrimitiveDesc(op, rows, &weight_md_[op]);
        }) {
    // Pick each op's weight layout once and reorder every layer's weights to it.
    for (int op = 0; op < kNumOps; ++op) {
      auto pd = MakePrimitiveDesc(static_cast<Op>(op), kReferenceRows, nullptr);
      weight_md_[op] = pd.weights_desc();
      if (op == kFfnIn) {
        kernel_ = std::string("oneDNN matmul ") + PrecisionName(precision_) + " (" +
                  pd.impl_info_str() + "), bias/GELU/residual fused; own LayerNorm, attention";
      }
    }
    for (const BertLayerWeights& L : weights_->layers) {
      LayerMem m;
      m.w[kQkv] = PrepareWeights(kQkv, L.qkv_w);
      m.w[kAttnOut] = PrepareWeights(kAttnOut, L.attn_out_w);
      m.w[kFfnIn] = PrepareWeights(kFfnIn, L.ffn_in_w);
      m.w[kFfnOut] = PrepareWeights(kFfnOut, L.ffn_out_w);
      m.b[kQkv] = PrepareBias(L.qkv_b);
      m.b[kAttnOut] = PrepareBias(L.attn_out_b);
      m.b[kFfnIn] = PrepareBias(L.ffn_in_b);
      m.b[kFfnOut] = PrepareBias(L.ffn_out_b);
      layers_.push_back(std::move(m));
    }
  }

  const char* name() const override { return "cpu-onednn"; }
  Precision precision() const override { return precision_; }
  std::string kernel() const override { return kernel_; }

  void Encode(const PackedBatch& batch, float* out) override {
    const auto T = static_cast<int64_t>(batch.num_tokens());
    if (T == 0) return;
    const int64_t M = RoundRows(T);
    const int64_t H = config_.hidden_size;
    const auto uH = static_cast<size_t>(H);
    const bool bf16 = precision_ == Precision::kBF16;
    Reserve(M);
    prof_.Tokens(static_cast<size_t>(T));
    prof_.Start();
    EmbedTokens(*weights_, batch, x_.data());
    // Rows past T stay zero in the inputs so every GEMM sees finite values.
    std::memset(x_.data() + T * H, 0, static_cast<size_t>((M - T) * H) * sizeof(float));
    prof_.Stop(StageProfile::kEmbed);

    const float eps = config_.layer_norm_eps;
    const BertWeights& w = *weights_;
    kernels::LayerNorm(x_.data(), static_cast<size_t>(T), uH, w.emb_ln_gamma.data(),
                       w.emb_ln_beta.data(), eps, bf16 ? xb_.data() : nullptr);
    prof_.Stop(StageProfile::kLayerNorm);
    const auto heads = static_cast<size_t>(config_.num_heads);
    const auto head_dim = static_cast<size_t>(config_.head_dim());
    for (size_t l = 0; l < layers_.size(); ++l) {
      const BertLayerWeights& L = w.layers[l];
      const LayerMem& m = layers_[l];
      Run(kQkv, M, m, bf16 ? static_cast<void*>(xb_.data()) : x_.data(), qkv_.data());
      prof_.Stop(StageProfile::kGemmQkv);
      kernels::Attention(qkv_.data(), bf16 ? nullptr : ctx_.data(), batch.offsets.data(),
                         batch.num_sequences(), heads, head_dim, bf16 ? ctxb_.data() : nullptr);
      prof_.Stop(StageProfile::kAttention);
      Run(kAttnOut, M, m, bf16 ? static_cast<void*>(ctxb_.data()) : ctx_.data(), x_.data());
      prof_.Stop(StageProfile::kGemmOut);
      kernels::LayerNorm(x_.data(), static_cast<size_t>(T), uH, L.ln1_gamma.data(),
                         L.ln1_beta.data(), eps, bf16 ? xb_.data() : nullptr);
      prof_.Stop(StageProfile::kLayerNorm);
      void* ff = bf16 ? static_cast<void*>(ffb_.data()) : ff_.data();
      Run(kFfnIn, M, m, bf16 ? static_cast<void*>(xb_.data()) : x_.data(), ff);
      prof_.Stop(StageProfile::kGemmFfnIn);
      Run(kFfnOut, M, m, ff, x_.data());
      prof_.Stop(StageProfile::kGemmFfnOut);
      kernels::LayerNorm(x_.data(), static_cast<size_t>(T), uH, L.ln2_gamma.data(),
                         L.ln2_beta.data(), eps, bf16 ? xb_.data() : nullptr);
      prof_.Stop(StageProfile::kLayerNorm);
    }
    kernels::Pool(x_.data(), uH, batch.offsets.data(), batch.num_sequences(), config_.pooling,
                  config_.normalize, out);
    prof_.Stop(StageProfile::kPool);
  }

 private:
  struct LayerMem {
    std::array<dnnl::memory, kNumOps> w;
    std::array<dnnl::memory, kNumOps> b;
  };

  dt ActType() const { return precision_ == Precision::kBF16 ? dt::bf16 : dt::f32; }

  dnnl::matmul::primitive_desc MakePrimitiveDesc(Op op, int64_t rows,
                                                 const dnnl::memory::desc* weights) const {
    const GemmShape s = shapes_[op];
    dnnl::memory::desc src({rows, s.k}, ActType(), tag::ab);
    dnnl::memory::desc wei =
        weights != nullptr ? *weights : dnnl::memory::desc({s.k, s.n}, ActType(), tag::any);
    dnnl::memory::desc bias({1, s.n}, dt::f32, tag::ab);
    // FFN-in output feeds the next GEMM directly: bf16 in bf16 mode.
    const dt dst_type = (op == kFfnIn) ? ActType() : dt::f32;
    dnnl::memory::desc dst({rows, s.n}, dst_type, tag::ab);
    dnnl::post_ops po;
    if (op == kAttnOut || op == kFfnOut) po.append_sum(1.0f);  // residual: dst += result
    if (op == kFfnIn) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias, dst), attr, engine_);
  }

  dnnl::memory PrepareWeights(Op op, const std::vector<float>& w_out_in) {
    const GemmShape s = shapes_[op];
    // PyTorch stores [N, K]; as a [K, N] matrix that is the 'ba' layout.
    dnnl::memory::desc src_md({s.k, s.n}, dt::f32, tag::ba);
    dnnl::memory src(src_md, engine_, const_cast<float*>(w_out_in.data()));
    dnnl::memory dst(weight_md_[op], engine_);
    dnnl::reorder(src, dst).execute(stream_, src, dst);
    stream_.wait();
    return dst;
  }

  dnnl::memory PrepareBias(const std::vector<float>& b) {
    dnnl::memory::desc md({1, static_cast<int64_t>(b.size())}, dt::f32, tag::ab);
    dnnl::memory mem(md, engine_);
    std::memcpy(mem.get_data_handle(), b.data(), b.size() * sizeof(float));
    return mem;
  }

  void Run(Op op, int64_t rows, const LayerMem& m, void* src, void* dst) {
    const dnnl::matmul& prim = primitives_.Get(op, rows);
    const GemmShape s = shapes_[op];
    const dt dst_type = (op == kFfnIn) ? ActType() : dt::f32;
    dnnl::memory src_mem({{rows, s.k}, ActType(), tag::ab}, engine_, src);
    dnnl::memory dst_mem({{rows, s.n}, dst_type, tag::ab}, engine_, dst);
    prim.execute(stream_, {{DNNL_ARG_SRC, src_mem},
                           {DNNL_ARG_WEIGHTS, m.w[op]},
                           {DNNL_ARG_BIAS, m.b[op]},
                           {DNNL_ARG_DST, dst_mem},
                           {DNNL_ARG_SCRATCHPAD, primitives_.Scratchpad()}});
    stream_.wait();
  }

  void Reserve(int64_t rows) {
    const auto r = static_cast<size_t>(rows);
    const auto H = static_cast<size_t>(config_.hidden_size);
    const auto F = static_cast<size_t>(config_.intermediate_size);
    x_.Resize(r * H);
    qkv_.Resize(r * 3 * H);
    if (precision_ == Precision::kBF16) {
      xb_.Resize(r * H);
      ctxb_.Resize(r * H);
      ffb_.Resize(r * F);
    } else {
      ctx_.Resize(r * H);
      ff_.Resize(r * F);
    }
  }

  ModelConfig config_;
  std::shared_ptr<const BertWeights> weights_;
  Precision precision_;
  std::string kernel_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::array<GemmShape, kNumOps> shapes_;
  std::array<dnnl::memory::desc, kNumOps> weight_md_;
  std::vector<LayerMem> layers_;
  MatmulCache primitives_;
  AlignedBuffer<float> x_, qkv_, ctx_, ff_;
  AlignedBuffer<uint16_t> xb_, ctxb_, ffb_;
  StageProfile prof_;
};

}  // namespace

Result<std::unique_ptr<EncoderBackend>> MakeCpuBackend(const ModelConfig& config,
                                                       std::shared_ptr<const BertWeights> weights,
                                                       Precision precision) {
  if (precision == Precision::kBF16) {
    const CpuFeatures& f = GetCpuFeatures();
    if (!f.avx512_bf16 && !f.amx_bf16) {
      return Error(errc::unsupported,
                   "bf16 needs AVX512_BF16 or AMX; this CPU has: " + f.ToString());
    }
  }
  try {
    return std::unique_ptr<EncoderBackend>(
        std::make_unique<CpuBackend>(config, std::move(weights), precision));
  } catch (const dnnl::error& e) {
    return Error(errc::unsupported, std::string("oneDNN could not build the ") +
                                        PrecisionName(precision) + " encoder: " + e.what());
  }
}

}  // namespace embedstream::model
