#include "core/series.h"

#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "core/metrics.h"

namespace embedstream {
namespace {

nlohmann::json Json(const SeriesRing& ring, double since) {
  JsonWriter w;
  ring.WriteJson(w, since);
  return nlohmann::json::parse(w.Take());
}

TEST(SeriesRing, KeepsTheLastCapacityPointsOldestFirst) {
  SeriesRing ring({"a", "b"}, 3);
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(Json(ring, 0), nlohmann::json::parse(R"({"t":[],"series":{"a":[],"b":[]}})"));
  for (int i = 1; i <= 5; ++i) ring.Append(100.0 + i, {double(i), double(10 * i)});
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(Json(ring, 0),
            nlohmann::json::parse(R"({"t":[103,104,105],"series":{"a":[3,4,5],"b":[30,40,50]}})"));
}

TEST(SeriesRing, SinceReturnsOnlyLaterPoints) {
  SeriesRing ring({"a"}, 10);
  for (int i = 1; i <= 4; ++i) ring.Append(i, {double(i)});
  EXPECT_EQ(Json(ring, 2)["t"], nlohmann::json::parse("[3,4]"));
  EXPECT_EQ(Json(ring, 2.5)["series"]["a"], nlohmann::json::parse("[3,4]"));
  EXPECT_EQ(Json(ring, 4)["t"], nlohmann::json::array());
  // Wrapped: the suffix is found across the ring's end.
  for (int i = 5; i <= 13; ++i) ring.Append(i, {double(i)});
  EXPECT_EQ(Json(ring, 11)["series"]["a"], nlohmann::json::parse("[12,13]"));
  EXPECT_EQ(Json(ring, 0)["t"].size(), 10u);
}

TEST(SeriesRing, NanIsNull) {
  SeriesRing ring({"p99"}, 2);
  ring.Append(1, {std::nan("")});
  ring.Append(2, {0.25});
  EXPECT_EQ(Json(ring, 0)["series"]["p99"], nlohmann::json::parse("[null,0.25]"));
}

TEST(SeriesRingDeathTest, WrongValueCountIsABug) {
  SeriesRing ring({"a", "b"}, 2);
  EXPECT_DEATH(ring.Append(1, {1.0}), "");
  EXPECT_DEATH(SeriesRing({"a", "a"}, 2), "");
}

TEST(HistogramQuantile, InterpolatesLikePrometheus) {
  const std::vector<double> bounds = {1, 2, 4};
  // 10 in (0,1], 10 in (1,2], 0 in (2,4], 0 above.
  const std::vector<uint64_t> cum = {10, 20, 20, 20};
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, bounds, cum), 1.0);   // rank 10: top of bucket 1
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.25, bounds, cum), 0.5);  // rank 5: half of (0,1]
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.75, bounds, cum), 1.5);  // rank 15: half of (1,2]
  EXPECT_DOUBLE_EQ(HistogramQuantile(1.0, bounds, cum), 2.0);
  // Observations above the highest bound: the highest bound is the answer.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.99, bounds, std::vector<uint64_t>{0, 0, 1, 10}), 4.0);
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, bounds, std::vector<uint64_t>{0, 0, 0, 0})));
  EXPECT_TRUE(std::isnan(HistogramQuantile(1.5, bounds, cum)));
}

TEST(HistogramQuantile, AgreesWithAHistogramsOwnCounts) {
  Histogram h(LatencyBucketsSeconds());
  for (int i = 0; i < 98; ++i) h.Observe(0.003);  // (0.0025, 0.005]
  h.Observe(0.7);                                 // (0.5, 1]
  h.Observe(0.8);
  const double p50 = HistogramQuantile(0.5, h.upper_bounds(), h.CumulativeCounts());
  const double p99 = HistogramQuantile(0.99, h.upper_bounds(), h.CumulativeCounts());
  EXPECT_GT(p50, 0.0025);
  EXPECT_LE(p50, 0.005);
  EXPECT_GT(p99, 0.5);
  EXPECT_LE(p99, 1.0);
}

}  // namespace
}  // namespace embedstream
