#pragma once
// BertWeights: the f32 parameters of a BERT encoder, in PyTorch's layout
// (Linear weights are [out, in], row-major), with Q, K and V fused into one
// [3*hidden, hidden] projection. Loaded once, then read-only and shared by
// every backend.

#include <filesystem>
#include <vector>

#include "core/result.h"
#include "model/model_config.h"

namespace embedstream::model {

struct BertLayerWeights {
  std::vector<float> qkv_w, qkv_b;            // [3H, H], [3H]  (rows: Q, then K, then V)
  std::vector<float> attn_out_w, attn_out_b;  // [H, H], [H]
  std::vector<float> ln1_gamma, ln1_beta;     // [H]
  std::vector<float> ffn_in_w, ffn_in_b;      // [F, H], [F]
  std::vector<float> ffn_out_w, ffn_out_b;    // [H, F], [H]
  std::vector<float> ln2_gamma, ln2_beta;     // [H]
};

struct BertWeights {
  std::vector<float> word_embeddings;      // [V, H]
  std::vector<float> position_embeddings;  // [P, H]
  std::vector<float> token_type0;          // [H]: token type 0's row
  std::vector<float> emb_ln_gamma, emb_ln_beta;
  std::vector<BertLayerWeights> layers;
};

// Loads <dir>/model.safetensors (tensor names with or without a "bert."
// prefix) and checks every shape against `config`.
Result<BertWeights> LoadBertWeights(const std::filesystem::path& dir, const ModelConfig& config);

}  // namespace embedstream::model
