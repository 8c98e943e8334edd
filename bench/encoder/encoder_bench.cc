// bench_encoder: how fast is the encoder in each precision (f32, bf16,
// int8), against (1) the oneDNN GEMM ceiling on the same shapes in the same
// precision, (2) the machine's physical peak (register-only f32 FMA and int8
// dot-product loops on every thread) and (3) sentence-transformers (PyTorch
// CPU, f32) on the same texts and thread count — all measured in this run.
//
//   build/release/bench/bench_encoder [--threads N] [--seconds S] [--no-peer]
//       [--short N] [--ninety N] [--medium N] (texts per corpus)
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
#include "encoder/peak.h"
#include "model/sentence_encoder.h"

namespace es = embedstream;

namespace {

struct Args {
  std::string model_dir;
  int threads = 0;
  size_t batch_tokens = 0;  // 0: the encoder's default
  double seconds = 3.0;
  size_t short_count = 2000;
  size_t ninety_count = 400;
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
  Speed f32, bf16, int8, peer;
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
    else if (s == "--ninety")
      a.ninety_count = static_cast<size_t>(std::atol(next().c_str()));
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
          "[--short N] [--ninety N] [--medium N] [--no-peer] [--python PATH]\n");
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

// "1234 | 1.23x" cells: a speed, or n/a when that encoder did not run.
std::string Cell(double v, const char* fmt) {
  if (!(v > 0)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

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
  opt.precision = es::model::Precision::kInt8;
  auto int8 = es::model::SentenceEncoder::Load(a.model_dir, opt);
  if (!int8) {
    std::fprintf(stderr, "cannot load the int8 encoder: %s\n", int8.error().ToString().c_str());
    return 2;
  }
  const auto& cfg = (*f32)->config();

  std::vector<CorpusResult> results;
  const struct {
    const char* name;
    size_t count, words;
  } corpora[] = {{"short (~16 tok)", a.short_count, 11},
                 {"~90 tok", a.ninety_count, 70},
                 {"medium (~128 tok)", a.medium_count, 100}};
  for (const auto& c : corpora) {
    CorpusResult r;
    r.name = c.name;
    const auto texts = es::bench::MakeCorpus(c.count, c.words, 42);
    r.texts = texts.size();
    for (const auto& t : texts) r.tokens += (*f32)->Tokenize(t).size();
    r.f32 = Measure(**f32, texts, r.tokens, a.seconds);
    r.int8 = Measure(**int8, texts, r.tokens, a.seconds);
    if (bf16) {
      r.bf16 = Measure(**bf16, texts, r.tokens, a.seconds);
      r.bf16_ran = true;
    }
    if (a.peer) r.peer = RunPeer(a, a.model_dir, texts, a.threads, &r.peer_error);
    results.push_back(r);
  }
  const int64_t rows = static_cast<int64_t>((*f32)->info().batch_tokens_max);
  using es::bench::GemmType;
  const auto ceiling = [&](GemmType t) {
    return es::bench::MeasureGemmCeiling(rows, cfg.hidden_size, cfg.intermediate_size,
                                         cfg.num_layers, t, a.seconds);
  };
  const auto ceil_f32 = ceiling(GemmType::kF32);
  const auto ceil_int8 = ceiling(GemmType::kInt8);
  es::bench::GemmCeiling ceil_bf16;
  if (bf16) ceil_bf16 = ceiling(GemmType::kBF16);
  const es::bench::Peak peak_f32 = es::bench::MeasureF32FmaPeak(a.threads, a.seconds);
  const es::bench::Peak peak_int8 = es::bench::MeasureInt8DotPeak(a.threads, a.seconds);
  const double flops_per_token = ceil_f32.flops_per_token;
  const double peak_f32_tok = peak_f32.gops * 1e9 / flops_per_token;
  const double peak_int8_tok = peak_int8.gops * 1e9 / flops_per_token;

  std::printf("\nbench_encoder: %s, %d threads, cpu: %s\n", (*f32)->info().model_name.c_str(),
              a.threads, (*f32)->info().cpu_features.c_str());
  std::printf("int8 kernel: %s\n", (*int8)->info().kernel.c_str());
  std::printf(
      "(%.1f GEMM MFLOP per token; GEMM ceilings: oneDNN matmul alone, M=%lld, the 4 "
      "layer shapes)\n",
      flops_per_token / 1e6, static_cast<long long>(rows));
  std::printf(
      "physical peak: f32 %.0f GFLOP/s (%s) = %.0f tok/s; int8 %.0f GOP/s (%s) = %.0f "
      "tok/s; int8 / f32 peak %.2fx\n",
      peak_f32.gops, peak_f32.instruction.c_str(), peak_f32_tok, peak_int8.gops,
      peak_int8.instruction.c_str(), peak_int8_tok, peak_int8.gops / peak_f32.gops);
  std::printf(
      "GEMM ceiling: f32 %.0f GFLOP/s = %.0f tok/s (%.0f%% of peak); int8 %.0f GOP/s = "
      "%.0f tok/s (%.0f%% of peak)",
      ceil_f32.gflops, ceil_f32.tokens_per_s, 100.0 * ceil_f32.gflops / peak_f32.gops,
      ceil_int8.gflops, ceil_int8.tokens_per_s, 100.0 * ceil_int8.gflops / peak_int8.gops);
  if (bf16)
    std::printf("; bf16 %.0f GFLOP/s = %.0f tok/s", ceil_bf16.gflops, ceil_bf16.tokens_per_s);
  std::printf("\n\n");

  std::printf(
      "| corpus | texts | avg tok | f32 tok/s | bf16 tok/s | int8 tok/s | int8 / f32 | "
      "bf16 / f32 | ST f32 tok/s | f32 / ST | int8 / ST |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    const double st = r.peer.tokens_per_s;
    std::printf("| %s | %zu | %.1f | %.0f | %s | %.0f | %.2fx | %s | %s | %s | %s |\n",
                r.name.c_str(), r.texts,
                static_cast<double>(r.tokens) / static_cast<double>(r.texts), r.f32.tokens_per_s,
                Cell(r.bf16.tokens_per_s, "%.0f").c_str(), r.int8.tokens_per_s,
                r.int8.tokens_per_s / r.f32.tokens_per_s,
                Cell(r.bf16.tokens_per_s / r.f32.tokens_per_s, "%.2fx").c_str(),
                Cell(st, "%.0f").c_str(), Cell(r.f32.tokens_per_s / st, "%.2fx").c_str(),
                Cell(r.int8.tokens_per_s / st, "%.2fx").c_str());
  }
  std::printf(
      "\n| corpus | f32 %% of f32 GEMM ceiling | f32 %% of f32 peak | int8 %% of int8 "
      "GEMM ceiling | int8 %% of int8 peak | bf16 %% of bf16 GEMM ceiling |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %s | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s |\n", r.name.c_str(),
                100.0 * r.f32.tokens_per_s / ceil_f32.tokens_per_s,
                100.0 * r.f32.tokens_per_s / peak_f32_tok,
                100.0 * r.int8.tokens_per_s / ceil_int8.tokens_per_s,
                100.0 * r.int8.tokens_per_s / peak_int8_tok,
                r.bf16_ran
                    ? Cell(100.0 * r.bf16.tokens_per_s / ceil_bf16.tokens_per_s, "%.0f%%").c_str()
                    : "n/a");
  }
  for (const auto& r : results) {
    if (!r.peer_error.empty()) std::printf("peer (%s): %s\n", r.name.c_str(), r.peer_error.c_str());
  }
  if (!bf16) std::printf("bf16: %s\n", bf16.error().ToString().c_str());
  return 0;
}
