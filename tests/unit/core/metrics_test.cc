#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream {
namespace {

TEST(MetricsRegistry, RendersExactExpositionForSmallRegistry) {
  MetricsRegistry reg;
  reg.GetCounter("embedstream_test_records_total", "Records seen.", {{"source", "kafka"}}).Inc(3);
  reg.GetCounter("embedstream_test_records_total", "Records seen.", {{"source", "http"}}).Inc();
  reg.GetGauge("embedstream_test_queue_depth", "Queued records.").Set(2.5);
  Histogram& h = reg.GetHistogram("embedstream_test_latency_seconds", "Latency.", {0.125, 1});
  h.Observe(0.0625);
  h.Observe(0.125);  // le is inclusive
  h.Observe(0.5);
  h.Observe(7);

  const std::string expected =
      "# HELP embedstream_test_latency_seconds Latency.\n"
      "# TYPE embedstream_test_latency_seconds histogram\n"
      "embedstream_test_latency_seconds_bucket{le=\"0.125\"} 2\n"
      "embedstream_test_latency_seconds_bucket{le=\"1\"} 3\n"
      "embedstream_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
      "embedstream_test_latency_seconds_sum 7.6875\n"
      "embedstream_test_latency_seconds_count 4\n"
      "# HELP embedstream_test_queue_depth Queued records.\n"
      "# TYPE embedstream_test_queue_depth gauge\n"
      "embedstream_test_queue_depth 2.5\n"
      "# HELP embedstream_test_records_total Records seen.\n"
      "# TYPE embedstream_test_records_total counter\n"
      "embedstream_test_records_total{source=\"http\"} 1\n"
      "embedstream_test_records_total{source=\"kafka\"} 3\n";
  EXPECT_EQ(reg.RenderPrometheus(), expected);
}

TEST(MetricsRegistry, SameNameAndLabelsReturnSameObjectInAnyLabelOrder) {
  MetricsRegistry reg;
  Counter& a = reg.GetCounter("embedstream_x_total", "x", {{"a", "1"}, {"b", "2"}});
  Counter& b = reg.GetCounter("embedstream_x_total", "x", {{"b", "2"}, {"a", "1"}});
  Counter& other = reg.GetCounter("embedstream_x_total", "x", {{"a", "1"}, {"b", "3"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  Histogram& h1 = reg.GetHistogram("embedstream_h", "h", {1, 2});
  Histogram& h2 = reg.GetHistogram("embedstream_h", "h", {1, 2});
  EXPECT_EQ(&h1, &h2);
}

TEST(MetricsRegistry, ConcurrentIncrementsSumCorrectly) {
  MetricsRegistry reg;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg] {
      // Lookup from every thread too: registration is thread-safe.
      Counter& c = reg.GetCounter("embedstream_c_total", "c");
      Histogram& h = reg.GetHistogram("embedstream_h_seconds", "h", {0.5});
      Gauge& g = reg.GetGauge("embedstream_g", "g");
      for (int i = 0; i < kPerThread; ++i) {
        c.Inc();
        h.Observe(i % 2 == 0 ? 0.25 : 1.0);
        g.Add(1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reg.GetCounter("embedstream_c_total", "c").Value(), uint64_t{kThreads} * kPerThread);
  Histogram& h = reg.GetHistogram("embedstream_h_seconds", "h", {0.5});
  EXPECT_EQ(h.Count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h.CumulativeCounts()[0], uint64_t{kThreads} * kPerThread / 2);
  EXPECT_DOUBLE_EQ(h.Sum(), kThreads * (kPerThread / 2) * 1.25);
  EXPECT_DOUBLE_EQ(reg.GetGauge("embedstream_g", "g").Value(), double{kThreads} * kPerThread);
}

TEST(Histogram, BucketsAreCumulativeAndNanGoesToInf) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 3.5, 100.0}) h.Observe(v);
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  const std::vector<uint64_t> expected = {2, 3, 5, 7};
  EXPECT_EQ(h.CumulativeCounts(), expected);
  EXPECT_EQ(h.Count(), 7u);
  EXPECT_TRUE(std::isnan(h.Sum()));
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry reg;
  reg.GetCounter("embedstream_e_total", "line one\nback\\slash \"quoted\"", {{"v", "a\"b\\c\nd"}})
      .Inc();
  const std::string out = reg.RenderPrometheus();
  EXPECT_NE(out.find("# HELP embedstream_e_total line one\\nback\\\\slash \"quoted\"\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("embedstream_e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << out;
}

TEST(MetricsRegistry, LabelledHistogramPutsLeLast) {
  MetricsRegistry reg;
  reg.GetHistogram("embedstream_b", "b", {1}, {{"stage", "encode"}}).Observe(0.5);
  const std::string out = reg.RenderPrometheus();
  EXPECT_NE(out.find("embedstream_b_bucket{stage=\"encode\",le=\"1\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("embedstream_b_bucket{stage=\"encode\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("embedstream_b_sum{stage=\"encode\"} 0.5\n"), std::string::npos);
  EXPECT_NE(out.find("embedstream_b_count{stage=\"encode\"} 1\n"), std::string::npos);
}

TEST(MetricsRegistry, CollectorsAppendAfterRegisteredFamilies) {
  MetricsRegistry reg;
  reg.GetGauge("embedstream_a", "a").Set(1);
  reg.AddCollector([](std::string& out) {
    AppendMetricHeader(out, "embedstream_lag", "Consumer lag.", "gauge");
    AppendSample(out, "embedstream_lag", {{"partition", "0"}}, 42);
    AppendSample(out, "embedstream_lag", {{"partition", "1"}},
                 std::numeric_limits<double>::infinity());
  });
  reg.AddCollector([](std::string&) { throw std::runtime_error("broken collector"); });
  EXPECT_EQ(reg.RenderPrometheus(),
            "# HELP embedstream_a a\n# TYPE embedstream_a gauge\nembedstream_a 1\n"
            "# HELP embedstream_lag Consumer lag.\n# TYPE embedstream_lag gauge\n"
            "embedstream_lag{partition=\"0\"} 42\nembedstream_lag{partition=\"1\"} +Inf\n");
}

TEST(MetricsBuckets, ExponentialAndLatency) {
  const std::vector<double> expected = {1, 2, 4, 8};
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), expected);
  const auto latency = LatencyBucketsSeconds();
  EXPECT_DOUBLE_EQ(latency.front(), 0.001);
  EXPECT_DOUBLE_EQ(latency.back(), 30.0);
  EXPECT_TRUE(std::is_sorted(latency.begin(), latency.end()));
}

TEST(MetricsRegistry, GlobalIsOneInstance) {
  EXPECT_EQ(&MetricsRegistry::Global(), &MetricsRegistry::Global());
}

}  // namespace
}  // namespace embedstream
