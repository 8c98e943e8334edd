#pragma once
// Metrics: counters, gauges and histograms rendered in the Prometheus text
// exposition format 0.0.4. No external library.
//
// Threads: Inc/Set/Add/Observe are lock-free (atomics) and safe from any
// thread. Registration (Get*, AddCollector) takes the registry's mutex, so
// look a metric up once and keep the reference; references stay valid for the
// registry's life. RenderPrometheus may run on any thread, concurrently with
// updates (each value is read atomically; a scrape is not a global snapshot).
//
// Naming: `embedstream_<component>_<what>_<unit>`, counters end in `_total`.
// Metric and label names are constants of our code: an invalid name, or one
// name registered with two types, is a bug and stops the process (ES_CHECK).
// Label values may come from input; they are escaped on output.
//
// Example:
//   auto& reg = MetricsRegistry::Global();
//   Counter& sent = reg.GetCounter("embedstream_sink_records_total",
//                                  "Records written by a sink.", {{"sink", "kafka"}});
//   Histogram& lat = reg.GetHistogram("embedstream_sink_write_seconds",
//                                     "Sink write latency.", LatencyBucketsSeconds(),
//                                     {{"sink", "kafka"}});
//   sent.Inc(batch.size());
//   lat.Observe(elapsed_s);

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace embedstream {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into buckets with fixed upper bounds (`le`, inclusive)
// plus an implicit +Inf bucket. Buckets are stored per bucket (not cumulative)
// and summed at render time, so Observe is one binary search and two atomics.
// NaN observations land in +Inf only.
class Histogram {
 public:
  // upper_bounds: strictly increasing, finite (ES_CHECK).
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double v);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Cumulative counts, one per upper bound plus the +Inf bucket last.
  std::vector<uint64_t> CumulativeCounts() const;
  uint64_t Count() const;  // equals CumulativeCounts().back()
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // upper_bounds_.size() + 1
  std::atomic<double> sum_{0.0};
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry that /metrics renders. Never destroyed, so
  // metrics may be touched from threads that outlive main().
  static MetricsRegistry& Global();

  // Same (name, labels) returns the same object; label order does not matter.
  // The help text of the first registration of a name is kept.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // A second call for the same (name, labels) must pass the same bounds.
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds, const Labels& labels = {});

  // Appends whole exposition lines computed at scrape time (e.g. consumer lag
  // per partition), with their own # HELP / # TYPE (see AppendMetricHeader,
  // AppendSample). Runs on the scraping thread without the registry's lock, so
  // it may call Get*; it must not throw (an exception is logged and skipped).
  void AddCollector(std::function<void(std::string& out)> append_exposition_lines);

  // Families sorted by name, series sorted by labels, then collectors' lines
  // in registration order.
  std::string RenderPrometheus() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyLocked(const std::string& name, const std::string& help, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// 0.001 s .. 30 s: 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30 s.
std::vector<double> LatencyBucketsSeconds();
// start, start*factor, ... (count bounds); start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// The q-quantile (0..1) of observations counted into buckets, estimated as
// Prometheus' histogram_quantile does: linear within the bucket that holds
// the rank, the lowest bucket starting at 0, the +Inf bucket answered with
// the highest finite bound. `cumulative` has one count per upper bound plus
// the +Inf bucket (Histogram::CumulativeCounts, or a difference of two of
// them for a window). NaN when it counts nothing.
double HistogramQuantile(double q, std::span<const double> upper_bounds,
                         std::span<const uint64_t> cumulative);

// Helpers for collectors and for the renderer itself.
// "# HELP name help\n# TYPE name type\n" (help escaped).
void AppendMetricHeader(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type);
// "name{k="v",...} value\n": label values escaped, value in the shortest
// round-trip form, +Inf / -Inf / NaN spelled as Prometheus expects.
void AppendSample(std::string& out, std::string_view name, const Labels& labels, double value);
// One unlabelled series with its header: "# HELP/# TYPE" then "name value".
void AppendScalarMetric(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type, double value);
// Label value escaping: backslash, double quote and newline.
void AppendEscapedLabelValue(std::string& out, std::string_view value);

}  // namespace embedstream
