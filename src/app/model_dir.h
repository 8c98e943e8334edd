#pragma once
// Where the model lives: --model-dir, else $EMBEDSTREAM_MODEL_DIR, else
// ./models/all-MiniLM-L6-v2, else models/all-MiniLM-L6-v2 next to the
// repository the binary was built in (build/<preset>/embedstream).

#include <filesystem>
#include <string>

#include "core/result.h"

namespace embedstream::app {

inline constexpr const char* kDefaultModelSubdir = "models/all-MiniLM-L6-v2";

Result<std::filesystem::path> ResolveModelDir(const std::string& flag_value);

}  // namespace embedstream::app
