#include "pipeline/circuit_breaker.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::pipeline {
namespace {

using State = CircuitBreaker::State;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A clock that only moves when the test says so.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  CircuitBreaker::Clock fn() {
    return [this] { return now; };
  }
  void Advance(std::chrono::steady_clock::duration d) { now += d; }
};

struct Event {
  State from;
  State to;
  std::string why;
};

struct Fixture {
  FakeClock clock;
  std::vector<Event> events;
  CircuitBreaker::TransitionCallback Recorder() {
    return [this](State from, State to, const std::string& why) {
      events.push_back({from, to, why});
    };
  }
};

CircuitBreakerOptions ConsecutiveOnly(int n = 5) {
  CircuitBreakerOptions o;
  o.failure_threshold = n;
  o.failure_rate_threshold = 0;
  return o;
}

TEST(CircuitBreaker, StartsClosedAndAllows) {
  CircuitBreaker b;
  EXPECT_EQ(b.state(), State::kClosed);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.Allow());
  EXPECT_EQ(b.rejected_calls(), 0u);
  EXPECT_EQ(b.RetryAfter(), milliseconds(0));
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailures) {
  Fixture f;
  CircuitBreaker b(ConsecutiveOnly(5), f.Recorder(), f.clock.fn());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.Allow());
    b.OnFailure();
  }
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.consecutive_failures(), 4);
  b.OnFailure();
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.opened_total(), 1u);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].from, State::kClosed);
  EXPECT_EQ(f.events[0].to, State::kOpen);
  EXPECT_NE(f.events[0].why.find("5 consecutive failures"), std::string::npos) << f.events[0].why;
}

TEST(CircuitBreaker, SuccessResetsConsecutiveCount) {
  Fixture f;
  CircuitBreaker b(ConsecutiveOnly(3), f.Recorder(), f.clock.fn());
  for (int round = 0; round < 10; ++round) {
    b.OnFailure();
    b.OnFailure();
    EXPECT_EQ(b.consecutive_failures(), 2);
    b.OnSuccess();
    EXPECT_EQ(b.consecutive_failures(), 0);
  }
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(f.events.empty());
}

TEST(CircuitBreaker, OpensOnFailureRateOnlyWithEnoughCalls) {
  Fixture f;
  CircuitBreakerOptions o;
  o.failure_threshold = 0;  // rate only
  o.failure_rate_threshold = 0.5;
  o.window_calls = 20;
  o.window_min_calls = 10;
  CircuitBreaker b(o, f.Recorder(), f.clock.fn());
  // Alternating: 50% failures, but fewer than 10 results until the 10th.
  for (int i = 0; i < 9; ++i) {
    if (i % 2 == 0) {
      b.OnFailure();
    } else {
      b.OnSuccess();
    }
  }
  EXPECT_EQ(b.state(), State::kClosed);  // 5 of 9, below min calls
  b.OnSuccess();                         // 5 of 10 after a success: no check on success
  EXPECT_EQ(b.state(), State::kClosed);
  b.OnFailure();  // 6 of 11 = 55%
  EXPECT_EQ(b.state(), State::kOpen);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_NE(f.events[0].why.find("failure rate 55% over the last 11 calls"), std::string::npos)
      << f.events[0].why;
}

TEST(CircuitBreaker, FailureRateUsesSlidingWindow) {
  Fixture f;
  CircuitBreakerOptions o;
  o.failure_threshold = 0;
  o.failure_rate_threshold = 0.5;
  o.window_calls = 10;
  o.window_min_calls = 10;
  CircuitBreaker b(o, f.Recorder(), f.clock.fn());
  // 4 old failures then many successes: they slide out of the window.
  for (int i = 0; i < 4; ++i) b.OnFailure();
  for (int i = 0; i < 10; ++i) b.OnSuccess();
  EXPECT_EQ(b.stats().window_calls, 10);
  EXPECT_EQ(b.stats().window_failures, 0);
  // 4 new failures in the last 10: 40% < 50%.
  for (int i = 0; i < 4; ++i) b.OnFailure();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.stats().window_failures, 4);
  b.OnFailure();  // 5 of the last 10
  EXPECT_EQ(b.state(), State::kOpen);
}

