// bench_encoder: how fast is the encoder, against (1) the oneDNN GEMM
// ceiling on the same shapes and (2) sentence-transformers (PyTorch CPU) on
// the same texts and thread count — all measured in this one run.
//
//   build/release/bench/bench_encoder [--threads N] [--seconds S] [--no-peer]
//
// The peer runs bench/encoder/st_peer.py with $EMBEDSTREAM_BENCH_PYTHON, else
// .cache/venv-ref/bin/python (make it with bench/setup_peer.sh).

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "encoder/corpus.h"
#include "encoder/gemm_ceiling.h"
#include "model/sentence_encoder.h"

namespace es = embedstream;

namespace {

struct Args {
  std::string model_dir;
  int threads = 0;
  size_t batch_tokens = 0;  // 0: the encoder's default
  double seconds = 3.0;
  size_t short_count = 2000;
  size_t medium_count = 300;
  bool peer = true;
  std::string python;
};

struct Speed {
  double sentences_per_s = 0;
  double tokens_per_s = 0;
};

struct CorpusResult {
  std::string name;
  size_t texts = 0;
  size_t tokens = 0;
  Speed f32, bf16, peer;
  bool bf16_ran = false;
  std::string peer_error;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best wall time of full passes over the corpus, after one warm-up pass.
Speed Measure(es::model::SentenceEncoder& enc, const std::vector<std::string>& texts, size_t tokens,
              double min_seconds) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> out(texts.size() * enc.dim());
  enc.Embed(views, out.data());
  double best = 1e30, total = 0;
  int reps = 0;
  while (reps < 3 || total < min_seconds) {
    const double t0 = Now();
    enc.Embed(views, out.data());
    const double dt = Now() - t0;
    best = std::min(best, dt);
    total += dt;
    ++reps;
    if (reps >= 50) break;
  }
  return {static_cast<double>(texts.size()) / best, static_cast<double>(tokens) / best};
}

Speed RunPeer(const Args& a, const std::string& model_dir, const std::vector<std::string>& texts,
              int threads, std::string* error) {
  const auto file = std::filesystem::temp_directory_path() / "embedstream-bench-corpus.txt";
  {
    std::ofstream f(file);
    for (const auto& t : texts) f << t << '\n';
  }
  const std::string script = std::string(ES_SOURCE_DIR) + "/bench/encoder/st_peer.py";
  const std::string cmd = a.python + " " + script + " --model-dir '" + model_dir + "' --texts '" +
                          file.string() + "' --threads " + std::to_string(threads) +
                          " --repeat 3 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string output;
  if (p != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) output.append(buf, n);
    ::pclose(p);
  }
  std::filesystem::remove(file);
  try {
    auto j = nlohmann::json::parse(output.substr(output.rfind('{')));
    if (j.contains("error")) {
      *error = j["error"].get<std::string>();
      return {};
    }
    return {j["sentences_per_s"].get<double>(), j["tokens_per_s"].get<double>()};
  } catch (const std::exception&) {
    *error = "peer did not run (" + a.python + "): make it with bench/setup_peer.sh";
    return {};
  }
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (s == "--model-dir")
      a.model_dir = next();
    else if (s == "--threads")
      a.threads = std::atoi(next().c_str());
    else if (s == "--batch-tokens")
      a.batch_tokens = static_cast<size_t>(std::atol(next().c_str()));
    else if (s == "--seconds")
      a.seconds = std::atof(next().c_str());
    else if (s == "--short")
      a.short_count = static_cast<size_t>(std::atol(next().c_str()));
    else if (s == "--medium")
      a.medium_count = static_cast<size_t>(std::atol(next().c_str()));
    else if (s == "--no-peer")
      a.peer = false;
    else if (s == "--python")
      a.python = next();
    else {
      std::fprintf(
          stderr,
          "usage: bench_encoder [--model-dir D] [--threads N] [--batch-tokens N] [--seconds S] "
          "[--short N] [--medium N] [--no-peer] [--python PATH]\n");
      std::exit(2);
    }
  }
  if (a.model_dir.empty()) {
    const char* env = std::getenv("EMBEDSTREAM_MODEL_DIR");
    a.model_dir = env != nullptr ? env : std::string(ES_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
  }
  if (a.python.empty()) {
    const char* env = std::getenv("EMBEDSTREAM_BENCH_PYTHON");
    a.python = env != nullptr ? env : std::string(ES_SOURCE_DIR) + "/.cache/venv-ref/bin/python";
  }
  if (a.threads <= 0) a.threads = omp_get_num_procs();
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  es::model::EncoderOptions opt;
  opt.threads = a.threads;
  if (a.batch_tokens > 0) opt.batch_tokens_max = a.batch_tokens;
  auto f32 = es::model::SentenceEncoder::Load(a.model_dir, opt);
  if (!f32) {
    std::fprintf(stderr, "cannot load model: %s\n", f32.error().ToString().c_str());
    return 2;
  }
  opt.precision = es::model::Precision::kBF16;
  opt.allow_precision_fallback = false;
  auto bf16 = es::model::SentenceEncoder::Load(a.model_dir, opt);
  const auto& cfg = (*f32)->config();

  std::vector<CorpusResult> results;
  const struct {
    const char* name;
    size_t count, words;
  } corpora[] = {{"short (~16 tok)", a.short_count, 11},
                 {"medium (~128 tok)", a.medium_count, 100}};
  for (const auto& c : corpora) {
    CorpusResult r;
    r.name = c.name;
    const auto texts = es::bench::MakeCorpus(c.count, c.words, 42);
    r.texts = texts.size();
    for (const auto& t : texts) r.tokens += (*f32)->Tokenize(t).size();
    r.f32 = Measure(**f32, texts, r.tokens, a.seconds);
    if (bf16) {
      r.bf16 = Measure(**bf16, texts, r.tokens, a.seconds);
      r.bf16_ran = true;
    }
    if (a.peer) r.peer = RunPeer(a, a.model_dir, texts, a.threads, &r.peer_error);
    results.push_back(r);
  }
  const int64_t rows = static_cast<int64_t>((*f32)->info().batch_tokens_max);
  const auto ceil_f32 = es::bench::MeasureGemmCeiling(rows, cfg.hidden_size, cfg.intermediate_size,
                                                      cfg.num_layers, false, a.seconds);
  es::bench::GemmCeiling ceil_bf16;
  if (bf16) {
    ceil_bf16 = es::bench::MeasureGemmCeiling(rows, cfg.hidden_size, cfg.intermediate_size,
                                              cfg.num_layers, true, a.seconds);
  }

  std::printf("\nbench_encoder: %s, %d threads, cpu: %s\n", (*f32)->info().model_name.c_str(),
              a.threads, (*f32)->info().cpu_features.c_str());
  std::printf(
      "GEMM ceiling (oneDNN matmul, M=%lld, the 4 layer shapes): f32 %.0f GFLOP/s = %.0f "
      "tok/s",
      static_cast<long long>(rows), ceil_f32.gflops, ceil_f32.tokens_per_s);
  if (bf16) {
    std::printf("; bf16 %.0f GFLOP/s = %.0f tok/s", ceil_bf16.gflops, ceil_bf16.tokens_per_s);
  }
  std::printf("\n(%.1f GEMM MFLOP per token)\n\n", ceil_f32.flops_per_token / 1e6);
  std::printf(
      "| corpus | texts | avg tok | f32 tok/s | f32 sent/s | f32 %% of GEMM ceiling | "
      "bf16 tok/s | bf16 sent/s | bf16 %% of bf16 ceiling | bf16 / f32 | ST tok/s | "
      "ST sent/s | f32 / ST | bf16 / ST |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %s | %zu | %.1f | %.0f | %.0f | %.0f%% | ", r.name.c_str(), r.texts,
                static_cast<double>(r.tokens) / static_cast<double>(r.texts), r.f32.tokens_per_s,
                r.f32.sentences_per_s, 100.0 * r.f32.tokens_per_s / ceil_f32.tokens_per_s);
    if (r.bf16_ran) {
      std::printf("%.0f | %.0f | %.0f%% | %.2fx | ", r.bf16.tokens_per_s, r.bf16.sentences_per_s,
                  100.0 * r.bf16.tokens_per_s / ceil_bf16.tokens_per_s,
                  r.bf16.tokens_per_s / r.f32.tokens_per_s);
    } else {
      std::printf("n/a | n/a | n/a | n/a | ");
    }
    if (r.peer.tokens_per_s > 0) {
      std::printf("%.0f | %.0f | %.2fx | ", r.peer.tokens_per_s, r.peer.sentences_per_s,
                  r.f32.sentences_per_s / r.peer.sentences_per_s);
      if (r.bf16_ran) {
        std::printf("%.2fx |\n", r.bf16.sentences_per_s / r.peer.sentences_per_s);
      } else {
        std::printf("n/a |\n");
      }
    } else {
      std::printf("n/a | n/a | n/a | n/a |\n");
    }
  }
  for (const auto& r : results) {
    if (!r.peer_error.empty()) std::printf("peer (%s): %s\n", r.name.c_str(), r.peer_error.c_str());
  }
  if (!bf16) std::printf("bf16: %s\n", bf16.error().ToString().c_str());
  return 0;
}
