#pragma once
// SentenceEncoder: text in, sentence vectors out. Owns the tokenizer, the
// weights and one compute backend; tokenises, sorts by length, packs batches
// by a token budget and runs them. Thread-safe: Embed may be called from any
// thread; calls are serialised (the backend already uses every core).
//
// Example:
//   auto enc = SentenceEncoder::Load("models/all-MiniLM-L6-v2", {});
//   std::vector<std::string_view> texts = {"hello", "world"};
//   std::vector<float> out(texts.size() * (*enc)->dim());
//   (*enc)->Embed(texts, out.data());

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/fifo_mutex.h"
#include "core/result.h"
#include "model/encoder_backend.h"
#include "model/model_config.h"
#include "text/bert_tokenizer.h"

namespace embedstream::model {

enum class BackendKind { kAuto, kCpu, kReference };

struct EncoderOptions {
  Precision precision = Precision::kF32;
  BackendKind backend = BackendKind::kAuto;
  int threads = 0;                       // 0: every core this process may use
  size_t batch_tokens_max = 8192;        // token budget of one forward pass
  size_t max_seq_length = 0;             // 0: the model's (sentence_bert_config.json)
  std::string model_name;                // empty: from the model dir
  bool allow_precision_fallback = true;  // bf16 unsupported -> f32 with a warning
};

struct EncoderInfo {
  std::string model_name;
  std::filesystem::path model_dir;
  std::string backend;
  Precision precision = Precision::kF32;
  Precision requested_precision = Precision::kF32;
  std::string kernel;       // the backend's compute kernel in words
  std::string auto_choice;  // precision auto: what was measured and chosen
  int threads = 0;
  size_t max_seq_length = 0;
  size_t batch_tokens_max = 0;
  std::string cpu_features;
};

class SentenceEncoder {
 public:
  static Result<std::unique_ptr<SentenceEncoder>> Load(const std::filesystem::path& model_dir,
                                                       const EncoderOptions& options);

  size_t dim() const { return static_cast<size_t>(config_.hidden_size); }
  const ModelConfig& config() const { return config_; }
  const EncoderInfo& info() const { return info_; }
  const text::BertTokenizer& tokenizer() const { return tokenizer_; }

  // Token ids with [CLS]/[SEP], truncated to max_seq_length.
  std::vector<int32_t> Tokenize(std::string_view text) const;

  // out: texts.size() * dim() floats; row i is the vector of texts[i].
  void Embed(std::span<const std::string_view> texts, float* out);
  // Same from token ids (each already with specials, at most max_seq_length).
  void EmbedTokens(std::span<const std::vector<int32_t>> sequences, float* out);
  // Runs exactly one packed batch: no reordering, no splitting (tests use it
  // to show that batch composition does not change a vector).
  void EmbedBatch(const PackedBatch& batch, float* out);

 private:
  // backend_->Encode, timed into embedstream_encoder_forward_seconds; mu_ held.
  void TimedEncode(const PackedBatch& batch, float* out);
  // precision auto: f32 and int8 timed on a probe batch; the faster by the
  // margin wins (see sentence_encoder.cc). `why` says what was measured.
  static Result<std::unique_ptr<EncoderBackend>> ChooseFastest(
      const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
      const PackedBatch& calibration, std::string* why);

  SentenceEncoder(ModelConfig config, text::BertTokenizer tokenizer,
                  std::unique_ptr<EncoderBackend> backend, EncoderInfo info);

  ModelConfig config_;
  text::BertTokenizer tokenizer_;
  std::unique_ptr<EncoderBackend> backend_;
  EncoderInfo info_;
  FifoMutex mu_;                  // in call order: a search's query is not starved by a long batch
  PackedBatch batch_;             // guarded by mu_
  std::vector<float> batch_out_;  // guarded by mu_
};

}  // namespace embedstream::model
