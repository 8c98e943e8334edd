#include "model/sentence_encoder.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/check.h"
#include "core/cpu_features.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "model/batch_planner.h"
#include "model/bert_weights.h"

namespace embedstream::model {
namespace {

// Seconds per pass of `backend` over a probe batch (best of a few passes).
double TimeProbe(EncoderBackend& backend, const PackedBatch& probe, size_t dim) {
  std::vector<float> out(probe.num_sequences() * dim);
  backend.Encode(probe, out.data());  // warm-up: primitives, caches
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    backend.Encode(probe, out.data());
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Text the int8 encoder calibrates its smoothing on (cpu_int8_backend.cc):
// BERT's outlier columns are the model's, the same for any text, so a few
// varied sentences of our own find them.
constexpr const char* kCalibrationTexts[] = {
    "The order shipped on Tuesday, two days later than the customer was promised.",
    "How do I reset my password if I no longer have access to the old e-mail address?",
    "Kafka keeps every partition in order; a consumer group splits the partitions among its "
    "members, and each commits the offsets it has processed.",
    "Fresh basil, 3 tomatoes, olive oil (extra virgin) and a pinch of salt: that's all!",
    "ERROR 2024-03-01 12:00:07 connection refused by 10.0.0.12:5432 after 3 retries",
    "She said, \"I'll be there at 7 p.m.\" -- but nobody believed her.",
    "Quarterly revenue rose 12% to $4.2 billion, beating analysts' estimates.",
    "def add(a, b): return a + b  # adds two numbers",
    "The museum opens at nine; tickets cost eight euros for adults and nothing for children.",
    "Wireless noise-cancelling headphones, black, 30-hour battery, USB-C charging.",
    "Patients with a history of asthma should consult a doctor before taking this medicine.",
    "I loved it. Would buy again!!! 5 stars",
};

PackedBatch CalibrationBatch(const text::BertTokenizer& tokenizer, size_t max_seq_length) {
  PackedBatch batch;
  for (const char* text : kCalibrationTexts) batch.Add(tokenizer.Encode(text, max_seq_length));
  return batch;
}

}  // namespace

// kInt8 measures as accurate as the tests demand on every CPU (tests/unit
// model int8 parity, the retrieval agreement test); auto takes it where it
// is at least kAutoMinSpeedup times f32 on this CPU, timed at load on a probe
// batch of 4 x 128 tokens.
constexpr double kAutoMinSpeedup = 1.3;

Result<std::unique_ptr<EncoderBackend>> SentenceEncoder::ChooseFastest(
    const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
    const PackedBatch& calibration, std::string* why) {
  auto f32 = MakeCpuBackend(config, weights, Precision::kF32);
  if (!f32) return f32.error();
  auto int8 = MakeCpuInt8Backend(config, weights, calibration);
  if (!int8) {
    *why = "f32 (int8 unavailable: " + int8.error().message + ")";
    return f32;
  }
  PackedBatch probe;
  const auto len = static_cast<size_t>(std::min<int64_t>(128, config.max_seq_length));
  std::vector<int32_t> ids(len);
  for (size_t i = 0; i < len; ++i) ids[i] = static_cast<int32_t>(1000 + (i * 37) % 20000);
  ids.front() = 101;
  ids.back() = 102;
  for (int s = 0; s < 4; ++s) probe.Add(ids);
  const auto dim = static_cast<size_t>(config.hidden_size);
  const double t_f32 = TimeProbe(**f32, probe, dim);
  const double t_int8 = TimeProbe(**int8, probe, dim);
  const double speedup = t_f32 / t_int8;
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "int8 ran %.2fx f32 on a %zu-token probe (needs %.1fx): ", speedup,
                probe.num_tokens(), kAutoMinSpeedup);
  if (speedup >= kAutoMinSpeedup) {
    *why = std::string(buf) + "int8";
    return int8;
  }
  *why = std::string(buf) + "f32";
  return f32;
}

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
    if (options.precision != Precision::kF32) {
      return Error(errc::invalid_argument,
                   std::string("the reference backend computes in f32 only, not ") +
                       PrecisionName(options.precision));
    }
    backend = MakeReferenceBackend(*config, shared);
  } else if (options.precision == Precision::kAuto) {
    auto chosen = ChooseFastest(*config, shared, CalibrationBatch(*tokenizer, info.max_seq_length),
                                &info.auto_choice);
    if (!chosen) return chosen.error();
    backend = std::move(*chosen);
  } else if (options.precision == Precision::kInt8) {
    auto cpu =
        MakeCpuInt8Backend(*config, shared, CalibrationBatch(*tokenizer, info.max_seq_length));
    if (!cpu) return cpu.error();
    backend = std::move(*cpu);
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
  info.kernel = backend->kernel();
  log->info(
      "model {} loaded from {}: {} layers, hidden {}, {} heads, max_seq_length {}, "
      "backend {} {} (requested {}), {} threads",
      info.model_name, model_dir.string(), config->num_layers, config->hidden_size,
      config->num_heads, config->max_seq_length, info.backend, PrecisionName(info.precision),
      PrecisionName(info.requested_precision), threads);
  log->info("encoder kernel: {}; CPU: {}", info.kernel, info.cpu_features);
  if (!info.auto_choice.empty()) log->info("precision auto: {}", info.auto_choice);
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
    TimedEncode(batch_, batch_out_.data());
    for (size_t k = 0; k < plan.size(); ++k) {
      std::memcpy(out + plan[k] * D, batch_out_.data() + k * D, D * sizeof(float));
    }
  }
}

void SentenceEncoder::EmbedBatch(const PackedBatch& batch, float* out) {
  std::lock_guard<FifoMutex> lock(mu_);
  TimedEncode(batch, out);
}

void SentenceEncoder::TimedEncode(const PackedBatch& batch, float* out) {
  // One forward pass, lock held: rate(_sum) is the fraction of time the
  // encoder computes (its busy share), whoever asked (pipelines, searches).
  static Histogram& forward = MetricsRegistry::Global().GetHistogram(
      "embedstream_encoder_forward_seconds",
      "One forward pass of the encoder (pipelines and search queries); rate of the sum = busy "
      "fraction.",
      LatencyBucketsSeconds());
  const auto t0 = std::chrono::steady_clock::now();
  backend_->Encode(batch, out);
  forward.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace embedstream::model
