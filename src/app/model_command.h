#pragma once
// `embedstream model info`: what was loaded and how it will run.

#include <CLI/CLI.hpp>

#include "app/encoder_flags.h"

namespace embedstream::app {

struct ModelCommand {
  EncoderFlags encoder;
  bool json = false;

  void Register(CLI::App& parent);
  int RunInfo();
};

}  // namespace embedstream::app
