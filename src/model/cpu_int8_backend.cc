// oneDNN int8 backend: every GEMM of a layer runs u8 x s8 -> s32 in oneDNN;
// our kernels (kernels_int8) quantize activations per token on the fly and
// fuse the dequantization with the bias, GELU (then the next GEMM's
// quantization) and the residual add. Embeddings, LayerNorm, attention
// (softmax included) and pooling stay f32, as do the residual stream and
// every value between two GEMMs.
//
// Weights: symmetric 8-bit, one scale per output channel, quantized once at
// load, after smoothing (SmoothQuant, alpha 0.5): a calibration batch of our
// own sentences measures each GEMM input's column ranges, and each column's
// outliers move into the weights (BERT's outlier columns belong to the
// model, not the text). Activations: asymmetric per token, 8-bit with VNNI
// or AMX. Without VNNI (AVX2, AVX-512 core) the int8 instruction adds two
// u8 x s8 products in 16 bits with saturation (checked at load with the
// largest products, Int8GemmSaturates), so activations keep 7 bits
// (2 * 127 * 127 < 2^15); measured on the parity set and the retrieval
// corpus, that beats 7-bit weights with 8-bit activations.

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "core/cpu_features.h"
#include "model/cpu_common.h"
#include "model/encoder_backend.h"
#include "model/kernels.h"
#include "model/kernels_int8.h"

