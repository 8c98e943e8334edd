#pragma once
// SeriesRing: the last `capacity` points of a few series sampled together at
// a steady interval (one time, one value per series), the oldest dropped when
// full. The dashboard's charts (GET /stats/series) keep 15 minutes in one.
// Memory is fixed at construction: capacity * (1 + series) doubles.
//
// Threads: Append and WriteJson may run on different threads (a mutex).
//
// Example:
//   SeriesRing ring({"stored_per_s", "latency_p99_s"}, 450);
//   ring.Append(UnixSeconds(), {12.5, 0.031});
//   ring.Append(UnixSeconds(), {0.0, NAN});   // NaN: no value (JSON null)
//   JsonWriter w; ring.WriteJson(w, /*since=*/0);

#include <cstddef>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/json_writer.h"

namespace embedstream {

class SeriesRing {
 public:
  // names: at least one, each once (ES_CHECK); capacity >= 1.
  SeriesRing(std::vector<std::string> names, size_t capacity);

  // values: one per name, in the names' order (ES_CHECK); NaN means none.
  void Append(double t, std::span<const double> values);
  void Append(double t, std::initializer_list<double> values) {
    Append(t, std::span<const double>(values.begin(), values.size()));
  }

  size_t size() const;
  size_t capacity() const { return capacity_; }
  const std::vector<std::string>& names() const { return names_; }

  // Writes {"t": [...], "series": {"<name>": [...], ...}} with the points
  // whose time is after `since`, oldest first; NaN values as null.
  void WriteJson(JsonWriter& w, double since) const;

 private:
  const std::vector<std::string> names_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<double> times_;   // capacity_, a ring from head_
  std::vector<double> values_;  // capacity_ * names_.size(), point-major
  size_t head_ = 0;             // the oldest point
  size_t count_ = 0;
};

}  // namespace embedstream
