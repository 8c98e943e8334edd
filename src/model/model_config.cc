#include "model/model_config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/file_util.h"

namespace embedstream::model {
namespace {

Result<nlohmann::json> ReadJson(const std::filesystem::path& path) {
  auto text = ReadFile(path);
  if (!text) return text.error();
  try {
    return nlohmann::json::parse(*text);
  } catch (const std::exception& e) {
    return Error(errc::corrupt, path.string() + ": not valid JSON: " + e.what());
  }
}

Result<int64_t> PositiveInt(const nlohmann::json& j, const char* key,
                            const std::filesystem::path& path) {
  if (!j.contains(key)) return Error(errc::corrupt, path.string() + ": missing '" + key + "'");
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    return Error(errc::corrupt, path.string() + ": '" + key + "' must be a positive integer");
  }
  return v.get<int64_t>();
}

}  // namespace

const char* PoolingModeName(PoolingMode m) {
  switch (m) {
    case PoolingMode::kMean:
      return "mean";
    case PoolingMode::kCls:
      return "cls";
    case PoolingMode::kMax:
      return "max";
    case PoolingMode::kMeanSqrtLen:
      return "mean_sqrt_len";
  }
  return "?";
}

Result<ModelConfig> LoadModelConfig(const std::filesystem::path& dir,
                                    const std::string& name_override) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Error(errc::not_found, dir.string() +
                                      ": model directory not found (run scripts/fetch_model.sh, or "
                                      "set --model-dir / EMBEDSTREAM_MODEL_DIR)");
  }
  ModelConfig c;
  const auto config_path = dir / "config.json";
  auto cfg = ReadJson(config_path);
  if (!cfg) return cfg.error();
  const auto& j = *cfg;
  if (!j.is_object()) return Error(errc::corrupt, config_path.string() + ": not an object");
  c.model_type = j.value("model_type", std::string("bert"));
  static const char* kSupported[] = {"bert"};
  if (std::find(std::begin(kSupported), std::end(kSupported), c.model_type) ==
      std::end(kSupported)) {
    return Error(errc::unsupported, config_path.string() + ": model_type '" + c.model_type +
                                        "' is not a BERT-family model we support");
  }
  const std::string act = j.value("hidden_act", std::string("gelu"));
  if (act != "gelu") {
    return Error(errc::unsupported,
                 config_path.string() + ": hidden_act '" + act + "' (only exact erf 'gelu')");
  }
  const std::string pos = j.value("position_embedding_type", std::string("absolute"));
  if (pos != "absolute") {
    return Error(errc::unsupported,
                 config_path.string() + ": position_embedding_type '" + pos + "'");
  }
  struct Field {
    const char* key;
    int64_t* dst;
  } fields[] = {{"vocab_size", &c.vocab_size},
                {"hidden_size", &c.hidden_size},
                {"num_hidden_layers", &c.num_layers},
                {"num_attention_heads", &c.num_heads},
                {"intermediate_size", &c.intermediate_size},
                {"max_position_embeddings", &c.max_position_embeddings}};
  for (const auto& f : fields) {
    auto v = PositiveInt(j, f.key, config_path);
    if (!v) return v.error();
    *f.dst = *v;
  }
  c.type_vocab_size = j.value("type_vocab_size", int64_t{2});
  if (c.type_vocab_size <= 0) {
    return Error(errc::corrupt, config_path.string() + ": type_vocab_size must be positive");
  }
  if (j.contains("layer_norm_eps") && j["layer_norm_eps"].is_number()) {
    c.layer_norm_eps = j["layer_norm_eps"].get<float>();
  }
  if (c.hidden_size % c.num_heads != 0) {
    return Error(errc::corrupt,
                 config_path.string() + ": hidden_size " + std::to_string(c.hidden_size) +
                     " is not divisible by num_attention_heads " + std::to_string(c.num_heads));
  }

  // sentence_bert_config.json: max_seq_length (optional; default 512 capped).
  c.max_seq_length = c.max_position_embeddings;
  const auto sbert_path = dir / "sentence_bert_config.json";
  if (std::filesystem::exists(sbert_path, ec)) {
    auto sb = ReadJson(sbert_path);
    if (!sb) return sb.error();
    if (sb->contains("max_seq_length") && (*sb)["max_seq_length"].is_number_integer()) {
      c.max_seq_length = (*sb)["max_seq_length"].get<int64_t>();
    }
  }
  c.max_seq_length = std::min(c.max_seq_length, c.max_position_embeddings);
  if (c.max_seq_length < 2) {
    return Error(errc::corrupt, sbert_path.string() + ": max_seq_length must be at least 2");
  }

  // modules.json: the pooling module's folder and whether Normalize follows.
  std::filesystem::path pooling_dir = dir / "1_Pooling";
  const auto modules_path = dir / "modules.json";
  if (std::filesystem::exists(modules_path, ec)) {
    auto mods = ReadJson(modules_path);
    if (!mods) return mods.error();
    if (!mods->is_array()) return Error(errc::corrupt, modules_path.string() + ": not an array");
    for (const auto& m : *mods) {
      const std::string type = m.value("type", std::string());
      if (type == "sentence_transformers.models.Pooling") {
        pooling_dir = dir / m.value("path", std::string("1_Pooling"));
      } else if (type == "sentence_transformers.models.Normalize") {
        c.normalize = true;
      } else if (type != "sentence_transformers.models.Transformer") {
        return Error(errc::unsupported, modules_path.string() + ": module type '" + type + "'");
      }
    }
  }
  const auto pool_path = pooling_dir / "config.json";
  if (std::filesystem::exists(pool_path, ec)) {
    auto pj = ReadJson(pool_path);
    if (!pj) return pj.error();
    int modes = 0;
    if (pj->value("pooling_mode_mean_tokens", false)) {
      c.pooling = PoolingMode::kMean;
      ++modes;
    }
    if (pj->value("pooling_mode_cls_token", false)) {
      c.pooling = PoolingMode::kCls;
      ++modes;
    }
    if (pj->value("pooling_mode_max_tokens", false)) {
      c.pooling = PoolingMode::kMax;
      ++modes;
    }
    if (pj->value("pooling_mode_mean_sqrt_len_tokens", false)) {
      c.pooling = PoolingMode::kMeanSqrtLen;
      ++modes;
    }
    if (modes != 1) {
      return Error(errc::unsupported,
                   pool_path.string() + ": exactly one pooling mode must be enabled (found " +
                       std::to_string(modes) + "; concatenated modes are not supported)");
    }
    if (pj->contains("word_embedding_dimension") &&
        (*pj)["word_embedding_dimension"].get<int64_t>() != c.hidden_size) {
      return Error(errc::corrupt, pool_path.string() +
                                      ": word_embedding_dimension differs from "
                                      "config.json hidden_size");
    }
  }

  if (!name_override.empty()) {
    c.name = name_override;
  } else if (auto fetched = ReadJson(dir / ".embedstream-fetch.json");
             fetched && fetched->is_object() && (*fetched)["model"].is_string()) {
    c.name = (*fetched)["model"].get<std::string>();
  } else {
    auto canonical = std::filesystem::weakly_canonical(dir, ec);
    c.name = (ec ? dir : canonical).filename().string();
  }
  return c;
}

}  // namespace embedstream::model
