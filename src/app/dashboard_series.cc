#include "app/dashboard_series.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "app/source_pipeline.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/metrics.h"
#include "server/http_server.h"
#include "server/http_types.h"
#include "sources/kafka_source.h"

namespace embedstream::app {

PipelineTotals TakeTotals(const PipelineSet& set, const sources::KafkaSource* kafka, double now) {
  PipelineTotals t;
  t.t = now;
  for (const auto& p : set.all()) {
    const auto& s = p->stats();
    t.read += s.read.load();
    t.stored += s.stored.load();
    t.rejected += s.rejected.load();
    t.inflight += s.inflight_records.load();
    t.tokens += p->tokens_embedded();
    const Histogram& h = p->end_to_end_latency();
    const std::vector<uint64_t> counts = h.CumulativeCounts();
    if (t.latency_cumulative.empty()) {
      t.latency_bounds = h.upper_bounds();
      t.latency_cumulative = counts;
    } else if (h.upper_bounds() == t.latency_bounds) {
      for (size_t i = 0; i < counts.size(); ++i) t.latency_cumulative[i] += counts[i];
    }
  }
  if (kafka != nullptr) {
    int64_t lag = 0;
    bool known = false;
    for (const auto& l : kafka->Lag()) {
      if (l.lag < 0) continue;
      lag += l.lag;
      known = true;
    }
    if (known) t.kafka_lag = lag;
  }
  return t;
}

std::vector<double> SeriesPoint(const PipelineTotals& prev, const PipelineTotals& cur) {
  const double nan = std::nan("");
  const double dt = cur.t - prev.t;
  // A counter that went down (a pipeline replaced) counts as a fresh start.
  auto rate = [dt](double before, double now) {
    if (!(dt > 0)) return 0.0;
    return (now >= before ? now - before : now) / dt;
  };
  double p50 = nan, p99 = nan;
  if (!cur.latency_cumulative.empty()) {
    std::vector<uint64_t> window = cur.latency_cumulative;
    if (prev.latency_cumulative.size() == window.size() &&
        prev.latency_bounds == cur.latency_bounds &&
        prev.latency_cumulative.back() <= window.back()) {
      for (size_t i = 0; i < window.size(); ++i) {
        window[i] -= std::min(window[i], prev.latency_cumulative[i]);
      }
    }
    p50 = HistogramQuantile(0.50, cur.latency_bounds, window);
    p99 = HistogramQuantile(0.99, cur.latency_bounds, window);
  }
  return {rate(static_cast<double>(prev.read), static_cast<double>(cur.read)),
          rate(static_cast<double>(prev.stored), static_cast<double>(cur.stored)),
          rate(static_cast<double>(prev.rejected), static_cast<double>(cur.rejected)),
          rate(prev.tokens, cur.tokens),
          p50,
          p99,
          cur.kafka_lag ? static_cast<double>(*cur.kafka_lag) : nan,
          static_cast<double>(std::max<int64_t>(0, cur.inflight))};
}

const std::vector<std::string>& DashboardSeries::Names() {
  static const std::vector<std::string> names = {
      "read_per_s",    "stored_per_s",  "dead_letters_per_s", "tokens_per_s",
      "latency_p50_s", "latency_p99_s", "kafka_lag",          "inflight"};
  return names;
}

DashboardSeries::DashboardSeries(const PipelineSet& set, const sources::KafkaSource* kafka,
                                 DashboardSeriesOptions options)
    : set_(set),
      kafka_(kafka),
      options_(options),
      ring_(Names(), std::max<size_t>(1, options.points)) {}

DashboardSeries::~DashboardSeries() { Stop(); }

void DashboardSeries::Start() {
  if (thread_.joinable()) return;
  SampleAt(UnixSeconds());  // the baseline; the first point follows one interval later
  thread_ = std::thread([this] {
    std::unique_lock lock(stop_mu_);
    auto next = std::chrono::steady_clock::now() + options_.interval;
    while (!stop_cv_.wait_until(lock, next, [this] { return stop_; })) {
      lock.unlock();
      SampleAt(UnixSeconds());
      lock.lock();
      next += options_.interval;
      // Behind by more than an interval (a stalled machine): start again from now.
      if (next < std::chrono::steady_clock::now()) {
        next = std::chrono::steady_clock::now() + options_.interval;
      }
    }
  });
}

void DashboardSeries::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DashboardSeries::SampleAt(double now) {
  PipelineTotals cur = TakeTotals(set_, kafka_, now);
  std::lock_guard lock(sample_mu_);
  if (prev_ && now > prev_->t) ring_.Append(now, SeriesPoint(*prev_, cur));
  if (!prev_ || now > prev_->t) prev_ = std::move(cur);
}

std::string DashboardSeries::Json(double since) const {
  const double interval_s = static_cast<double>(options_.interval.count()) / 1000.0;
  JsonWriter w;
  w.BeginObject()
      .Key("interval_s")
      .Double(interval_s)
      .Key("window_s")
      .Double(interval_s * static_cast<double>(ring_.capacity()))
      .Key("now")
      .Double(UnixSeconds())
      .Key("points");
  ring_.WriteJson(w, since);
  w.EndObject();
  return w.Take();
}

void DashboardSeries::Register(server::HttpServer& http) {
  http.Route("GET", "/stats/series", [this](const server::HttpRequest& req) {
    double since = 0;
    if (auto it = req.query.find("since"); it != req.query.end()) {
      const std::string& v = it->second;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
      if (ec != std::errc() || ptr != v.data() + v.size() || !std::isfinite(since)) {
        return server::JsonError(400, "invalid_since",
                                 "since is a time in unix seconds, e.g. 1765100000.5");
      }
    }
    return server::JsonOk(Json(since));
  });
}

}  // namespace embedstream::app
