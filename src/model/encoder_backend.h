#pragma once
// EncoderBackend: runs the transformer and pooling on one packed batch. The
// seam between the model-independent parts (tokenizer, batching) and the
// compute: `reference` (plain loops, the ground truth for tests), `cpu`
// (oneDNN). A backend owns scratch buffers, so one thread at a time calls
// Encode; SentenceEncoder serialises callers.

#include <memory>
#include <string>

#include "core/result.h"
#include "model/bert_weights.h"
#include "model/model_config.h"
#include "model/packed_batch.h"

namespace embedstream::model {

// kAuto is resolved by SentenceEncoder::Load (the fastest precision that
// meets the accuracy target on this CPU); a backend never sees it.
enum class Precision { kF32, kBF16, kInt8, kAuto };
const char* PrecisionName(Precision p);
Result<Precision> ParsePrecision(const std::string& s);

class EncoderBackend {
 public:
  virtual ~EncoderBackend() = default;
  virtual const char* name() const = 0;
  virtual Precision precision() const = 0;
  // The compute kernel in words (model info, the start-up log).
  virtual std::string kernel() const { return name(); }
  // Writes batch.num_sequences() rows of config.hidden_size floats to `out`:
  // pooled (and normalised when the model has a Normalize module).
  virtual void Encode(const PackedBatch& batch, float* out) = 0;
};

// Plain scalar forward pass, f32 weights, double accumulation.
std::unique_ptr<EncoderBackend> MakeReferenceBackend(const ModelConfig& config,
                                                     std::shared_ptr<const BertWeights> weights);

// oneDNN backend. bf16 needs AVX512_BF16 (or AMX); without it this returns
// Error(unsupported) and the caller decides whether to fall back to f32.
Result<std::unique_ptr<EncoderBackend>> MakeCpuBackend(const ModelConfig& config,
                                                       std::shared_ptr<const BertWeights> weights,
                                                       Precision precision);

// oneDNN int8 backend (cpu_int8_backend.cc): dynamic per-token activations,
// per-channel weights, smoothed by the column ranges `calibration` shows
// (empty: not smoothed).
Result<std::unique_ptr<EncoderBackend>> MakeCpuInt8Backend(
    const ModelConfig& config, std::shared_ptr<const BertWeights> weights,
    const PackedBatch& calibration);

}  // namespace embedstream::model
