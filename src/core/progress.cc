#include "core/progress.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

namespace embedstream {
namespace {

// 1234567 -> "1,234,567"
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 75 -> "1m15s", 3725 -> "1h02m", 9 -> "9s"
std::string Duration(double seconds) {
  const auto s = static_cast<uint64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

}  // namespace

bool Progress::DefaultEnabled() {
  if (const char* v = std::getenv("EMBEDSTREAM_PROGRESS"); v != nullptr && *v != '\0') {
    return std::strcmp(v, "0") != 0;
  }
  return ::isatty(STDERR_FILENO) != 0;
}

Progress::Progress(ProgressOptions options)
    : options_(std::move(options)),
      enabled_(options_.enabled < 0 ? DefaultEnabled() : options_.enabled != 0),
      start_(std::chrono::steady_clock::now()),
      total_(options_.total) {}

Progress::~Progress() { Finish(); }

std::string Progress::Format(const std::string& label, uint64_t done, uint64_t total,
                             const std::string& unit, double seconds, bool final) {
  fmt::memory_buffer out;
  fmt::format_to(std::back_inserter(out), "{}: {}", label, Grouped(done));
  if (total > 0) fmt::format_to(std::back_inserter(out), "/{}", Grouped(total));
  fmt::format_to(std::back_inserter(out), " {}", unit);
  if (total > 0) {
    fmt::format_to(std::back_inserter(out), " ({:.1f}%)",
                   100.0 * static_cast<double>(done) / static_cast<double>(total));
  }
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  fmt::format_to(std::back_inserter(out), "  {}/s", Grouped(static_cast<uint64_t>(rate + 0.5)));
  if (final) {
    fmt::format_to(std::back_inserter(out), "  in {}", Duration(seconds));
  } else if (total > done && rate > 0) {
    fmt::format_to(std::back_inserter(out), "  ETA {}",
                   Duration(static_cast<double>(total - done) / rate));
  }
  return fmt::to_string(out);
}

void Progress::Add(uint64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  MaybeDraw(false);
}

void Progress::Set(uint64_t done) {
  done_.store(done, std::memory_order_relaxed);
  MaybeDraw(false);
}

void Progress::SetTotal(uint64_t total) { total_.store(total, std::memory_order_relaxed); }

void Progress::Finish() { MaybeDraw(true); }

void Progress::MaybeDraw(bool final) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count();
  if (!final && now_ns < next_draw_ns_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(draw_mu_);
  if (finished_) return;
  if (!final && now_ns < next_draw_ns_.load(std::memory_order_relaxed)) return;
  next_draw_ns_.store(
      now_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.interval).count(),
      std::memory_order_relaxed);
  const std::string line = Format(options_.label, done_.load(std::memory_order_relaxed),
                                  total_.load(std::memory_order_relaxed), options_.unit,
                                  std::chrono::duration<double>(now - start_).count(), final);
  if (::isatty(::fileno(options_.out)) != 0) {
    // \r and erase to the end of the line: a shorter line leaves no tail.
    std::fprintf(options_.out, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
  } else {  // forced on into a file or pipe: whole lines
    std::fprintf(options_.out, "%s\n", line.c_str());
  }
  std::fflush(options_.out);
  if (final) finished_ = true;
}

}  // namespace embedstream
