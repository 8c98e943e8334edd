#include "app/embed_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/line_reader.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"
#include "pipeline/record.h"

namespace embedstream::app {
namespace {

struct Pending {
  pipeline::InputRecord record;
  double read_time = 0;
};

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stdout closed (e.g. `| head`): nothing more to do
    }
    off += static_cast<size_t>(n);
  }
}

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
  cmd->add_option("--batch-lines", batch_lines, "Lines embedded together at most [256]")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--flush-ms", flush_ms,
                  "Embed what has arrived when input is idle this long [20]")
      ->check(CLI::Range(0, 60000));
  cmd->add_option("--max-record-bytes", max_record_bytes, "Longer lines are rejected [1048576]");
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
  const size_t dim = encoder_ref.dim();
  const std::string model_name = encoder_ref.info().model_name;

  pipeline::DecodeOptions dopt;
  dopt.max_bytes = max_record_bytes;
  dopt.format = format == "json"   ? pipeline::InputFormat::kJson
                : format == "text" ? pipeline::InputFormat::kText
                                   : pipeline::InputFormat::kAuto;

  std::vector<Pending> pending;
  std::vector<float> vectors;
  std::string out;
  size_t line_no = 0, embedded = 0, rejected = 0;
  double encode_seconds = 0;

  auto flush = [&] {
    if (pending.empty()) return;
    std::vector<std::string_view> texts;
    texts.reserve(pending.size());
    for (const auto& p : pending) texts.push_back(p.record.text);
    vectors.resize(pending.size() * dim);
    const auto t0 = std::chrono::steady_clock::now();
    encoder_ref.Embed(texts, vectors.data());
    encode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double now = UnixSeconds();
    out.clear();
    for (size_t i = 0; i < pending.size(); ++i) {
      const auto& r = pending[i].record;
      pipeline::OutputFields f;
      f.id = r.id;
      f.original_text = r.text;
      f.model_name = model_name;
      f.input_timestamp = r.timestamp.value_or(pending[i].read_time);
      f.processing_timestamp = now;
      f.input_source = r.source.empty() ? std::string_view(source) : std::string_view(r.source);
      pipeline::AppendEmbeddingRecord(out, f, {vectors.data() + i * dim, dim});
      out.push_back('\n');
    }
    WriteAll(1, out);
    embedded += pending.size();
    pending.clear();
  };

  LineReader reader(fd);
  std::string line;
  for (;;) {
    const auto st = reader.Next(line, pending.empty() ? -1 : flush_ms);
    if (st == LineReader::Status::kTimeout) {
      flush();
      continue;
    }
    if (st == LineReader::Status::kEof) break;
    if (st == LineReader::Status::kError) {
      log->error("reading {}: {}", input, reader.error());
      flush();
      return 2;
    }
    ++line_no;
    if (line.empty()) continue;
    auto decoded = pipeline::DecodeRecord(line, dopt);
    if (!decoded.ok()) {
      ++rejected;
      JsonWriter w;
      w.BeginObject()
          .Key("error")
          .String(decoded.error.reason)
          .Key("detail")
          .String(decoded.error.detail)
          .Key("line")
          .Uint(line_no)
          .EndObject();
      WriteAll(2, w.str() + "\n");
      continue;
    }
    Pending p;
    p.record = std::move(*decoded.record);
    if (p.record.id.empty()) p.record.id = FormatUuid(RandomUuidV4());
    p.read_time = UnixSeconds();
    pending.push_back(std::move(p));
    if (pending.size() >= batch_lines) flush();
  }
  flush();
  if (fd != 0) ::close(fd);
  log->info(
      "embedded {} records, rejected {} of {} lines; encoder time {:.3f} s ({:.1f} records/s)",
      embedded, rejected, line_no, encode_seconds,
      encode_seconds > 0 ? static_cast<double>(embedded) / encode_seconds : 0.0);
  return rejected == 0 ? 0 : 1;
}

}  // namespace embedstream::app
