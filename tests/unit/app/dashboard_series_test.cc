#include "app/dashboard_series.h"

#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "app/source_pipeline.h"

namespace embedstream::app {
namespace {

PipelineTotals Totals(double t, uint64_t read, uint64_t stored, uint64_t rejected, double tokens,
                      std::vector<uint64_t> latency) {
  PipelineTotals x;
  x.t = t;
  x.read = read;
  x.stored = stored;
  x.rejected = rejected;
  x.tokens = tokens;
  x.latency_bounds = {0.01, 0.1, 1};
  x.latency_cumulative = std::move(latency);
  x.inflight = 7;
  return x;
}

enum { kRead, kStored, kDead, kTokens, kP50, kP99, kLag, kInflight };

TEST(SeriesPoint, RatesAndWindowQuantiles) {
  // Before: 100 fast records. In the 2 s after: 10 records, all slow.
  PipelineTotals a = Totals(1000, 100, 100, 0, 1000, {100, 100, 100, 100});
  PipelineTotals b = Totals(1002, 120, 110, 4, 1500, {100, 100, 110, 110});
  b.kafka_lag = 42;
  const auto p = SeriesPoint(a, b);
  ASSERT_EQ(p.size(), DashboardSeries::Names().size());
  EXPECT_DOUBLE_EQ(p[kRead], 10.0);
  EXPECT_DOUBLE_EQ(p[kStored], 5.0);
  EXPECT_DOUBLE_EQ(p[kDead], 2.0);
  EXPECT_DOUBLE_EQ(p[kTokens], 250.0);
  // Only the window's records count: all in (0.1, 1].
  EXPECT_GT(p[kP50], 0.1);
  EXPECT_LE(p[kP50], 1.0);
  EXPECT_GT(p[kP99], p[kP50]);
  EXPECT_DOUBLE_EQ(p[kLag], 42.0);
  EXPECT_DOUBLE_EQ(p[kInflight], 7.0);
}

TEST(SeriesPoint, NothingStoredMeansNoLatencyAndNoLagWithoutKafka) {
  PipelineTotals a = Totals(10, 5, 5, 0, 50, {5, 5, 5, 5});
  PipelineTotals b = Totals(12, 5, 5, 0, 50, {5, 5, 5, 5});
  const auto p = SeriesPoint(a, b);
  EXPECT_DOUBLE_EQ(p[kStored], 0.0);
  EXPECT_TRUE(std::isnan(p[kP50]));
  EXPECT_TRUE(std::isnan(p[kP99]));
  EXPECT_TRUE(std::isnan(p[kLag]));
}

TEST(SeriesPoint, ACounterThatWentDownStartsAgain) {
  PipelineTotals a = Totals(10, 50, 50, 0, 0, {50, 50, 50, 50});
  PipelineTotals b = Totals(12, 4, 4, 0, 0, {4, 4, 4, 4});
  const auto p = SeriesPoint(a, b);
  EXPECT_DOUBLE_EQ(p[kRead], 2.0);
  EXPECT_DOUBLE_EQ(p[kStored], 2.0);
  EXPECT_LE(p[kP99], 0.01);  // the 4 new ones, not a negative window
}

TEST(DashboardSeries, SamplesAnEmptySetAndAnswersSince) {
  PipelineSet set;
  DashboardSeries series(set, nullptr, {.interval = std::chrono::milliseconds(2000), .points = 3});
  series.SampleAt(100);  // baseline: no point yet
  auto j = nlohmann::json::parse(series.Json(0));
  EXPECT_EQ(j["interval_s"], 2.0);
  EXPECT_EQ(j["window_s"], 6.0);
  EXPECT_TRUE(j["points"]["t"].empty());
  for (int i = 1; i <= 4; ++i) series.SampleAt(100 + 2 * i);
  series.SampleAt(100 + 2 * 4);  // not later than the last: ignored
  j = nlohmann::json::parse(series.Json(0));
  EXPECT_EQ(j["points"]["t"], nlohmann::json::parse("[104,106,108]"));
  for (const auto& name : DashboardSeries::Names()) {
    ASSERT_TRUE(j["points"]["series"].contains(name)) << name;
    EXPECT_EQ(j["points"]["series"][name].size(), 3u) << name;
  }
  EXPECT_EQ(j["points"]["series"]["stored_per_s"], nlohmann::json::parse("[0,0,0]"));
  EXPECT_EQ(j["points"]["series"]["latency_p99_s"], nlohmann::json::parse("[null,null,null]"));
  j = nlohmann::json::parse(series.Json(106));
  EXPECT_EQ(j["points"]["t"], nlohmann::json::parse("[108]"));
}

}  // namespace
}  // namespace embedstream::app
