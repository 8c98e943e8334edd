#include "app/embed_command.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/line_reader.h"
#include "app/runtime_adapters.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/uuid.h"
#include "pipeline/record.h"
#include "pipeline/runtime.h"
#include "sinks/pipeline_sinks.h"

namespace embedstream::app {
namespace {

// Lines of a file descriptor as a pipeline source; ends at end of input.
// Dead letters are error records on stderr with their line number.
class LinesSource : public pipeline::Source {
 public:
  LinesSource(int fd, pipeline::DecodeOptions decode) : reader_(fd), decode_(decode) {}
  const std::string& name() const override { return name_; }

  pipeline::ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) override {
    pipeline::ReadBatch out;
    std::string line;
    int timeout = static_cast<int>(wait.count());
    while (out.records.size() + out.rejected.size() < max_records) {
      const auto st = reader_.Next(line, timeout);
      timeout = 0;  // the rest of this read takes only what is there already
      if (st == LineReader::Status::kTimeout) break;
      if (st == LineReader::Status::kEof || st == LineReader::Status::kError) {
        if (st == LineReader::Status::kError) error_ = reader_.error();
        out.end = true;
        break;
      }
      ++line_no_;
      if (line.empty()) {
        if (progress_ != nullptr) progress_->Add();  // never acked: counted here
        continue;
      }
      auto decoded = pipeline::DecodeRecord(line, decode_);
      pipeline::Record r;
      r.handle = line_no_;
      if (!decoded.ok()) {
        out.rejected.emplace_back(std::move(r), pipeline::Rejection{decoded.error.reason, "decode",
                                                                    decoded.error.detail, 1});
        continue;
      }
      pipeline::InputRecord& in = *decoded.record;
      r.id = in.id.empty() ? FormatUuid(RandomUuidV4()) : std::move(in.id);
      r.text = std::move(in.text);
      r.metadata_json = std::move(in.metadata_json);
      r.input_source = std::move(in.source);
      r.input_timestamp = in.timestamp.value_or(UnixSeconds());
      if (in.remove) r.op = pipeline::Record::Op::kDelete;
      out.records.push_back(std::move(r));
    }
    return out;
  }
  void Ack(std::span<const pipeline::Record* const>) override {}
  pipeline::WriteResult Reject(std::span<const pipeline::DeadLetter> letters) override {
    std::string err;
    for (const auto& l : letters) {
      JsonWriter w;
      w.BeginObject()
          .Key("error")
          .String(l.why.reason)
          .Key("detail")
          .String(l.why.detail)
          .Key("line")
          .Uint(l.record->handle)
          .EndObject();
      err += w.str() + "\n";
    }
    WriteAll(2, err);
    return pipeline::WriteResult::Ok();
  }

  size_t lines() const { return line_no_; }
  void set_progress(Progress* progress) { progress_ = progress; }
  const std::string& error() const { return error_; }

 private:
  static void WriteAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      off += static_cast<size_t>(n);
    }
  }

  const std::string name_ = "stdin";
  LineReader reader_;
  const pipeline::DecodeOptions decode_;
  size_t line_no_ = 0;
  std::string error_;
  Progress* progress_ = nullptr;
};

// Lines of a regular file (a newline-less last line counts); 0 for a pipe or
// a terminal, whose size is not known ahead.
uint64_t CountLines(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  uint64_t lines = 0;
  char last = '\n';
  std::vector<char> buf(1 << 20);
  for (off_t off = 0; off < st.st_size;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n <= 0) return 0;
    for (ssize_t i = 0; i < n; ++i) lines += buf[static_cast<size_t>(i)] == '\n';
    last = buf[static_cast<size_t>(n - 1)];
    off += n;
  }
  return lines + (last != '\n' ? 1 : 0);
}

// Time in the encoder, for the closing log line.
class EncoderTime : public pipeline::Listener {
 public:
  void OnBatch(size_t, size_t, std::chrono::duration<double> took) override {
    seconds += took.count();
  }
  double seconds = 0;
};

}  // namespace

void EmbedCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "embed",
      "Embed JSON lines ({\"id\",\"text\",...}) or plain text lines from stdin; write seed 000 "
      "`embeddings` records as JSON lines to stdout");
  encoder.AddTo(*cmd);
  cmd->add_option("-i,--input", input, "Input file, '-' for stdin [-]");
  cmd->add_option("-f,--format", format,
                  "auto (a line starting with '{' is JSON), json, or text [auto]")
      ->check(CLI::IsMember({"auto", "json", "text"}));
  cmd->add_option("--source", source, "input_source for records that carry none [stdin]");
  cmd->add_option(
         "--batch-lines", batch_lines,
         "Records embedded together at most (the token budget may cut a batch sooner) [256]")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--flush-ms", flush_ms,
                  "Embed what has arrived when input is idle this long [20]")
      ->check(CLI::Range(0, 60000));
  cmd->add_option("--max-record-bytes", max_record_bytes, "Longer lines are rejected [1048576]");
  cmd->add_flag("--chunk", chunk,
                "Cut a text longer than the model into chunks, one output record each (id "
                "<id>#<n>, parent_id, chunk_index, chunk_count, char_start, char_end); without "
                "it such a text is truncated to the model's limit (\"truncated\": true)");
  cmd->add_option("--chunk-tokens", chunk_tokens,
                  "Tokens per chunk with [CLS]/[SEP]; 0: the model's limit [0]");
  cmd->add_option("--chunk-overlap", chunk_overlap,
                  "Tokens repeated from the end of the chunk before [32]");
  cmd->add_option("--chunk-split", chunk_split,
                  "sentence (never cut a sentence that fits) or tokens [sentence]")
      ->check(CLI::IsMember({"sentence", "tokens"}));
  cmd->footer(
      "Output fields: id, original_text, embedding, model_name, timestamp, "
      "embedding_dimension, processing_timestamp, input_timestamp, input_source.\n"
      "A record without id gets a random UUID. Empty lines are skipped. Exit status: 0 when "
      "every line was embedded, 1 when some were rejected (see stderr), 2 on a start-up error.");
  cmd->callback([this] { std::exit(Run()); });
}

int EmbedCommand::Run() {
  auto log = GetLogger("app");
  int fd = 0;
  if (input != "-") {
    fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      log->error("cannot open {}: {}", input, std::strerror(errno));
      return 2;
    }
  }
  auto enc = encoder.LoadEncoder();
  if (!enc) {
    log->error("{}", enc.error().ToString());
    return 2;
  }
  model::SentenceEncoder& encoder_ref = **enc;
  const std::string model_name = encoder_ref.info().model_name;

  pipeline::DecodeOptions dopt;
  dopt.max_bytes = max_record_bytes;
  dopt.format = format == "json"   ? pipeline::InputFormat::kJson
                : format == "text" ? pipeline::InputFormat::kText
                                   : pipeline::InputFormat::kAuto;
  LinesSource lines(fd, dopt);
  EncoderEmbedder embedder(encoder_ref);
  sinks::JsonLinesSink out(1, model_name, source);
  pipeline::RuntimeOptions ro;
  ro.batch_max_tokens =
      encoder.batch_tokens_max > 0 ? static_cast<size_t>(encoder.batch_tokens_max) : 8192;
  ro.batch_max_records = batch_lines;
  ro.batch_max_wait = std::chrono::milliseconds(flush_ms);
  ro.allow_overtaking = false;  // stdout in input order
  ro.chunking.on_overflow = chunk ? pipeline::ChunkingOptions::Overflow::kChunk
                                  : pipeline::ChunkingOptions::Overflow::kTruncate;
  ro.chunking.max_tokens = chunk_tokens;
  ro.chunking.overlap_tokens = chunk_overlap;
  ro.chunking.split = chunk_split == "tokens" ? pipeline::ChunkingOptions::Split::kTokens
                                              : pipeline::ChunkingOptions::Split::kSentence;
  if (chunk_tokens != 0 && (chunk_tokens < 8 || chunk_overlap + 3 > chunk_tokens)) {
    log->error("--chunk-tokens must be at least 8 and above --chunk-overlap + 2");
    return 2;
  }
  pipeline::Runtime runtime(lines, &embedder, {&out}, ro);
  EncoderTime timing;
  runtime.AddListener(&timing);
  // On a terminal: lines done of the file's lines (stdin redirected from a
  // file counts too), rate and ETA.
  Progress progress({.label = "embed", .total = CountLines(fd), .unit = "lines"});
  AckProgress acked(progress);
  if (progress.enabled()) {
    lines.set_progress(&progress);
    runtime.AddListener(&acked);
  }
  std::atomic<bool> stop{false};
  runtime.Run(stop);  // until end of input, then drains
  progress.Finish();
  if (fd != 0) ::close(fd);
  const auto& st = runtime.stats();
  const uint64_t embedded = st.stored.load();
  const uint64_t rejected = st.rejected.load();
  if (!lines.error().empty()) {
    log->error("reading {}: {}", input, lines.error());
    return 2;
  }
  log->info(
      "embedded {} records, rejected {} of {} lines; encoder time {:.3f} s ({:.1f} records/s)",
      embedded, rejected, lines.lines(), timing.seconds,
      timing.seconds > 0 ? static_cast<double>(embedded) / timing.seconds : 0.0);
  if (st.chunked.load() > 0) {
    log->info("{} texts longer than the model became {} chunks", st.chunked.load(),
              st.chunks.load());
  }
  if (st.truncated.load() > 0) {
    log->warn("{} texts were longer than the model and truncated (--chunk embeds them whole)",
              st.truncated.load());
  }
  return rejected == 0 ? 0 : 1;
}

}  // namespace embedstream::app
