#pragma once
// Backoff: exponential delays with full jitter for retrying transient
// failures (broker unavailable, produce timeouts, 5xx). Attempt n waits a
// uniform random time in [base/2, min(max, base * 2^n)]. Not thread-safe;
// one per retry loop.

#include <chrono>
#include <cstdint>
#include <random>

namespace embedstream::pipeline {

struct BackoffOptions {
  std::chrono::milliseconds base{100};
  std::chrono::milliseconds max{10'000};
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {}, uint64_t seed = std::random_device{}());
  // The delay before the next attempt; grows with each call until Reset().
  std::chrono::milliseconds Next();
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace embedstream::pipeline
