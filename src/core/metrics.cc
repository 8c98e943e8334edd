#include "core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>

#include "core/check.h"
#include "core/logging.h"

namespace embedstream {
namespace {

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Sorted by label name, so {a,b} and {b,a} name the same series.
Labels Canonical(const Labels& labels) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    ES_CHECK(IsValidLabelName(sorted[i].first));
    ES_CHECK(i == 0 || sorted[i].first != sorted[i - 1].first);
  }
  return sorted;
}

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, res.ptr);
  }
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void AppendEscapedHelp(std::string& out, std::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// name{k="v",...,extra_key="extra_value"}; the extra label is `le` for buckets.
void AppendSeriesName(std::string& out, std::string_view name, const Labels& labels,
                      std::string_view extra_key = {}, std::string_view extra_value = {}) {
  out += name;
  if (labels.empty() && extra_key.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += "=\"";
    AppendEscapedLabelValue(out, value);
    out += '"';
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += extra_key;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

}  // namespace

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    ES_CHECK(std::isfinite(upper_bounds_[i]));
    ES_CHECK(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i]);
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v (le is inclusive); NaN and values above every bound: +Inf.
  size_t index = upper_bounds_.size();
  if (!std::isnan(v)) {
    index = static_cast<size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) -
                                upper_bounds_.begin());
  }
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> counts(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

uint64_t Histogram::Count() const { return CumulativeCounts().back(); }

// ---- MetricsRegistry ----

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry& MetricsRegistry::Global() {
  static auto* registry = new MetricsRegistry();  // never destroyed: see header
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(const std::string& name,
                                                       const std::string& help, Type type) {
  ES_CHECK(IsValidMetricName(name));
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  }
  ES_CHECK(it->second.type == type);  // one name, one type
  return it->second;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  Labels key = Canonical(labels);
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyLocked(name, help, Type::kCounter).counters[std::move(key)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  Labels key = Canonical(labels);
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyLocked(name, help, Type::kGauge).gauges[std::move(key)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> upper_bounds, const Labels& labels) {
  Labels key = Canonical(labels);
  for (const auto& label : key) ES_CHECK(label.first != "le");
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyLocked(name, help, Type::kHistogram).histograms[std::move(key)];
  if (!slot) {
    slot = std::make_unique<Histogram>(std::move(upper_bounds));
  } else {
    ES_CHECK(slot->upper_bounds() == upper_bounds);
  }
  return *slot;
}

void MetricsRegistry::AddCollector(std::function<void(std::string& out)> append_exposition_lines) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(append_exposition_lines));
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::string out;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
    for (const auto& [name, family] : families_) {
      switch (family.type) {
        case Type::kCounter:
          AppendMetricHeader(out, name, family.help, "counter");
          for (const auto& [labels, counter] : family.counters) {
            AppendSeriesName(out, name, labels);
            out += ' ';
            AppendUint(out, counter->Value());
            out += '\n';
          }
          break;
        case Type::kGauge:
          AppendMetricHeader(out, name, family.help, "gauge");
          for (const auto& [labels, gauge] : family.gauges) {
            AppendSample(out, name, labels, gauge->Value());
          }
          break;
        case Type::kHistogram: {
          AppendMetricHeader(out, name, family.help, "histogram");
          const std::string bucket_name = name + "_bucket";
          std::string le;
          for (const auto& [labels, histogram] : family.histograms) {
            const std::vector<uint64_t> counts = histogram->CumulativeCounts();
            const auto& bounds = histogram->upper_bounds();
            for (size_t i = 0; i < counts.size(); ++i) {
              le.clear();
              if (i < bounds.size()) {
                AppendDouble(le, bounds[i]);
              } else {
                le = "+Inf";
              }
              AppendSeriesName(out, bucket_name, labels, "le", le);
              out += ' ';
              AppendUint(out, counts[i]);
              out += '\n';
            }
            AppendSample(out, name + "_sum", labels, histogram->Sum());
            // _count from the same snapshot as the buckets, so it equals +Inf.
            AppendSeriesName(out, name + "_count", labels);
            out += ' ';
            AppendUint(out, counts.back());
            out += '\n';
          }
          break;
        }
      }
    }
  }
  for (const auto& collect : collectors) {
    std::string lines;
    try {
      collect(lines);
    } catch (const std::exception& e) {
      GetLogger("core")->error("metrics collector threw: {}", e.what());
      continue;
    }
    out += lines;
    if (!lines.empty() && lines.back() != '\n') out += '\n';
  }
  return out;
}

// ---- buckets and formatting helpers ----

std::vector<double> LatencyBucketsSeconds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  ES_CHECK(start > 0 && factor > 1 && count >= 1);
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

void AppendMetricHeader(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscapedHelp(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void AppendSample(std::string& out, std::string_view name, const Labels& labels, double value) {
  AppendSeriesName(out, name, labels);
  out += ' ';
  AppendDouble(out, value);
  out += '\n';
}

void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void AppendScalarMetric(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type, double value) {
  AppendMetricHeader(out, name, help, type);
  AppendSample(out, name, {}, value);
}

double HistogramQuantile(double q, std::span<const double> upper_bounds,
                         std::span<const uint64_t> cumulative) {
  ES_CHECK(cumulative.size() == upper_bounds.size() + 1);
  const uint64_t total = cumulative.back();
  if (total == 0 || !(q >= 0.0 && q <= 1.0)) return std::nan("");
  const double rank = q * static_cast<double>(total);
  size_t b = 0;
  while (b < upper_bounds.size() && static_cast<double>(cumulative[b]) < rank) ++b;
  if (b == upper_bounds.size()) {  // in +Inf: the highest bound is all we know
    return upper_bounds.empty() ? std::nan("") : upper_bounds.back();
  }
  const double lower = b == 0 ? 0.0 : upper_bounds[b - 1];
  const double below = b == 0 ? 0.0 : static_cast<double>(cumulative[b - 1]);
  const double in_bucket = static_cast<double>(cumulative[b]) - below;
  if (in_bucket <= 0) return upper_bounds[b];
  return lower + (upper_bounds[b] - lower) * ((rank - below) / in_bucket);
}

}  // namespace embedstream
