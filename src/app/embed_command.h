#pragma once
// `embedstream embed`: JSON lines or plain lines on stdin (or --input) ->
// seed 000 `embeddings` records as JSON lines on stdout. Bad lines give an
// error record on stderr with their line number; the rest go on.

#include <CLI/CLI.hpp>

#include "app/encoder_flags.h"

namespace embedstream::app {

struct EmbedCommand {
  EncoderFlags encoder;
  std::string input = "-";
  std::string format = "auto";
  std::string source = "stdin";
  size_t batch_lines = 256;
  int flush_ms = 20;
  size_t max_record_bytes = 1 << 20;

  void Register(CLI::App& parent);
  int Run();
};

}  // namespace embedstream::app
