#pragma once
// SinkGuard: the one place that decides what a failed write means, for every
// sink and for the dead letters.
//
//   kUnavailable -> breaker.OnFailure, wait (backoff, or the open breaker's
//                   RetryAfter), write the same items again; the sink is
//                   reported unavailable (intake pauses) until a write works
//   kTooLarge    -> split the items in halves and write each; one item alone
//                   too large is refused with reason `too_large` (no retry)
//   refused      -> the record's fault: written again, up to retry_attempts
//                   writes in all (with backoff), then refused for good
//                   (reason `sink_rejected`)
//
// Waiting ends early when Cancel() is called (shutdown past its drain
// deadline): the write returns `cancelled` and nothing is acked.
//
// Thread-safe where noted; Write runs on one thread at a time (the sink's).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "pipeline/backoff.h"
#include "pipeline/circuit_breaker.h"
#include "pipeline/stage.h"

namespace embedstream::pipeline {

struct SinkGuardOptions {
  int retry_attempts = 3;  // writes of a refused record before it is refused for good
  BackoffOptions backoff;
  CircuitBreakerOptions breaker;
};

// Counters of one guarded sink; read from any thread.
struct SinkGuardStats {
  std::atomic<uint64_t> written{0};  // items stored
  std::atomic<uint64_t> refused{0};  // items refused for good (to the dead letters)
  std::atomic<uint64_t> writes{0};   // calls of the write function
  std::atomic<uint64_t> errors{0};   // kUnavailable results (each retried)
  std::atomic<uint64_t> splits{0};   // kTooLarge results (each split)
  std::atomic<uint64_t> retries{0};  // refused items written again
  std::atomic<bool> available{true};
};

class SinkGuard {
 public:
  // (item indexes into the caller's batch) -> the sink's result, whose
  // `refused` indexes are positions in that span.
  using WriteFn = std::function<WriteResult(std::span<const size_t>)>;
  // The sink went unavailable (false) or recovered (true).
  using AvailabilityFn = std::function<void(bool available, const std::string& why)>;

  struct Outcome {
    bool cancelled = false;
    std::vector<std::pair<size_t, Rejection>> refused;  // (item index, why), ascending
  };

  SinkGuard(std::string name, SinkGuardOptions options, AvailabilityFn on_availability = nullptr,
            CircuitBreaker::Clock clock = nullptr);

  // Writes items 0..n-1 until each is stored or refused for good.
  Outcome Write(size_t n, const WriteFn& write);
  // Ends every wait of the current and later Writes (thread-safe).
  void Cancel();

  const std::string& name() const { return name_; }
  const SinkGuardStats& stats() const { return stats_; }
  CircuitBreaker& breaker() { return breaker_; }
  const CircuitBreaker& breaker() const { return breaker_; }

 private:
  // Writes `items` until they are stored or refused; false when cancelled.
  bool WriteUntilAnswered(std::vector<size_t> items, const WriteFn& write,
                          std::vector<std::pair<size_t, Rejection>>& refused);
  void SetAvailable(bool available, const std::string& why);
  // Sleeps up to `d`; false when cancelled.
  bool Sleep(std::chrono::milliseconds d);

  const std::string name_;
  const SinkGuardOptions options_;
  const AvailabilityFn on_availability_;
  CircuitBreaker breaker_;
  SinkGuardStats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;  // guarded by mu_
};

}  // namespace embedstream::pipeline
