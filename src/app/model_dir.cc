#include "app/model_dir.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace embedstream::app {
namespace {

std::filesystem::path ExecutableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

Result<std::filesystem::path> ResolveModelDir(const std::string& flag_value) {
  if (!flag_value.empty()) return std::filesystem::path(flag_value);
  if (const char* env = std::getenv("EMBEDSTREAM_MODEL_DIR"); env != nullptr && *env != '\0') {
    return std::filesystem::path(env);
  }
  std::vector<std::filesystem::path> tried = {std::filesystem::path(kDefaultModelSubdir)};
  if (auto exe_dir = ExecutableDir(); !exe_dir.empty()) {
    tried.push_back(exe_dir / "../.." / kDefaultModelSubdir);
    tried.push_back(exe_dir / ".." / kDefaultModelSubdir);
  }
  std::error_code ec;
  for (const auto& p : tried) {
    if (std::filesystem::exists(p / "config.json", ec)) return p.lexically_normal();
  }
  std::string msg = "no model found (looked in";
  for (const auto& p : tried) msg.append(" ").append(p.lexically_normal().string());
  msg += "); run scripts/fetch_model.sh or pass --model-dir / set EMBEDSTREAM_MODEL_DIR";
  return Error(errc::not_found, msg);
}

}  // namespace embedstream::app
