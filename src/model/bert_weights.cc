#include "model/bert_weights.h"

#include "model/safetensors.h"

namespace embedstream::model {

Result<BertWeights> LoadBertWeights(const std::filesystem::path& dir, const ModelConfig& config) {
  const auto path = dir / "model.safetensors";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (std::filesystem::exists(dir / "pytorch_model.bin", ec)) {
      return Error(errc::unsupported, path.string() +
                                          " missing; only pytorch_model.bin is present — convert "
                                          "it to safetensors (pickle files are not loaded)");
    }
    return Error(errc::not_found, path.string() + ": no such file");
  }
  auto st = SafeTensorsFile::Open(path);
  if (!st) return st.error();

  std::string prefix;
  for (const char* p : {"", "bert.", "model."}) {
    if (st->Has(std::string(p) + "embeddings.word_embeddings.weight")) {
      prefix = p;
      break;
    }
    if (std::string(p) == "model.") {
      return Error(errc::corrupt,
                   path.string() + ": no embeddings.word_embeddings.weight (not a BERT model?)");
    }
  }

  const int64_t H = config.hidden_size;
  const int64_t F = config.intermediate_size;
  Error first_error;
  bool failed = false;
  auto read = [&](const std::string& name, std::vector<int64_t> shape) -> std::vector<float> {
    if (failed) return {};
    auto t = st->ReadF32(prefix + name, shape);
    if (!t) {
      failed = true;
      first_error = t.error();
      return {};
    }
    return std::move(*t);
  };

  BertWeights w;
  w.word_embeddings = read("embeddings.word_embeddings.weight", {config.vocab_size, H});
  w.position_embeddings =
      read("embeddings.position_embeddings.weight", {config.max_position_embeddings, H});
  auto types = read("embeddings.token_type_embeddings.weight", {config.type_vocab_size, H});
  if (!failed) w.token_type0.assign(types.begin(), types.begin() + H);
  w.emb_ln_gamma = read("embeddings.LayerNorm.weight", {H});
  w.emb_ln_beta = read("embeddings.LayerNorm.bias", {H});
  w.layers.resize(static_cast<size_t>(config.num_layers));
  for (int64_t l = 0; l < config.num_layers && !failed; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    auto& L = w.layers[static_cast<size_t>(l)];
    L.qkv_w.reserve(static_cast<size_t>(3 * H * H));
    L.qkv_b.reserve(static_cast<size_t>(3 * H));
    for (const char* part : {"query", "key", "value"}) {
      auto wt = read(p + "attention.self." + part + ".weight", {H, H});
      auto b = read(p + "attention.self." + part + ".bias", {H});
      L.qkv_w.insert(L.qkv_w.end(), wt.begin(), wt.end());
      L.qkv_b.insert(L.qkv_b.end(), b.begin(), b.end());
    }
    L.attn_out_w = read(p + "attention.output.dense.weight", {H, H});
    L.attn_out_b = read(p + "attention.output.dense.bias", {H});
    L.ln1_gamma = read(p + "attention.output.LayerNorm.weight", {H});
    L.ln1_beta = read(p + "attention.output.LayerNorm.bias", {H});
    L.ffn_in_w = read(p + "intermediate.dense.weight", {F, H});
    L.ffn_in_b = read(p + "intermediate.dense.bias", {F});
    L.ffn_out_w = read(p + "output.dense.weight", {H, F});
    L.ffn_out_b = read(p + "output.dense.bias", {H});
    L.ln2_gamma = read(p + "output.LayerNorm.weight", {H});
    L.ln2_beta = read(p + "output.LayerNorm.bias", {H});
  }
  if (failed) return first_error;
  return w;
}

}  // namespace embedstream::model