TEST(CircuitBreaker, AllowFalseWhileOpenThenHalfOpenProbe) {
  Fixture f;
  auto o = ConsecutiveOnly(1);
  o.open_duration = seconds(5);
  CircuitBreaker b(o, f.Recorder(), f.clock.fn());
  b.OnFailure();
  ASSERT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.RetryAfter(), seconds(5));
  EXPECT_FALSE(b.Allow());
  f.clock.Advance(milliseconds(4'999));
  EXPECT_FALSE(b.Allow());
  EXPECT_EQ(b.RetryAfter(), milliseconds(1));
  EXPECT_EQ(b.rejected_calls(), 2u);
  EXPECT_EQ(b.state(), State::kOpen);  // only Allow() moves it on
  f.clock.Advance(milliseconds(1));
  EXPECT_EQ(b.RetryAfter(), milliseconds(0));
  EXPECT_TRUE(b.Allow());  // the probe
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_FALSE(b.Allow());  // only one probe at a time
  EXPECT_EQ(b.rejected_calls(), 3u);
}

TEST(CircuitBreaker, ProbeSuccessCloses) {
  Fixture f;
  CircuitBreaker b(ConsecutiveOnly(2), f.Recorder(), f.clock.fn());
  b.OnFailure();
  b.OnFailure();
  f.clock.Advance(seconds(5));
  ASSERT_TRUE(b.Allow());
  b.OnSuccess();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.stats().window_calls, 0);
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
  // Closing forgets the old failures: it takes 2 new ones to open again.
  b.OnFailure();
  EXPECT_EQ(b.state(), State::kClosed);
}

TEST(CircuitBreaker, ProbeFailureReopensWithDoublingDurationCappedAndResetOnClose) {
  Fixture f;
  auto o = ConsecutiveOnly(1);
  o.open_duration = seconds(5);
  o.open_duration_max = seconds(60);
  CircuitBreaker b(o, f.Recorder(), f.clock.fn());
  b.OnFailure();
  EXPECT_EQ(b.stats().open_duration, seconds(5));
  std::vector<long> durations_s;
  for (int i = 0; i < 6; ++i) {
    f.clock.Advance(b.RetryAfter());
    ASSERT_TRUE(b.Allow());
    ASSERT_EQ(b.state(), State::kHalfOpen);
    b.OnFailure();
    ASSERT_EQ(b.state(), State::kOpen);
    durations_s.push_back(static_cast<long>(b.stats().open_duration.count() / 1000));
    // Not a millisecond early.
    f.clock.Advance(b.RetryAfter() - milliseconds(1));
    EXPECT_FALSE(b.Allow());
    f.clock.Advance(milliseconds(1));
  }
  EXPECT_EQ(durations_s, (std::vector<long>{10, 20, 40, 60, 60, 60}));
  EXPECT_EQ(b.opened_total(), 7u);
  ASSERT_TRUE(b.Allow());
  b.OnSuccess();
  EXPECT_EQ(b.state(), State::kClosed);
  b.OnFailure();
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.stats().open_duration, seconds(5));
  EXPECT_EQ(b.RetryAfter(), seconds(5));
}

TEST(CircuitBreaker, SeveralProbesMustAllSucceed) {
  Fixture f;
  auto o = ConsecutiveOnly(1);
  o.half_open_max_probes = 3;
  CircuitBreaker b(o, f.Recorder(), f.clock.fn());
  b.OnFailure();
  f.clock.Advance(seconds(5));
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
  EXPECT_FALSE(b.Allow());
  b.OnSuccess();
  b.OnSuccess();
  EXPECT_EQ(b.state(), State::kHalfOpen);
  b.OnSuccess();
  EXPECT_EQ(b.state(), State::kClosed);
}

TEST(CircuitBreaker, ResultsWhileOpenAreIgnored) {
  Fixture f;
  CircuitBreaker b(ConsecutiveOnly(1), f.Recorder(), f.clock.fn());
  b.OnFailure();
  ASSERT_EQ(b.state(), State::kOpen);
  auto until = b.RetryAfter();
  b.OnFailure();  // late results of calls in flight when it opened
  b.OnSuccess();
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.opened_total(), 1u);
  EXPECT_EQ(b.RetryAfter(), until);
}

