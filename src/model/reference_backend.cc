// The plain forward pass: the definition every fast path is held to.

#include <vector>

#include "model/encoder_backend.h"
#include "model/kernels.h"

namespace embedstream::model {
namespace {

class ReferenceBackend final : public EncoderBackend {
 public:
  ReferenceBackend(const ModelConfig& config, std::shared_ptr<const BertWeights> weights)
      : config_(config), weights_(std::move(weights)) {}

  const char* name() const override { return "reference"; }
  Precision precision() const override { return Precision::kF32; }

  void Encode(const PackedBatch& batch, float* out) override {
    const auto H = static_cast<size_t>(config_.hidden_size);
    const auto F = static_cast<size_t>(config_.intermediate_size);
    const size_t T = batch.num_tokens();
    const BertWeights& w = *weights_;
    std::vector<float> x(T * H), qkv(T * 3 * H), ctx(T * H), tmp(T * H), ff(T * F);
    for (size_t s = 0; s < batch.num_sequences(); ++s) {
      for (size_t p = 0; p < batch.length(s); ++p) {
        const size_t t = static_cast<size_t>(batch.offsets[s]) + p;
        const auto id = static_cast<size_t>(batch.token_ids[t]);
        for (size_t c = 0; c < H; ++c) {
          x[t * H + c] =
              w.word_embeddings[id * H + c] + w.position_embeddings[p * H + c] + w.token_type0[c];
        }
      }
    }
    const float eps = config_.layer_norm_eps;
    kernels::LayerNormRef(x.data(), T, H, w.emb_ln_gamma.data(), w.emb_ln_beta.data(), eps);
    for (const BertLayerWeights& L : w.layers) {
      kernels::LinearRef(x.data(), T, H, L.qkv_w.data(), L.qkv_b.data(), 3 * H, qkv.data());
      kernels::AttentionRef(qkv.data(), ctx.data(), batch.offsets.data(), batch.num_sequences(),
                            static_cast<size_t>(config_.num_heads),
                            static_cast<size_t>(config_.head_dim()));
      kernels::LinearRef(ctx.data(), T, H, L.attn_out_w.data(), L.attn_out_b.data(), H, tmp.data());
      for (size_t i = 0; i < T * H; ++i) x[i] += tmp[i];
      kernels::LayerNormRef(x.data(), T, H, L.ln1_gamma.data(), L.ln1_beta.data(), eps);
      kernels::LinearRef(x.data(), T, H, L.ffn_in_w.data(), L.ffn_in_b.data(), F, ff.data());
      kernels::GeluErfRef(ff.data(), T * F);
      kernels::LinearRef(ff.data(), T, F, L.ffn_out_w.data(), L.ffn_out_b.data(), H, tmp.data());
      for (size_t i = 0; i < T * H; ++i) x[i] += tmp[i];
      kernels::LayerNormRef(x.data(), T, H, L.ln2_gamma.data(), L.ln2_beta.data(), eps);
    }
    kernels::PoolRef(x.data(), H, batch.offsets.data(), batch.num_sequences(), config_.pooling,
                     config_.normalize, out);
  }

 private:
  ModelConfig config_;
  std::shared_ptr<const BertWeights> weights_;
};

}  // namespace

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kF32:
      return "f32";
    case Precision::kBF16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
    case Precision::kAuto:
      return "auto";
  }
  return "?";
}

Result<Precision> ParsePrecision(const std::string& s) {
  if (s == "f32" || s == "fp32" || s == "float32") return Precision::kF32;
  if (s == "bf16" || s == "bfloat16") return Precision::kBF16;
  if (s == "int8" || s == "i8") return Precision::kInt8;
  if (s == "auto") return Precision::kAuto;
  return Error(errc::invalid_argument, "precision '" + s + "' (expected f32, bf16, int8 or auto)");
}

std::unique_ptr<EncoderBackend> MakeReferenceBackend(const ModelConfig& config,
                                                     std::shared_ptr<const BertWeights> weights) {
  return std::make_unique<ReferenceBackend>(config, std::move(weights));
}

}  // namespace embedstream::model
