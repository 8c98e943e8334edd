#pragma once
// Shared by the libFuzzer targets in this directory: an invariant check that
// crashes (so libFuzzer keeps the input), and quiet logs.

#include <cstdint>
#include <cstdio>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/logging.h"

// An invariant of the decoder under test: on failure, say which and trap.
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)

namespace embedstream::fuzz {

// For LLVMFuzzerInitialize: no log output (it would slow every run down).
inline void QuietLogs() {
  SetLogLevel("off");
  spdlog::set_level(spdlog::level::off);
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace embedstream::fuzz
