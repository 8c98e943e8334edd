#include "pipeline/sink_guard.h"

#include <algorithm>
#include <numeric>

namespace embedstream::pipeline {

SinkGuard::SinkGuard(std::string name, SinkGuardOptions options, AvailabilityFn on_availability,
                     CircuitBreaker::Clock clock)
    : name_(std::move(name)),
      options_(std::move(options)),
      on_availability_(std::move(on_availability)),
      breaker_(options_.breaker, nullptr, std::move(clock)) {}

void SinkGuard::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool SinkGuard::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return cancelled_; });
}

void SinkGuard::SetAvailable(bool available, const std::string& why) {
  if (stats_.available.exchange(available) == available) return;
  if (on_availability_) on_availability_(available, why);
}

SinkGuard::Outcome SinkGuard::Write(size_t n, const WriteFn& write) {
  Outcome out;
  std::vector<size_t> pending(n);
  std::iota(pending.begin(), pending.end(), size_t{0});
  Backoff backoff(options_.backoff);
  const int attempts = std::max(1, options_.retry_attempts);
  for (int attempt = 1; !pending.empty(); ++attempt) {
    std::vector<std::pair<size_t, Rejection>> refused;
    if (!WriteUntilAnswered(pending, write, refused)) {
      out.cancelled = true;
      return out;
    }
    stats_.written.fetch_add(pending.size() - refused.size(), std::memory_order_relaxed);
    std::vector<size_t> again;
    for (auto& [i, why] : refused) {
      why.attempts = attempt;
      // A record too large for the sink stays too large: no point retrying.
      if (why.reason == "too_large" || attempt >= attempts) {
        out.refused.emplace_back(i, std::move(why));
      } else {
        again.push_back(i);
      }
    }
    if (again.empty()) break;
    stats_.retries.fetch_add(again.size(), std::memory_order_relaxed);
    if (!Sleep(backoff.Next())) {
      out.cancelled = true;
      return out;
    }
    pending = std::move(again);
  }
  std::sort(out.refused.begin(), out.refused.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  stats_.refused.fetch_add(out.refused.size(), std::memory_order_relaxed);
  return out;
}

bool SinkGuard::WriteUntilAnswered(std::vector<size_t> items, const WriteFn& write,
                                   std::vector<std::pair<size_t, Rejection>>& refused) {
  Backoff backoff(options_.backoff);
  // Parts still to write, the next one last (halves of a split go in order).
  std::vector<std::vector<size_t>> work;
  work.push_back(std::move(items));
  while (!work.empty()) {
    std::vector<size_t> part = std::move(work.back());
    work.pop_back();
    for (;;) {
      if (!breaker_.Allow()) {
        SetAvailable(false, "circuit breaker open");
        const auto wait = std::clamp(breaker_.RetryAfter(), std::chrono::milliseconds(10),
                                     std::chrono::milliseconds(1000));
        if (!Sleep(wait)) return false;
        continue;
      }
      stats_.writes.fetch_add(1, std::memory_order_relaxed);
      WriteResult r = write(part);
      if (r.kind == WriteResult::Kind::kUnavailable) {
        breaker_.OnFailure();
        stats_.errors.fetch_add(1, std::memory_order_relaxed);
        SetAvailable(false, r.error);
        if (!Sleep(backoff.Next())) return false;
        continue;
      }
      breaker_.OnSuccess();  // the sink answered
      backoff.Reset();
      SetAvailable(true, {});
      if (r.kind == WriteResult::Kind::kTooLarge) {
        stats_.splits.fetch_add(1, std::memory_order_relaxed);
        if (part.size() == 1) {
          refused.emplace_back(part[0], Rejection{"too_large", name_, r.error, 1});
          break;
        }
        const auto mid = part.begin() + static_cast<std::ptrdiff_t>(part.size() / 2);
        work.emplace_back(mid, part.end());
        work.emplace_back(part.begin(), mid);
        break;
      }
      for (auto& [pos, why] : r.refused) {
        if (pos < part.size()) {
          refused.emplace_back(part[pos], Rejection{"sink_rejected", name_, std::move(why), 1});
        }
      }
      break;
    }
  }
  return true;
}

}  // namespace embedstream::pipeline
