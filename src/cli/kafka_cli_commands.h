#pragma once
// `embedstream produce` and `embedstream consume`: the seed 000/004
// kafka_cli equivalents, for feeding and inspecting topics by hand and in
// the end-to-end tests.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace embedstream::cli {

struct ProduceCommand {
  std::string brokers;
  std::string topic;
  std::vector<std::string> texts;
  std::string file;
  long count = 0;
  double rate = 0;  // messages/s, 0 = as fast as possible
  size_t size = 0;  // perf mode: pad texts to about this many bytes
  std::string source = "embedstream-cli";
  bool raw = false;  // send --file lines as they are

  void Register(CLI::App& parent);
  int Run();
};

struct ConsumeCommand {
  std::string brokers;
  std::string topic;
  long max_messages = -1;
  std::string group;
  bool from_beginning = false;
  int idle_timeout_ms = -1;
  std::string format = "value";

  void Register(CLI::App& parent);
  int Run();
};

}  // namespace embedstream::cli
