#pragma once
// Helpers for the store tests: temp dirs that clean up, random unit vectors.

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace embedstream::store::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) : path_(embedstream::testing::MakeTempDir(tag)) {}
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::vector<float> RandomUnit(size_t dim, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  double n2 = 0;
  for (auto& x : v) {
    x = normal(rng);
    n2 += static_cast<double>(x) * x;
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(n2));
  for (auto& x : v) x *= inv;
  return v;
}

// "prefix" + n without GCC 12's -Wrestrict false positive on literal + string.
inline std::string Name(const char* prefix, int n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

inline float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace embedstream::store::testing
