#pragma once
// `embedstream gen ecommerce`: writes EcommerceGenerator events (seed 002
// schema) to a Kafka topic (key = event_id) or to a file / stdout, optionally
// at a fixed rate. For demos, tests and bench/ecommerce.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace embedstream::cli {

struct GenCommand {
  long count = 0;
  double rate = 0;  // events/s, 0 = as fast as possible
  uint64_t seed = 42;
  size_t users = 5000;
  size_t products = 2000;
  std::string topic;
  std::string brokers;
  std::string output;  // a file, or "-" for stdout
  bool now = false;    // wall-clock timestamps

  void Register(CLI::App& parent);
  int Run();
};

}  // namespace embedstream::cli
