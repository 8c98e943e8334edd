#include "model/sentence_encoder.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/cpu_features.h"
#include "core/logging.h"
#include "model/batch_planner.h"
#include "model/bert_weights.h"

namespace embedstream::model {

Result<std::unique_ptr<SentenceEncoder>> SentenceEncoder::Load(
    const std::filesystem::path& model_dir, const EncoderOptions& options) {
  auto log = GetLogger("model");
  auto config = LoadModelConfig(model_dir, options.model_name);
  if (!config) return config.error();
  if (options.max_seq_length != 0) {
    if (options.max_seq_length < 2 ||
        options.max_seq_length > static_cast<size_t>(config->max_position_embeddings)) {
      return Error(errc::invalid_argument,
                   "max_seq_length " + std::to_string(options.max_seq_length) +
                       " must be within [2, " + std::to_string(config->max_position_embeddings) +
                       "]");
    }
    config->max_seq_length = static_cast<int64_t>(options.max_seq_length);
  }
  auto tokenizer = text::BertTokenizer::Load(model_dir);
  if (!tokenizer) return tokenizer.error();
  if (tokenizer->vocab_size() > static_cast<size_t>(config->vocab_size)) {
    return Error(errc::corrupt, "tokenizer vocabulary (" + std::to_string(tokenizer->vocab_size()) +
                                    ") is larger than the model's vocab_size (" +
                                    std::to_string(config->vocab_size) + ")");
  }
  auto weights = LoadBertWeights(model_dir, *config);
  if (!weights) return weights.error();
  auto shared = std::make_shared<const BertWeights>(std::move(*weights));

  const int threads = options.threads > 0 ? options.threads : omp_get_num_procs();
  omp_set_num_threads(threads);

  EncoderInfo info;
  info.model_name = config->name;
  info.model_dir = model_dir;
  info.requested_precision = options.precision;
  info.threads = threads;
  info.max_seq_length = static_cast<size_t>(config->max_seq_length);
  info.batch_tokens_max = std::max(options.batch_tokens_max, info.max_seq_length);
  info.cpu_features = GetCpuFeatures().ToString();

  std::unique_ptr<EncoderBackend> backend;
  if (options.backend == BackendKind::kReference) {
    backend = MakeReferenceBackend(*config, shared);
  } else {
    auto cpu = MakeCpuBackend(*config, shared, options.precision);
    if (!cpu && options.precision == Precision::kBF16 && options.allow_precision_fallback) {
      log->warn("bf16 not available ({}); falling back to f32", cpu.error().message);
      cpu = MakeCpuBackend(*config, shared, Precision::kF32);
    }
    if (!cpu) return cpu.error();
    backend = std::move(*cpu);
  }
  info.backend = backend->name();
  info.precision = backend->precision();
  log->info(
      "model {} loaded from {}: {} layers, hidden {}, {} heads, max_seq_length {}, "
      "backend {} {}, {} threads",
      info.model_name, model_dir.string(), config->num_layers, config->hidden_size,
      config->num_heads, config->max_seq_length, info.backend, PrecisionName(info.precision),
      threads);
  return std::unique_ptr<SentenceEncoder>(new SentenceEncoder(
      std::move(*config), std::move(*tokenizer), std::move(backend), std::move(info)));
}

SentenceEncoder::SentenceEncoder(ModelConfig config, text::BertTokenizer tokenizer,
                                 std::unique_ptr<EncoderBackend> backend, EncoderInfo info)
    : config_(std::move(config)),
      tokenizer_(std::move(tokenizer)),
      backend_(std::move(backend)),
      info_(std::move(info)) {}

std::vector<int32_t> SentenceEncoder::Tokenize(std::string_view text) const {
  return tokenizer_.Encode(text, static_cast<size_t>(config_.max_seq_length));
}

void SentenceEncoder::Embed(std::span<const std::string_view> texts, float* out) {
  std::vector<std::vector<int32_t>> seqs(texts.size());
  const auto n = static_cast<int64_t>(texts.size());
#pragma omp parallel for schedule(dynamic, 16) if (n > 64)
  for (int64_t i = 0; i < n; ++i) {
    seqs[static_cast<size_t>(i)] = Tokenize(texts[static_cast<size_t>(i)]);
  }
  EmbedTokens(seqs, out);
}

void SentenceEncoder::EmbedTokens(std::span<const std::vector<int32_t>> sequences, float* out) {
  std::vector<size_t> lengths(sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    ES_CHECK(sequences[i].size() <= static_cast<size_t>(config_.max_seq_length));
    lengths[i] = sequences[i].size();
  }
  const size_t D = dim();
  std::lock_guard<FifoMutex> lock(mu_);
  for (const auto& plan : PlanBatches(lengths, info_.batch_tokens_max)) {
    batch_.Clear();
    for (size_t i : plan) batch_.Add(sequences[i]);
    batch_out_.resize(plan.size() * D);
    backend_->Encode(batch_, batch_out_.data());
    for (size_t k = 0; k < plan.size(); ++k) {
      std::memcpy(out + plan[k] * D, batch_out_.data() + k * D, D * sizeof(float));
    }
  }
}

void SentenceEncoder::EmbedBatch(const PackedBatch& batch, float* out) {
  std::lock_guard<FifoMutex> lock(mu_);
  backend_->Encode(batch, out);
}

}  // namespace embedstream::model