namespace embedstream::model {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using kernels::Epilogue;
using kernels::RowQuant;

// SmoothQuant's migration strength: 0.5 splits a column's range evenly
// between the activations and the weights (0.3 and 0.7 measured worse on the
// parity set).
constexpr float kSmoothAlpha = 0.5f;
constexpr int kWeightQmax = 127;
// Rows per GEMM call: its s32 output is read back by the epilogue while
// still in cache (measured: 1024 rows ~5% faster than one call for 8192).
constexpr int64_t kBlockRows = 1024;

// Whether oneDNN's u8 x s8 -> s32 matmul on this CPU saturates: without
// VNNI it adds pairs of products in 16 bits (vpmaddubsw). Checked, not
// inferred from the ISA name: the largest products (255 x 127) on the
// encoder's own shape, at a small and a large row count (oneDNN may pick a
// different kernel for each), must sum exactly.
bool Int8GemmSaturates(const dnnl::engine& engine, dnnl::stream& stream, GemmShape s) {
  for (const int64_t rows : {int64_t{8}, kReferenceRows}) {
    dnnl::memory::desc src_md({rows, s.k}, dt::u8, tag::ab);
    dnnl::memory::desc wei_md({s.k, s.n}, dt::s8, tag::ab);
    dnnl::memory::desc dst_md({rows, s.n}, dt::s32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_md, dst_md), engine);
    dnnl::memory src(src_md, engine), wei(wei_md, engine), dst(dst_md, engine);
    std::memset(src.get_data_handle(), 255, src_md.get_size());
    std::memset(wei.get_data_handle(), 127, wei_md.get_size());
    dnnl::matmul(pd).execute(stream,
                             {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    stream.wait();
    const auto* out = static_cast<const int32_t*>(dst.get_data_handle());
    const int64_t exact = s.k * 255 * 127;
    for (int64_t i = 0; i < rows * s.n; ++i) {
      if (out[i] != exact) return true;
    }
  }
  return false;
}

class CpuInt8Backend final : public EncoderBackend {
 public:
  CpuInt8Backend(const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
                 const PackedBatch& calibration)
      : config_(config),
        weights_(std::move(weights)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_),
        shapes_(LayerShapes(config)),
        primitives_(engine_, [this](Op op, int64_t rows) {
          return MakePrimitiveDesc(op, rows, &weight_md_[op]);
        }) {
    vnni_ = !Int8GemmSaturates(engine_, stream_, shapes_[kFfnIn]);
    act_qmax_ = vnni_ ? 255 : 127;
    for (int op = 0; op < kNumOps; ++op) {
      weight_md_[op] =
          MakePrimitiveDesc(static_cast<Op>(op), kReferenceRows, nullptr).weights_desc();
    }
    // Unsmoothed weights first; a calibration batch then measures each GEMM
    // input's column ranges, and the weights are prepared again smoothed.
    layers_.resize(weights_->layers.size());
    for (size_t l = 0; l < layers_.size(); ++l) {
      for (int op = 0; op < kNumOps; ++op) Prepare(l, static_cast<Op>(op), nullptr);
    }
    if (calibration.num_tokens() > 0) Calibrate(calibration);
    kernel_ = std::string("oneDNN matmul u8 x s8 -> s32 (") +
              MakePrimitiveDesc(kFfnIn, kReferenceRows, &weight_md_[kFfnIn]).impl_info_str() +
              "), " +
              (vnni_ ? "8-bit weights per channel, 8-bit activations per token"
                     : "8-bit weights per channel, 7-bit activations per token (this CPU's int8 "
                       "GEMM saturates 8 x 8-bit product pairs: no VNNI)") +
              ", smoothed (" + (calibration.num_tokens() > 0 ? "calibrated" : "not calibrated") +
              "); f32: embeddings, LayerNorm, attention, pooling";
  }

  const char* name() const override { return "cpu-onednn"; }
  Precision precision() const override { return Precision::kInt8; }
  std::string kernel() const override { return kernel_; }

  void Encode(const PackedBatch& batch, float* out) override {
    const auto T = static_cast<int64_t>(batch.num_tokens());
    if (T == 0) return;
    const int64_t M = RoundRows(T);
    const auto uT = static_cast<size_t>(T);
    const auto H = static_cast<size_t>(config_.hidden_size);
    Reserve(M);
    prof_.Tokens(uT);
    prof_.Start();
    EmbedTokens(*weights_, batch, x_.data());
    prof_.Stop(StageProfile::kEmbed);

    const float eps = config_.layer_norm_eps;
    const BertWeights& w = *weights_;
    kernels::LayerNorm(x_.data(), uT, H, w.emb_ln_gamma.data(), w.emb_ln_beta.data(), eps);
    prof_.Stop(StageProfile::kLayerNorm);
    Observe(0, kQkv, x_.data(), uT);
    kernels::QuantizeRows(x_.data(), uT, H, act_qmax_, layers_[0].op[kQkv].inv_smooth_or_null(),
                          xq_.data(), rq_x_.data());
    prof_.Stop(StageProfile::kQuantize);
    const auto heads = static_cast<size_t>(config_.num_heads);
    const auto head_dim = static_cast<size_t>(config_.head_dim());
    for (size_t l = 0; l < layers_.size(); ++l) {
      const BertLayerWeights& L = w.layers[l];
      const LayerMem& m = layers_[l];
      GemmThen(kQkv, M, uT, m, xq_.data(), rq_x_.data(), Epilogue::kStore, qkv_.data());
      kernels::Attention(qkv_.data(), ctx_.data(), batch.offsets.data(), batch.num_sequences(),
                         heads, head_dim);
      prof_.Stop(StageProfile::kAttention);
      Observe(l, kAttnOut, ctx_.data(), uT);
      kernels::QuantizeRows(ctx_.data(), uT, H, act_qmax_, m.op[kAttnOut].inv_smooth_or_null(),
                            ctxq_.data(), rq_ctx_.data());
      prof_.Stop(StageProfile::kQuantize);
      GemmThen(kAttnOut, M, uT, m, ctxq_.data(), rq_ctx_.data(), Epilogue::kAddTo, x_.data());
      kernels::LayerNorm(x_.data(), uT, H, L.ln1_gamma.data(), L.ln1_beta.data(), eps);
      prof_.Stop(StageProfile::kLayerNorm);
      Observe(l, kFfnIn, x_.data(), uT);
      kernels::QuantizeRows(x_.data(), uT, H, act_qmax_, m.op[kFfnIn].inv_smooth_or_null(),
                            xq_.data(), rq_x_.data());
      prof_.Stop(StageProfile::kQuantize);
      // The GELU output in f32 only while calibrating (its column ranges).
      GemmThen(kFfnIn, M, uT, m, xq_.data(), rq_x_.data(), Epilogue::kGeluQuantize,
               calibrating_ ? ff_.data() : nullptr, ffq_.data(), rq_ff_.data(),
               m.op[kFfnOut].inv_smooth_or_null());
      Observe(l, kFfnOut, ff_.data(), uT);
      GemmThen(kFfnOut, M, uT, m, ffq_.data(), rq_ff_.data(), Epilogue::kAddTo, x_.data());
      kernels::LayerNorm(x_.data(), uT, H, L.ln2_gamma.data(), L.ln2_beta.data(), eps);
      prof_.Stop(StageProfile::kLayerNorm);
      if (l + 1 < layers_.size()) {
        Observe(l + 1, kQkv, x_.data(), uT);
        kernels::QuantizeRows(x_.data(), uT, H, act_qmax_,
                              layers_[l + 1].op[kQkv].inv_smooth_or_null(), xq_.data(),
                              rq_x_.data());
        prof_.Stop(StageProfile::kQuantize);
      }
    }
    kernels::Pool(x_.data(), H, batch.offsets.data(), batch.num_sequences(), config_.pooling,
                  config_.normalize, out);
    prof_.Stop(StageProfile::kPool);
  }

 private:
  struct OpMem {
    dnnl::memory w;
    std::vector<float> scale, bias;
    std::vector<int32_t> col_sum;
    std::vector<float> inv_smooth;  // empty: not smoothed
    std::vector<float> absmax;      // while calibrating: the input's column ranges
    const float* inv_smooth_or_null() const {
      return inv_smooth.empty() ? nullptr : inv_smooth.data();
    }
  };
  struct LayerMem {
    std::array<OpMem, kNumOps> op;
  };

  dnnl::matmul::primitive_desc MakePrimitiveDesc(Op op, int64_t rows,
                                                 const dnnl::memory::desc* weights) const {
    const GemmShape s = shapes_[op];
    dnnl::memory::desc src({rows, s.k}, dt::u8, tag::ab);
    dnnl::memory::desc wei =
        weights != nullptr ? *weights : dnnl::memory::desc({s.k, s.n}, dt::s8, tag::any);
    dnnl::memory::desc dst({rows, s.n}, dt::s32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), attr, engine_);
  }

  // Each op's weights [N, K] and bias in a layer.
  static constexpr std::array<std::vector<float> BertLayerWeights::*, kNumOps> kWeights = {
      &BertLayerWeights::qkv_w, &BertLayerWeights::attn_out_w, &BertLayerWeights::ffn_in_w,
      &BertLayerWeights::ffn_out_w};
  static constexpr std::array<std::vector<float> BertLayerWeights::*, kNumOps> kBias = {
      &BertLayerWeights::qkv_b, &BertLayerWeights::attn_out_b, &BertLayerWeights::ffn_in_b,
      &BertLayerWeights::ffn_out_b};

  // Quantizes layer l's weights of `op`, their columns multiplied by
  // `smooth` first when given (the input's columns are divided by it).
  void Prepare(size_t l, Op op, const std::vector<float>* smooth) {
    const GemmShape s = shapes_[op];
    const auto n = static_cast<size_t>(s.n);
    const auto k = static_cast<size_t>(s.k);
    const BertLayerWeights& L = weights_->layers[l];
    std::vector<float> folded;
    const float* w = (L.*kWeights[op]).data();
    OpMem& o = layers_[l].op[op];
    if (smooth != nullptr) {
      folded.assign(w, w + n * k);
      for (size_t j = 0; j < n; ++j) {
        for (size_t i = 0; i < k; ++i) folded[j * k + i] *= (*smooth)[i];
      }
      w = folded.data();
      o.inv_smooth.resize(k);
      for (size_t i = 0; i < k; ++i) o.inv_smooth[i] = 1.0f / (*smooth)[i];
    }
    kernels::QuantizedWeights q = kernels::QuantizeWeights(w, n, k, kWeightQmax);
    // [N, K] row-major is the 'ba' layout of the [K, N] weights matrix.
    dnnl::memory::desc src_md({s.k, s.n}, dt::s8, tag::ba);
    dnnl::memory src(src_md, engine_, q.q.data());
    o.w = dnnl::memory(weight_md_[op], engine_);
    dnnl::reorder(src, o.w).execute(stream_, src, o.w);
    stream_.wait();
    o.scale = std::move(q.scale);
    o.col_sum = std::move(q.col_sum);
    o.bias = L.*kBias[op];
  }

  // While calibrating: the column ranges of layer l's `op` input.
  void Observe(size_t l, Op op, const float* x, size_t rows) {
    if (!calibrating_) return;
    std::vector<float>& m = layers_[l].op[op].absmax;
    const auto k = static_cast<size_t>(shapes_[op].k);
    m.resize(k, 0.0f);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t i = 0; i < k; ++i) m[i] = std::max(m[i], std::fabs(x[r * k + i]));
    }
  }

  void Calibrate(const PackedBatch& batch) {
    calibrating_ = true;
    std::vector<float> out(batch.num_sequences() * static_cast<size_t>(config_.hidden_size));
    Encode(batch, out.data());
    calibrating_ = false;
    for (size_t l = 0; l < layers_.size(); ++l) {
      for (int op = 0; op < kNumOps; ++op) {
        OpMem& o = layers_[l].op[op];
        const GemmShape s = shapes_[op];
        const std::vector<float> smooth = kernels::SmoothingFactors(
            o.absmax, (weights_->layers[l].*kWeights[op]).data(), static_cast<size_t>(s.n),
            static_cast<size_t>(s.k), kSmoothAlpha);
        o.absmax.clear();
        Prepare(l, static_cast<Op>(op), &smooth);
      }
    }
  }

  // For each block of kBlockRows rows: acc_ = src rows (u8) x the op's
  // weights (s8), then the epilogue on the block's rows below `tokens`
  // while acc_ is still in cache (out, q_out, rq_out: whole-matrix
  // pointers, offset here).
  void GemmThen(Op op, int64_t rows, size_t tokens, const LayerMem& m, const uint8_t* src,
                const RowQuant* rq, Epilogue e, float* out, uint8_t* q_out = nullptr,
                RowQuant* rq_out = nullptr, const float* inv_smooth_out = nullptr) {
    const GemmShape s = shapes_[op];
    const auto k = static_cast<size_t>(s.k);
    const auto n = static_cast<size_t>(s.n);
    const OpMem& o = m.op[op];
    static constexpr StageProfile::Stage kStage[kNumOps] = {
        StageProfile::kGemmQkv, StageProfile::kGemmOut, StageProfile::kGemmFfnIn,
        StageProfile::kGemmFfnOut};
    for (int64_t r0 = 0; r0 < rows && static_cast<size_t>(r0) < tokens; r0 += kBlockRows) {
      const int64_t block = std::min(kBlockRows, rows - r0);
      const auto ur0 = static_cast<size_t>(r0);
      const dnnl::matmul& prim = primitives_.Get(op, block);
      dnnl::memory src_mem({{block, s.k}, dt::u8, tag::ab}, engine_,
                           const_cast<uint8_t*>(src + ur0 * k));
      dnnl::memory dst_mem({{block, s.n}, dt::s32, tag::ab}, engine_, acc_.data());
      prim.execute(stream_, {{DNNL_ARG_SRC, src_mem},
                             {DNNL_ARG_WEIGHTS, o.w},
                             {DNNL_ARG_DST, dst_mem},
                             {DNNL_ARG_SCRATCHPAD, primitives_.Scratchpad()}});
      stream_.wait();
      prof_.Stop(kStage[op]);
      kernels::DequantArgs a;
      a.acc = acc_.data();
      a.rows = std::min(static_cast<size_t>(block), tokens - ur0);
      a.cols = n;
      a.rq = rq + ur0;
      a.scale = o.scale.data();
      a.col_sum = o.col_sum.data();
      a.bias = o.bias.data();
      a.epilogue = e;
      a.out = out != nullptr ? out + ur0 * n : nullptr;
      a.q_out = q_out != nullptr ? q_out + ur0 * n : nullptr;
      a.rq_out = rq_out != nullptr ? rq_out + ur0 : nullptr;
      a.qmax_out = act_qmax_;
      a.inv_smooth_out = inv_smooth_out;
      kernels::Dequantize(a);
      prof_.Stop(StageProfile::kEpilogue);
    }
  }

  void Reserve(int64_t rows) {
    const auto r = static_cast<size_t>(rows);
    const auto H = static_cast<size_t>(config_.hidden_size);
    const auto F = static_cast<size_t>(config_.intermediate_size);
    x_.Resize(r * H);
    qkv_.Resize(r * 3 * H);
    ctx_.Resize(r * H);
    if (calibrating_) ff_.Resize(r * F);  // the GELU output in f32: calibration only
    acc_.Resize(static_cast<size_t>(std::min(rows, kBlockRows)) * std::max(3 * H, F));
    xq_.Resize(r * H);
    ctxq_.Resize(r * H);
    ffq_.Resize(r * F);
    rq_x_.resize(r);
    rq_ctx_.resize(r);
    rq_ff_.resize(r);
  }

  ModelConfig config_;
  std::shared_ptr<const BertWeights> weights_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  bool vnni_ = false;
  bool calibrating_ = false;
  int act_qmax_ = 255;  // activations: [0, act_qmax_] (see the top of the file)
  std::string kernel_;
  std::array<GemmShape, kNumOps> shapes_;
  std::array<dnnl::memory::desc, kNumOps> weight_md_;
  std::vector<LayerMem> layers_;
  MatmulCache primitives_;
  AlignedBuffer<float> x_, qkv_, ctx_, ff_;
  AlignedBuffer<int32_t> acc_;
  AlignedBuffer<uint8_t> xq_, ctxq_, ffq_;
  std::vector<RowQuant> rq_x_, rq_ctx_, rq_ff_;
  StageProfile prof_;
};

}  // namespace

Result<std::unique_ptr<EncoderBackend>> MakeCpuInt8Backend(
    const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
    const PackedBatch& calibration) {
  try {
    return std::unique_ptr<EncoderBackend>(
        std::make_unique<CpuInt8Backend>(config, std::move(weights), calibration));
  } catch (const dnnl::error& e) {
    return Error(errc::unsupported,
                 std::string("oneDNN could not build the int8 encoder: ") + e.what());
  }
}

}  // namespace embedstream::model
