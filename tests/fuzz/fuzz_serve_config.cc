// The serve configuration file: app::ApplyServeConfigYaml (YAML text over the
// defaults, src/app/serve_config.h) and then app::ValidateServeConfig, the
// checks LoadServeConfig makes. Invariants: errors are invalid_argument with a
// message; a configuration that validates renders as JSON (ServeConfigJson)
// with its secrets masked.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "app/serve_config.h"
#include "fuzz_common.h"

using namespace embedstream;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  app::ServeConfig config;
  const Status applied = app::ApplyServeConfigYaml(fuzz::AsText(data, size), "fuzz.yaml", config);
  if (!applied) {
    FUZZ_CHECK(applied.error().code == errc::invalid_argument);
    FUZZ_CHECK(applied.error().message.rfind("fuzz.yaml", 0) == 0);
    return 0;
  }
  const Status valid = app::ValidateServeConfig(config);
  if (!valid) {
    FUZZ_CHECK(valid.error().code == errc::invalid_argument);
    FUZZ_CHECK(!valid.error().message.empty());
    return 0;
  }
  const std::string json = app::ServeConfigJson(config);
  const auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(parsed.is_object());
  FUZZ_CHECK(parsed["postgres"]["password"] == "***");
  if (!config.auth_token.empty()) FUZZ_CHECK(parsed["auth"]["token"] == "***");
  // Strings come back as they are (JsonWriter replaces invalid UTF-8, so
  // compare the ASCII ones only).
  const std::string dlq = config.kafka.DlqTopic();
  FUZZ_CHECK(parsed["kafka"]["dlq_topic"].is_string());
  if (std::all_of(dlq.begin(), dlq.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; })) {
    FUZZ_CHECK(parsed["kafka"]["dlq_topic"] == dlq);
  }
  return 0;
}
