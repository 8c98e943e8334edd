#pragma once
// The encoder settings every model-using subcommand accepts, resolved in the
// order: YAML config file (`model:` section) < environment < flags.
//
//   model:
//     dir: models/all-MiniLM-L6-v2
//     name: sentence-transformers/all-MiniLM-L6-v2
//     precision: f32          # or bf16, int8, auto
//     threads: 0              # 0 = all cores
//     batch_tokens_max: 8192
//     max_seq_length: 0       # 0 = the model's own
//     backend: cpu            # or reference (slow, exact)
//
// Environment: EMBEDSTREAM_MODEL_DIR, EMBEDSTREAM_PRECISION, EMBEDSTREAM_THREADS.

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "model/sentence_encoder.h"

namespace embedstream::app {

struct EncoderFlags {
  std::string config_file;
  std::string model_dir;
  std::string model_name;
  std::string precision;
  std::string backend;
  int threads = -1;
  long batch_tokens_max = -1;
  long max_seq_length = -1;

  void AddTo(CLI::App& cmd);
  // Applies config file and environment under the flags, then loads.
  Result<std::unique_ptr<model::SentenceEncoder>> LoadEncoder() const;
};

}  // namespace embedstream::app
