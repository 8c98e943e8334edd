#include "pipeline/backoff.h"

#include <gtest/gtest.h>

namespace embedstream::pipeline {
namespace {

TEST(Backoff, GrowsExponentiallyWithinJitterAndCaps) {
  Backoff b({std::chrono::milliseconds(100), std::chrono::milliseconds(2000)}, 7);
  int64_t max_seen = 0;
  for (int i = 0; i < 12; ++i) {
    const int64_t d = b.Next().count();
    const int64_t ceiling = std::min<int64_t>(2000, int64_t{100} << i);
    EXPECT_GE(d, 50);
    EXPECT_LE(d, ceiling) << "attempt " << i;
    max_seen = std::max(max_seen, d);
  }
  EXPECT_GT(max_seen, 1000);  // it does grow
  EXPECT_EQ(b.attempts(), 12);
  b.Reset();
  EXPECT_LE(b.Next().count(), 100);
}

TEST(Backoff, JitterSpreadsRetries) {
  Backoff a({std::chrono::milliseconds(100), std::chrono::milliseconds(10000)}, 1);
  Backoff b({std::chrono::milliseconds(100), std::chrono::milliseconds(10000)}, 2);
  int same = 0;
  for (int i = 0; i < 8; ++i) same += a.Next() == b.Next();
  EXPECT_LT(same, 4);
}

}  // namespace
}  // namespace embedstream::pipeline
