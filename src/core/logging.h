#pragma once
// One named spdlog logger per component ("model", "text", "app", ...), all
// writing to stderr so stdout stays free for data (embed writes JSON lines).
// Thread-safe: spdlog's registry is.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace embedstream {

std::shared_ptr<spdlog::logger> GetLogger(const std::string& component);

// "trace", "debug", "info", "warn", "error", "off"; unknown names keep "info".
void SetLogLevel(const std::string& level);

}  // namespace embedstream
