#include "pipeline/backoff.h"

#include <algorithm>

namespace embedstream::pipeline {

Backoff::Backoff(BackoffOptions options, uint64_t seed) : options_(options), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  const int64_t base = std::max<int64_t>(1, options_.base.count());
  const int64_t cap = std::max<int64_t>(base, options_.max.count());
  const int shift = std::min(attempts_, 30);
  const int64_t ceiling = std::min<int64_t>(cap, base << shift);
  ++attempts_;
  std::uniform_int_distribution<int64_t> dist(std::min(base / 2, ceiling), ceiling);
  return std::chrono::milliseconds(dist(rng_));
}

}  // namespace embedstream::pipeline
