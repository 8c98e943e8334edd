#pragma once
// Helpers shared by the unit tests.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace embedstream::testing {

// The real model: $EMBEDSTREAM_MODEL_DIR (scripts/test.sh sets it), else the
// repository's models/all-MiniLM-L6-v2. Tests that need it fail, not skip,
// when it is absent: run scripts/fetch_model.sh.
inline std::filesystem::path ModelDir() {
  if (const char* env = std::getenv("EMBEDSTREAM_MODEL_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return ES_DEFAULT_MODEL_DIR;
}

inline std::filesystem::path SourceDir() { return ES_SOURCE_DIR; }

// A fresh empty directory under the system temp dir, removed by the caller.
inline std::filesystem::path MakeTempDir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("es-" + tag + "-XXXXXX")).string();
  char* made = ::mkdtemp(tmpl.data());
  return made != nullptr ? std::filesystem::path(made) : std::filesystem::path();
}

}  // namespace embedstream::testing
