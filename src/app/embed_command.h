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
  // --chunk: a text longer than the model becomes chunk records (else it is
  // truncated, as sentence-transformers does, and counted).
  bool chunk = false;
  size_t chunk_tokens = 0;
  size_t chunk_overlap = 32;
  std::string chunk_split = "sentence";
  size_t max_record_bytes = 1 << 20;

  void Register(CLI::App& parent);
  int Run();
};

}  // namespace embedstream::app
