#include "pipeline/circuit_breaker.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace embedstream::pipeline {
namespace {

using std::chrono::milliseconds;

CircuitBreakerOptions Clamp(CircuitBreakerOptions o) {
  o.failure_threshold = std::max(o.failure_threshold, 0);
  o.failure_rate_threshold = std::clamp(o.failure_rate_threshold, 0.0, 1.0);
  o.window_calls = std::max(o.window_calls, 1);
  o.window_min_calls = std::clamp(o.window_min_calls, 1, o.window_calls);
  o.open_duration = std::max(o.open_duration, milliseconds(1));
  o.open_duration_max = std::max(o.open_duration_max, o.open_duration);
  o.half_open_max_probes = std::max(o.half_open_max_probes, 1);
  return o;
}

}  // namespace

Status ValidateCircuitBreakerOptions(const CircuitBreakerOptions& o) {
  auto bad = [](std::string m) { return Status(Error(errc::invalid_argument, std::move(m))); };
  if (o.failure_threshold < 0) return bad("failure_threshold must be >= 0 (0 disables it)");
  if (!(o.failure_rate_threshold >= 0.0 && o.failure_rate_threshold <= 1.0)) {
    return bad("failure_rate_threshold must be in [0, 1] (0 disables it)");
  }
  if (o.failure_threshold == 0 && o.failure_rate_threshold == 0.0) {
    return bad("failure_threshold and failure_rate_threshold are both 0: the breaker never opens");
  }
  if (o.window_calls < 1) return bad("window_calls must be >= 1");
  if (o.window_min_calls < 1 || o.window_min_calls > o.window_calls) {
    return bad("window_min_calls must be in [1, window_calls]");
  }
  if (o.open_duration.count() < 1) return bad("open_duration must be >= 1 ms");
  if (o.open_duration_max < o.open_duration) {
    return bad("open_duration_max must be >= open_duration");
  }
  if (o.half_open_max_probes < 1) return bad("half_open_max_probes must be >= 1");
  return Status::Ok();
}

const char* StateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, TransitionCallback on_transition,
                               Clock clock)
    : options_(Clamp(options)),
      on_transition_(std::move(on_transition)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })),
      window_(static_cast<size_t>(options_.window_calls), false),
      open_duration_(options_.open_duration) {}

bool CircuitBreaker::Allow() {
  std::unique_lock lock(mu_);
  if (state_ == State::kOpen) {
    if (clock_() < open_until_) {
      ++rejected_calls_;
      return false;
    }
    probes_in_flight_ = 0;
    probes_succeeded_ = 0;
    TransitionTo(State::kHalfOpen,
                 "open for " + std::to_string(open_duration_.count()) + " ms; probing the sink");
  }
  bool allowed = true;
  if (state_ == State::kHalfOpen) {
    if (probes_in_flight_ < options_.half_open_max_probes) {
      ++probes_in_flight_;
    } else {
      ++rejected_calls_;
      allowed = false;
    }
  }
  Deliver(lock);
  return allowed;
}

void CircuitBreaker::OnSuccess() {
  std::unique_lock lock(mu_);
  switch (state_) {
    case State::kClosed:
      consecutive_failures_ = 0;
      Record(false);
      break;
    case State::kOpen:
      break;
    case State::kHalfOpen:
      probes_in_flight_ = std::max(probes_in_flight_ - 1, 0);
      if (++probes_succeeded_ >= options_.half_open_max_probes) {
        consecutive_failures_ = 0;
        ClearWindow();
        open_duration_ = options_.open_duration;
        TransitionTo(State::kClosed, std::to_string(probes_succeeded_) + " probe(s) succeeded");
      }
      break;
  }
  Deliver(lock);
}

void CircuitBreaker::OnFailure() {
  std::unique_lock lock(mu_);
  switch (state_) {
    case State::kClosed: {
      ++consecutive_failures_;
      Record(true);
      if (options_.failure_threshold > 0 && consecutive_failures_ >= options_.failure_threshold) {
        Open(std::to_string(consecutive_failures_) + " consecutive failures");
        break;
      }
      if (options_.failure_rate_threshold > 0 && window_size_ >= options_.window_min_calls) {
        double rate = static_cast<double>(window_failures_) / window_size_;
        if (rate >= options_.failure_rate_threshold) {
          char why[96];
          std::snprintf(why, sizeof why, "failure rate %.0f%% over the last %d calls", rate * 100.0,
                        window_size_);
          Open(why);
        }
      }
      break;
    }
    case State::kOpen:
      break;
    case State::kHalfOpen:
      ++consecutive_failures_;
      open_duration_ = std::min(open_duration_ * 2, options_.open_duration_max);
      Open("probe failed");
      break;
  }
  Deliver(lock);
}

void CircuitBreaker::Record(bool failure) {
  if (window_size_ == options_.window_calls) {
    if (window_[window_next_]) --window_failures_;
  } else {
    ++window_size_;
  }
  window_[window_next_] = failure;
  if (failure) ++window_failures_;
  window_next_ = (window_next_ + 1) % window_.size();
}

void CircuitBreaker::ClearWindow() {
  std::fill(window_.begin(), window_.end(), false);
  window_next_ = 0;
  window_size_ = 0;
  window_failures_ = 0;
}

void CircuitBreaker::Open(std::string why) {
  ++opened_total_;
  open_until_ = clock_() + open_duration_;
  probes_in_flight_ = 0;
  probes_succeeded_ = 0;
  TransitionTo(State::kOpen,
               std::move(why) + "; open for " + std::to_string(open_duration_.count()) + " ms");
}

void CircuitBreaker::TransitionTo(State to, std::string why) {
  State from = state_;
  state_ = to;
  if (on_transition_) pending_.push_back({from, to, std::move(why)});
}

void CircuitBreaker::Deliver(std::unique_lock<std::mutex>& lock) {
  if (delivering_) return;  // the delivering thread (maybe this one, re-entered) runs them
  delivering_ = true;
  while (!pending_.empty()) {
    Transition t = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    on_transition_(t.from, t.to, t.why);
    lock.lock();
  }
  delivering_ = false;
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

uint64_t CircuitBreaker::opened_total() const {
  std::lock_guard lock(mu_);
  return opened_total_;
}

uint64_t CircuitBreaker::rejected_calls() const {
  std::lock_guard lock(mu_);
  return rejected_calls_;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return consecutive_failures_;
}

CircuitBreaker::Stats CircuitBreaker::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.state = state_;
  s.opened_total = opened_total_;
  s.rejected_calls = rejected_calls_;
  s.consecutive_failures = consecutive_failures_;
  s.window_calls = window_size_;
  s.window_failures = window_failures_;
  s.open_duration = open_duration_;
  return s;
}

std::chrono::milliseconds CircuitBreaker::RetryAfter() const {
  std::lock_guard lock(mu_);
  if (state_ != State::kOpen) return milliseconds(0);
  auto left = open_until_ - clock_();
  if (left <= std::chrono::steady_clock::duration::zero()) return milliseconds(0);
  return std::chrono::ceil<milliseconds>(left);
}

}  // namespace embedstream::pipeline
