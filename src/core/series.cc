#include "core/series.h"

#include <cmath>
#include <set>

#include "core/check.h"

namespace embedstream {

SeriesRing::SeriesRing(std::vector<std::string> names, size_t capacity)
    : names_(std::move(names)), capacity_(capacity) {
  ES_CHECK(!names_.empty() && capacity_ >= 1);
  ES_CHECK(std::set<std::string>(names_.begin(), names_.end()).size() == names_.size());
  times_.assign(capacity_, 0.0);
  values_.assign(capacity_ * names_.size(), 0.0);
}

void SeriesRing::Append(double t, std::span<const double> values) {
  ES_CHECK(values.size() == names_.size());
  std::lock_guard lock(mu_);
  size_t slot;
  if (count_ < capacity_) {
    slot = (head_ + count_) % capacity_;
    ++count_;
  } else {
    slot = head_;
    head_ = (head_ + 1) % capacity_;
  }
  times_[slot] = t;
  std::copy(values.begin(), values.end(), values_.begin() + slot * names_.size());
}

size_t SeriesRing::size() const {
  std::lock_guard lock(mu_);
  return count_;
}

void SeriesRing::WriteJson(JsonWriter& w, double since) const {
  std::lock_guard lock(mu_);
  // Times only grow, so the points after `since` are a suffix of the ring.
  size_t first = 0;
  while (first < count_ && !(times_[(head_ + first) % capacity_] > since)) ++first;
  w.BeginObject().Key("t").BeginArray();
  for (size_t i = first; i < count_; ++i) w.Double(times_[(head_ + i) % capacity_]);
  w.EndArray().Key("series").BeginObject();
  for (size_t s = 0; s < names_.size(); ++s) {
    w.Key(names_[s]).BeginArray();
    for (size_t i = first; i < count_; ++i) {
      w.Double(values_[((head_ + i) % capacity_) * names_.size() + s]);  // NaN: null
    }
    w.EndArray();
  }
  w.EndObject().EndObject();
}

}  // namespace embedstream
