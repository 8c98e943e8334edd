#pragma once
// ModelConfig: everything the encoder needs to know about a model dir in the
// Hugging Face sentence-transformers layout, read from its files (never from
// constants): config.json, sentence_bert_config.json, modules.json and the
// pooling module's config.json. Plain data; safe to copy and share.

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/result.h"

namespace embedstream::model {

enum class PoolingMode { kMean, kCls, kMax, kMeanSqrtLen };
const char* PoolingModeName(PoolingMode m);

struct ModelConfig {
  std::string name;        // e.g. "sentence-transformers/all-MiniLM-L6-v2"
  std::string model_type;  // "bert"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  float layer_norm_eps = 1e-12f;
  int64_t max_seq_length = 0;  // sentence_bert_config.json, capped by positions
  PoolingMode pooling = PoolingMode::kMean;
  bool normalize = false;  // a sentence_transformers.models.Normalize module

  int64_t head_dim() const { return hidden_size / num_heads; }
};

// Reads and validates the config files of `dir`. `name_override` (may be
// empty) wins; else the "model" of <dir>/.embedstream-fetch.json (written by
// scripts/fetch_model.sh), else the directory name.
Result<ModelConfig> LoadModelConfig(const std::filesystem::path& dir,
                                    const std::string& name_override = "");

}  // namespace embedstream::model