TEST(CircuitBreaker, CallbackOrderAndReasons) {
  Fixture f;
  CircuitBreaker b(ConsecutiveOnly(2), f.Recorder(), f.clock.fn());
  b.OnFailure();
  b.OnFailure();  // closed -> open
  f.clock.Advance(seconds(5));
  ASSERT_TRUE(b.Allow());  // open -> half_open
  b.OnFailure();           // half_open -> open (10 s)
  f.clock.Advance(seconds(10));
  ASSERT_TRUE(b.Allow());  // open -> half_open
  b.OnSuccess();           // half_open -> closed
  ASSERT_EQ(f.events.size(), 5u);
  const std::pair<State, State> want[] = {{State::kClosed, State::kOpen},
                                          {State::kOpen, State::kHalfOpen},
                                          {State::kHalfOpen, State::kOpen},
                                          {State::kOpen, State::kHalfOpen},
                                          {State::kHalfOpen, State::kClosed}};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(f.events[i].from, want[i].first) << i;
    EXPECT_EQ(f.events[i].to, want[i].second) << i;
    EXPECT_FALSE(f.events[i].why.empty()) << i;
  }
  EXPECT_NE(f.events[0].why.find("open for 5000 ms"), std::string::npos) << f.events[0].why;
  EXPECT_NE(f.events[2].why.find("probe failed"), std::string::npos) << f.events[2].why;
  EXPECT_NE(f.events[2].why.find("open for 10000 ms"), std::string::npos) << f.events[2].why;
  EXPECT_NE(f.events[4].why.find("succeeded"), std::string::npos) << f.events[4].why;
}

TEST(CircuitBreaker, CallbackMayReadAndReenterTheBreaker) {
  FakeClock clock;
  CircuitBreaker* self = nullptr;
  std::vector<std::string> seen;
  CircuitBreaker b(
      ConsecutiveOnly(1),
      [&](State from, State to, const std::string&) {
        // Runs without the lock held: reading does not deadlock.
        seen.push_back(std::string(StateName(from)) + "->" + StateName(to) + " now " +
                       StateName(self->state()));
        // A re-entrant call that transitions is delivered after this one
        // returns.
        if (to == State::kHalfOpen) self->OnFailure();
      },
      clock.fn());
  self = &b;
  b.OnFailure();
  clock.Advance(seconds(5));
  EXPECT_TRUE(b.Allow());
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"closed->open now open", "open->half_open now half_open",
                                      "half_open->open now open"}));
}

TEST(CircuitBreaker, StateNames) {
  EXPECT_STREQ(StateName(State::kClosed), "closed");
  EXPECT_STREQ(StateName(State::kOpen), "open");
  EXPECT_STREQ(StateName(State::kHalfOpen), "half_open");
}

TEST(CircuitBreaker, ValidateOptions) {
  EXPECT_TRUE(ValidateCircuitBreakerOptions({}).ok());
  auto bad = [](auto mutate) {
    CircuitBreakerOptions o;
    mutate(o);
    Status s = ValidateCircuitBreakerOptions(o);
    return !s.ok() && s.error().code == errc::invalid_argument && !s.error().message.empty();
  };
  EXPECT_TRUE(bad([](auto& o) { o.failure_threshold = -1; }));
  EXPECT_TRUE(bad([](auto& o) { o.failure_rate_threshold = 1.5; }));
  EXPECT_TRUE(bad([](auto& o) {
    o.failure_threshold = 0;
    o.failure_rate_threshold = 0;
  }));
  EXPECT_TRUE(bad([](auto& o) { o.window_calls = 0; }));
  EXPECT_TRUE(bad([](auto& o) { o.window_min_calls = 21; }));
  EXPECT_TRUE(bad([](auto& o) { o.open_duration = milliseconds(0); }));
  EXPECT_TRUE(bad([](auto& o) { o.open_duration_max = milliseconds(10); }));
  EXPECT_TRUE(bad([](auto& o) { o.half_open_max_probes = 0; }));
}

TEST(CircuitBreaker, ClampsInvalidOptions) {
  FakeClock clock;
  CircuitBreakerOptions o;
  o.failure_threshold = 1;
  o.window_calls = 0;
  o.half_open_max_probes = 0;
  o.open_duration = milliseconds(0);
  CircuitBreaker b(o, nullptr, clock.fn());
  b.OnFailure();
  EXPECT_EQ(b.state(), State::kOpen);
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(b.Allow());  // one probe despite half_open_max_probes = 0
  EXPECT_FALSE(b.Allow());
}

TEST(CircuitBreaker, ConcurrentCallersKeepCountsConsistent) {
  CircuitBreakerOptions o = ConsecutiveOnly(1'000'000);
  std::atomic<int> transitions{0};
  CircuitBreaker b(o, [&](State, State, const std::string&) { ++transitions; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b, t] {
      for (int i = 0; i < 10'000; ++i) {
        if (b.Allow()) {
          if ((i + t) % 2 == 0) {
            b.OnFailure();
          } else {
            b.OnSuccess();
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  auto s = b.stats();
  EXPECT_EQ(s.state, State::kClosed);
  EXPECT_EQ(s.window_calls, 20);
  EXPECT_LE(s.consecutive_failures, 40'000);
  EXPECT_EQ(transitions.load(), 0);
}

}  // namespace
}  // namespace embedstream::pipeline
