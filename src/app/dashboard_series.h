#pragma once
// DashboardSeries: the time series behind the dashboard's charts (GET /),
// kept in the server so a page opened now shows the last 15 minutes.
//
// Every `interval` (2 s) a thread takes the totals of every pipeline (records
// read, stored and dead-lettered, tokens embedded, the end-to-end latency
// histogram, records in flight, Kafka consumer lag) and appends one point of
// rates and window quantiles to a SeriesRing of `points` (450: 15 minutes):
//
//   read_per_s, stored_per_s, dead_letters_per_s, tokens_per_s
//   latency_p50_s, latency_p99_s   end to end, of the records stored in the
//                                  interval (null when none was)
//   kafka_lag                      records behind the high watermarks (null
//                                  without a Kafka source or before it knows)
//   inflight                       records read and not yet acknowledged
//
// GET /stats/series[?since=T] answers {"interval_s", "window_s", "now",
// "points": {"t": [...], "series": {"<name>": [...]}}} with the points after T
// (unix seconds), so a page polls for what is new only. docs/API.md,
// docs/openapi.yaml.
//
// Threads: Start/Stop from the owner (Stop before the PipelineSet goes); the
// route and SampleAt from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/series.h"

namespace embedstream::server {
class HttpServer;
}  // namespace embedstream::server

namespace embedstream::sources {
class KafkaSource;
}  // namespace embedstream::sources

namespace embedstream::app {

class PipelineSet;

// What the pipelines have done so far, at one time.
struct PipelineTotals {
  double t = 0;  // unix seconds
  uint64_t read = 0, stored = 0, rejected = 0;
  double tokens = 0;
  std::vector<double> latency_bounds;        // the end-to-end histogram's upper bounds
  std::vector<uint64_t> latency_cumulative;  // its cumulative counts (+Inf last)
  int64_t inflight = 0;
  std::optional<int64_t> kafka_lag;  // none: no Kafka source, or no partition known yet
};

// The totals of `set` now (and of `kafka`'s lag when given).
PipelineTotals TakeTotals(const PipelineSet& set, const sources::KafkaSource* kafka, double now);

// One point of the series from two totals (`prev` earlier than `cur`), in
// DashboardSeries' order.
std::vector<double> SeriesPoint(const PipelineTotals& prev, const PipelineTotals& cur);

struct DashboardSeriesOptions {
  std::chrono::milliseconds interval{2000};
  size_t points = 450;  // 15 minutes at 2 s
};

class DashboardSeries {
 public:
  static const std::vector<std::string>& Names();

  DashboardSeries(const PipelineSet& set, const sources::KafkaSource* kafka,
                  DashboardSeriesOptions options = {});
  ~DashboardSeries();  // Stop()
  DashboardSeries(const DashboardSeries&) = delete;
  DashboardSeries& operator=(const DashboardSeries&) = delete;

  void Start();  // the sampling thread (the first point comes one interval later)
  void Stop();   // idempotent

  // Takes the totals at `now` and appends the point since the previous ones.
  void SampleAt(double now);
  // The body of GET /stats/series for points after `since`.
  std::string Json(double since) const;
  // GET /stats/series. Before http.Start().
  void Register(server::HttpServer& http);

 private:
  const PipelineSet& set_;
  const sources::KafkaSource* kafka_;
  const DashboardSeriesOptions options_;
  SeriesRing ring_;
  std::mutex sample_mu_;  // prev_
  std::optional<PipelineTotals> prev_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace embedstream::app
