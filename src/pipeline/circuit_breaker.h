#pragma once
// CircuitBreaker: stops calling a sink that is down, so the source can pause
// instead of piling retries on it. One per sink.
//
//   closed    --N consecutive failures, or failure rate >= R over the last
//               W calls (once at least M calls are in the window)--> open
//   open      --open_duration elapsed, on the next Allow()--> half_open
//   half_open --half_open_max_probes probes succeeded--> closed
//   half_open --any probe failed--> open (open_duration doubled, up to
//               open_duration_max; back to the base duration on close)
//
// Only failures about the sink's availability should be reported (timeouts,
// connection refused, 5xx); a record the sink rejects is the record's fault
// and belongs in the DLQ, not here: callers decide.
//
// Thread-safe: every method takes one internal mutex (a few hundred ns at
// most). The transition callback runs outside that mutex, in transition
// order, on whichever thread is delivering transitions at the time; it may
// read the breaker (state(), stats()) and may even call OnFailure() etc.
//
// Example:
//   CircuitBreaker breaker(options, [&](auto from, auto to, const std::string& why) {
//     LOG_WARN("qdrant breaker %s -> %s: %s", StateName(from), StateName(to), why.c_str());
//   });
//   if (!breaker.Allow()) { PauseSource(breaker.RetryAfter()); return; }
//   Status s = sink.Write(batch);
//   if (s.ok()) breaker.OnSuccess();
//   else if (IsAvailabilityError(s)) breaker.OnFailure();

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

namespace embedstream::pipeline {

struct CircuitBreakerOptions {
  // Consecutive failures that open the breaker; 0 disables this trigger.
  int failure_threshold = 5;
  // Failure rate in (0, 1] over the sliding window that opens the breaker;
  // 0 disables this trigger.
  double failure_rate_threshold = 0.5;
  int window_calls = 20;      // size of the sliding window (last N results)
  int window_min_calls = 10;  // the rate is judged only with this many results
  std::chrono::milliseconds open_duration{5'000};
  std::chrono::milliseconds open_duration_max{60'000};
  int half_open_max_probes = 1;  // calls let through while half-open
};

// A config error for options a CircuitBreaker would otherwise clamp.
Status ValidateCircuitBreakerOptions(const CircuitBreakerOptions& options);

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using TransitionCallback = std::function<void(State from, State to, const std::string& why)>;

  struct Stats {
    State state = State::kClosed;
    uint64_t opened_total = 0;    // transitions to open, re-opens included
    uint64_t rejected_calls = 0;  // Allow() answered false
    int consecutive_failures = 0;
    int window_calls = 0;  // results in the sliding window now
    int window_failures = 0;
    std::chrono::milliseconds open_duration{0};  // the current (possibly doubled) duration
  };

  // Invalid options are clamped (see ValidateCircuitBreakerOptions for the
  // error a config loader should report instead). `clock` defaults to
  // steady_clock::now; tests pass a fake.
  explicit CircuitBreaker(CircuitBreakerOptions options = {},
                          TransitionCallback on_transition = nullptr, Clock clock = nullptr);

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // May a call go to the sink now? Closed: yes. Open: no until open_duration
  // has elapsed, then the breaker turns half-open. Half-open: yes for up to
  // half_open_max_probes calls, no for the rest until they report back.
  bool Allow();
  // The result of a call that Allow() let through. Results arriving while
  // open (calls that were in flight when it opened) are ignored.
  void OnSuccess();
  void OnFailure();

  State state() const;
  uint64_t opened_total() const;
  uint64_t rejected_calls() const;
  int consecutive_failures() const;
  Stats stats() const;
  // Open: how long until Allow() lets a probe through (0 once due). Closed
  // or half-open: 0.
  std::chrono::milliseconds RetryAfter() const;

 private:
  struct Transition {
    State from;
    State to;
    std::string why;
  };

  void Record(bool failure);  // adds a result to the sliding window
  void ClearWindow();
  void TransitionTo(State to, std::string why);
  void Open(std::string why);
  // Runs queued transition callbacks with `lock` released, in order.
  void Deliver(std::unique_lock<std::mutex>& lock);

  const CircuitBreakerOptions options_;
  const TransitionCallback on_transition_;
  const Clock clock_;

  mutable std::mutex mu_;
  State state_ = State::kClosed;
  uint64_t opened_total_ = 0;
  uint64_t rejected_calls_ = 0;
  int consecutive_failures_ = 0;
  std::vector<bool> window_;  // ring buffer of results, true = failure
  size_t window_next_ = 0;
  int window_size_ = 0;
  int window_failures_ = 0;
  std::chrono::milliseconds open_duration_;
  std::chrono::steady_clock::time_point open_until_{};
  int probes_in_flight_ = 0;
  int probes_succeeded_ = 0;
  std::deque<Transition> pending_;
  bool delivering_ = false;
};

const char* StateName(CircuitBreaker::State state);  // "closed" | "open" | "half_open"

}  // namespace embedstream::pipeline
