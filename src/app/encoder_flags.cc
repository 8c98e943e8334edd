#include "app/encoder_flags.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "app/model_dir.h"

namespace embedstream::app {

void EncoderFlags::AddTo(CLI::App& cmd) {
  cmd.add_option("-c,--config", config_file, "YAML config file (its `model:` section is used)");
  cmd.add_option("-m,--model-dir", model_dir,
                 "Model directory in sentence-transformers layout [env: EMBEDSTREAM_MODEL_DIR; "
                 "default: models/all-MiniLM-L6-v2]");
  cmd.add_option("--model-name", model_name,
                 "Name written into output records [default: from the model dir]");
  cmd.add_option("-p,--precision", precision,
                 "f32 (default, exact), bf16 (needs AVX512_BF16, else falls back to f32), int8 "
                 "(quantized: cosine >= 0.995 to f32 on average, faster) or auto (int8 where it "
                 "runs >= 1.3x f32 on this CPU, timed at load) [env: EMBEDSTREAM_PRECISION]");
  cmd.add_option("-t,--threads", threads,
                 "Compute threads, 0 = all cores [env: EMBEDSTREAM_THREADS]");
  cmd.add_option("--batch-tokens", batch_tokens_max, "Token budget of one forward pass [8192]");
  cmd.add_option("--max-seq-length", max_seq_length,
                 "Truncate texts to this many tokens incl. [CLS]/[SEP] [model's own, 256]");
  cmd.add_option("--backend", backend, "cpu (oneDNN, default) or reference (slow, exact)");
}

Result<std::unique_ptr<model::SentenceEncoder>> EncoderFlags::LoadEncoder() const {
  // Layer 1: config file.
  std::string dir, name, prec = "f32", back = "cpu";
  long thr = 0, budget = 8192, max_len = 0;
  if (!config_file.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(config_file);
      if (YAML::Node m = root["model"]; m) {
        if (m["dir"]) dir = m["dir"].as<std::string>();
        if (m["name"]) name = m["name"].as<std::string>();
        if (m["precision"]) prec = m["precision"].as<std::string>();
        if (m["backend"]) back = m["backend"].as<std::string>();
        if (m["threads"]) thr = m["threads"].as<long>();
        if (m["batch_tokens_max"]) budget = m["batch_tokens_max"].as<long>();
        if (m["max_seq_length"]) max_len = m["max_seq_length"].as<long>();
      }
    } catch (const YAML::Exception& e) {
      return Error(errc::invalid_argument, config_file + ": " + e.what());
    }
  }
  // Layer 2: environment.
  auto env = [](const char* k) -> const char* {
    const char* v = std::getenv(k);
    return (v != nullptr && *v != '\0') ? v : nullptr;
  };
  if (const char* v = env("EMBEDSTREAM_MODEL_DIR")) dir = v;
  if (const char* v = env("EMBEDSTREAM_PRECISION")) prec = v;
  if (const char* v = env("EMBEDSTREAM_THREADS")) {
    char* end = nullptr;
    thr = std::strtol(v, &end, 10);
    if (end == v || *end != '\0') {
      return Error(errc::invalid_argument,
                   std::string("EMBEDSTREAM_THREADS='") + v + "' is not an integer");
    }
  }
  // Layer 3: flags.
  if (!model_dir.empty()) dir = model_dir;
  if (!model_name.empty()) name = model_name;
  if (!precision.empty()) prec = precision;
  if (!backend.empty()) back = backend;
  if (threads >= 0) thr = threads;
  if (batch_tokens_max >= 0) budget = batch_tokens_max;
  if (max_seq_length >= 0) max_len = max_seq_length;

  model::EncoderOptions opt;
  auto p = model::ParsePrecision(prec);
  if (!p) return p.error();
  opt.precision = *p;
  if (back == "cpu") {
    opt.backend = model::BackendKind::kCpu;
  } else if (back == "reference") {
    opt.backend = model::BackendKind::kReference;
  } else {
    return Error(errc::invalid_argument, "backend '" + back + "' (expected cpu or reference)");
  }
  if (thr < 0 || thr > 4096) return Error(errc::invalid_argument, "threads must be in [0, 4096]");
  if (budget < 1) return Error(errc::invalid_argument, "batch_tokens_max must be positive");
  if (max_len < 0) return Error(errc::invalid_argument, "max_seq_length must be >= 0");
  opt.threads = static_cast<int>(thr);
  opt.batch_tokens_max = static_cast<size_t>(budget);
  opt.max_seq_length = static_cast<size_t>(max_len);
  opt.model_name = name;
  auto resolved = ResolveModelDir(dir);
  if (!resolved) return resolved.error();
  return model::SentenceEncoder::Load(*resolved, opt);
}

}  // namespace embedstream::app
