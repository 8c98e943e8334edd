#pragma once
// `embedstream serve`: the long-running service. With Kafka configured it
// consumes the input topics, embeds and publishes to the output topic (see
// serve_pipelines.h), and serves /health, /ready, /stats, /config and /metrics.

#include <CLI/CLI.hpp>

#include "app/encoder_flags.h"
#include "app/serve_config.h"

namespace embedstream::app {

struct ServeCommand {
  EncoderFlags encoder;
  ServeFlags flags;
  bool print_config = false;

  void Register(CLI::App& parent);
  int Run();
};

}  // namespace embedstream::app
