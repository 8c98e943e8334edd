// Chunking's cost (issue 14), in one run on one machine:
//   1. the intake-side work of chunking (EncodeWords with spans + PlanChunks +
//      framing each chunk) over 1,000 documents of 2-20k characters, as a
//      share of the encoder's time embedding their chunks (target <= 5%);
//   2. tokens/s through the pipeline runtime for those documents (chunked
//      in the runtime) against the same text given as separate short texts
//      of the same total length (the chunks' texts, each fits: no chunking)
//      (target >= 95%).
//
//   build/release/bench/bench_chunking [--docs 1000] [--threads N]
//                                      [--precision f32|bf16]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/cpu_features.h"
#include "encoder/corpus.h"
#include "model/sentence_encoder.h"
#include "pipeline/chunker.h"
#include "pipeline/encoder_embedder.h"
#include "pipeline/runtime.h"

namespace es = embedstream;
using es::pipeline::Record;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Documents of 2,000-20,000 characters: paragraphs of the encoder bench's
// seeded sentences (the same bytes on every machine).
std::vector<std::string> MakeDocuments(size_t n, uint32_t seed) {
  const std::vector<std::string> sentences = es::bench::MakeCorpus(20000, 18, seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> length(2000, 20000);
  std::vector<std::string> docs;
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t want = length(rng);
    std::string d;
    size_t in_paragraph = 0;
    while (d.size() < want) {
      d += sentences[next++ % sentences.size()];
      if (++in_paragraph == 6) {
        d += "\n\n";
        in_paragraph = 0;
      } else {
        d += ' ';
      }
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

// A finite in-memory source.
class TextsSource : public es::pipeline::Source {
 public:
  explicit TextsSource(const std::vector<std::string>& texts) : texts_(texts) {}
  const std::string& name() const override { return name_; }
  es::pipeline::ReadBatch Read(size_t max_records, std::chrono::milliseconds) override {
    es::pipeline::ReadBatch out;
    for (; next_ < texts_.size() && out.records.size() < max_records; ++next_) {
      Record r;
      r.id = "t" + std::to_string(next_);
      r.text = texts_[next_];
      out.records.push_back(std::move(r));
    }
    out.end = next_ == texts_.size() && out.records.empty();
    return out;
  }
  void Ack(std::span<const Record* const>) override {}
  es::pipeline::WriteResult Reject(std::span<const es::pipeline::DeadLetter>) override {
    return es::pipeline::WriteResult::Ok();
  }

 private:
  const std::vector<std::string>& texts_;
  size_t next_ = 0;
  const std::string name_ = "bench";
};

class NullSink : public es::pipeline::Sink {
 public:
  const std::string& name() const override { return name_; }
  es::pipeline::WriteResult Write(std::span<const es::pipeline::SinkItem> items) override {
    records += items.size();
    return es::pipeline::WriteResult::Ok();
  }
  std::atomic<size_t> records{0};

 private:
  const std::string name_ = "null";
};

class Timing : public es::pipeline::Listener {
 public:
  void OnBatch(size_t, size_t batch_tokens, std::chrono::duration<double> took) override {
    encoder_s += took.count();
    tokens += batch_tokens;
    ++passes;
  }
  double encoder_s = 0;
  size_t tokens = 0;
  size_t passes = 0;  // Embed calls (each one or more forward passes of the budget)
};

struct Run {
  double wall_s = 0, encoder_s = 0;
  size_t tokens = 0, records = 0, chunked = 0, chunks = 0, passes = 0;
  double tokens_per_s() const { return static_cast<double>(tokens) / wall_s; }
};

Run Pipeline(es::model::SentenceEncoder& enc, const std::vector<std::string>& texts) {
  TextsSource source(texts);
  es::pipeline::EncoderEmbedder embedder(enc);
  NullSink sink;
  es::pipeline::RuntimeOptions ro;
  ro.batch_max_tokens = enc.info().batch_tokens_max;
  ro.batch_max_wait = std::chrono::milliseconds(50);
  es::pipeline::Runtime rt(source, &embedder, {&sink}, ro);
  Timing timing;
  rt.AddListener(&timing);
  std::atomic<bool> stop{false};
  const auto t0 = Clock::now();
  rt.Run(stop);
  Run r;
  r.wall_s = Seconds(Clock::now() - t0);
  r.encoder_s = timing.encoder_s;
  r.tokens = timing.tokens;
  r.passes = timing.passes;
  r.records = sink.records;
  r.chunked = rt.stats().chunked;
  r.chunks = rt.stats().chunks;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chunking's cost against the encoder, and tokens/s chunked vs unchunked"};
  std::string model_dir = ES_SOURCE_DIR "/models/all-MiniLM-L6-v2";
  size_t docs_n = 1000;
  int threads = 0;
  std::string precision = "f32";
  int reps = 1;
  app.add_option("--model-dir", model_dir);
  app.add_option("--reps", reps, "Passes of each kind, alternating; the best counts [1]");
  app.add_option("--docs", docs_n, "Documents (2-20k characters each) [1000]");
  app.add_option("--threads", threads, "Encoder threads [all cores]");
  app.add_option("--precision", precision, "f32 | bf16 [f32]");
  CLI11_PARSE(app, argc, argv);

  es::model::EncoderOptions eo;
  eo.threads = threads;
  eo.precision = precision == "bf16" ? es::model::Precision::kBF16 : es::model::Precision::kF32;
  auto enc = es::model::SentenceEncoder::Load(model_dir, eo);
  if (!enc) {
    std::fprintf(stderr, "%s\n", enc.error().ToString().c_str());
    return 2;
  }
  es::model::SentenceEncoder& e = **enc;
  const std::vector<std::string> docs = MakeDocuments(docs_n, 14);
  size_t chars = 0;
  for (const auto& d : docs) chars += d.size();
  std::printf("cpu: %s; encoder %s %s, %d threads\n", es::GetCpuFeatures().ToString().c_str(),
              e.info().backend.c_str(), precision.c_str(), e.info().threads);
  std::printf("corpus: %zu documents, %zu bytes (%.0f per document)\n", docs.size(), chars,
              static_cast<double>(chars) / static_cast<double>(docs.size()));

  // 1. The intake side of chunking, alone on one thread (what Runtime::Add
  //    does for each document), and the same documents' chunk texts.
  es::pipeline::EncoderEmbedder embedder(e);
  std::vector<std::string> chunk_texts;
  std::vector<int32_t> pieces;
  std::vector<es::text::TokenizedWord> words;
  size_t sequences = 0, chunk_tokens = 0;
  const es::pipeline::ChunkingOptions options;
  const auto c0 = Clock::now();
  for (const auto& d : docs) {
    embedder.TokenizeWords(d, pieces, words);
    const auto plan =
        es::pipeline::PlanChunks(d, words, pieces.size(), options, embedder.max_tokens());
    for (const auto& s : plan.spans) {
      const auto seq =
          embedder.Frame(std::span<const int32_t>(pieces).subspan(s.first_piece, s.pieces));
      chunk_tokens += seq.size();
      ++sequences;
    }
  }
  const double chunking_s = Seconds(Clock::now() - c0);
  for (const auto& d : docs) {  // the chunk texts, untimed
    embedder.TokenizeWords(d, pieces, words);
    const auto plan =
        es::pipeline::PlanChunks(d, words, pieces.size(), options, embedder.max_tokens());
    for (const auto& s : plan.spans)
      chunk_texts.push_back(d.substr(s.byte_begin, s.byte_end - s.byte_begin));
  }
  // What the runtime spends tokenizing the same text when it needs no
  // chunking (the chunk texts, each fits), for comparison.
  const auto p0 = Clock::now();
  size_t plain_tokens = 0;
  for (const auto& t : chunk_texts) plain_tokens += e.Tokenize(t).size();
  const double plain_tokenize_s = Seconds(Clock::now() - p0);

  // 2. Through the runtime: documents (chunked there) vs the chunk texts as
  //    separate records. Warm-up first; then each once, alternately, twice.
  {
    std::vector<std::string> warm(chunk_texts.begin(),
                                  chunk_texts.begin() + std::min<size_t>(200, chunk_texts.size()));
    Pipeline(e, warm);
  }
  Run chunked, plain;
  for (int rep = 0; rep < reps; ++rep) {
    Run a = Pipeline(e, docs);
    Run b = Pipeline(e, chunk_texts);
    if (rep == 0 || a.tokens_per_s() > chunked.tokens_per_s()) chunked = a;
    if (rep == 0 || b.tokens_per_s() > plain.tokens_per_s()) plain = b;
  }
  std::printf(
      "chunks: %zu (%.1f per document), %zu tokens in chunks (mean %.0f per chunk); "
      "the same text unchunked: %zu tokens\n",
      sequences, static_cast<double>(sequences) / static_cast<double>(docs.size()), chunk_tokens,
      static_cast<double>(chunk_tokens) / static_cast<double>(sequences), plain_tokens);
  std::printf(
      "\n1. chunking's intake work (EncodeWords + PlanChunks + frames), one thread: %.3f s\n",
      chunking_s);
  std::printf("   tokenizing the chunk texts as plain records instead:           %.3f s\n",
              plain_tokenize_s);
  std::printf("   encoder time embedding the chunks (runtime, best pass):        %.3f s\n",
              chunked.encoder_s);
  std::printf("   chunking / encoder time: %.2f%% (target <= 5%%)  %s\n",
              100.0 * chunking_s / chunked.encoder_s,
              chunking_s / chunked.encoder_s <= 0.05 ? "MET" : "NOT MET");
  std::printf(
      "\n2. runtime, documents chunked in it:  %zu records, %zu tokens, %.2f s wall -> %.0f "
      "tokens/s (%zu documents chunked into %zu)\n",
      chunked.records, chunked.tokens, chunked.wall_s, chunked.tokens_per_s(), chunked.chunked,
      chunked.chunks);
  std::printf(
      "   runtime, the chunk texts as records: %zu records, %zu tokens, %.2f s wall -> %.0f "
      "tokens/s\n",
      plain.records, plain.tokens, plain.wall_s, plain.tokens_per_s());
  const double ratio = chunked.tokens_per_s() / plain.tokens_per_s();
  std::printf(
      "   encoder calls: chunked %zu (%.0f tokens each), unchunked %zu (%.0f tokens each)\n",
      chunked.passes, static_cast<double>(chunked.tokens) / chunked.passes, plain.passes,
      static_cast<double>(plain.tokens) / plain.passes);
  std::printf("   chunked / unchunked tokens/s: %.3f (target >= 0.95)  %s\n", ratio,
              ratio >= 0.95 ? "MET" : "NOT MET");
  return 0;
}
