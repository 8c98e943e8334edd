#pragma once
// Progress of long work on stderr, for people at a terminal: one line redrawn
// in place at most every `interval`:
//
//   embed: 12,345/100,000 records (12.3%)  1,234/s  ETA 1m11s
//
// and a last line with a newline at Finish. Quiet when stderr is not a
// terminal (pipes, logs, CI), unless EMBEDSTREAM_PROGRESS=1 forces it on
// (EMBEDSTREAM_PROGRESS=0 forces it off). Add/Set are thread-safe and cheap
// (an atomic; the redraw happens on the calling thread when due).
//
//   Progress p({.label = "gen", .total = n, .unit = "events"});
//   for (...) { ...; p.Add(); }
//   p.Finish();

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace embedstream {

struct ProgressOptions {
  std::string label;
  uint64_t total = 0;          // 0: unknown (no percentage, no ETA)
  std::string unit = "items";  // "records", "rows", "lines", ...
  std::chrono::milliseconds interval{250};
  std::FILE* out = stderr;
  // -1: stderr is a terminal, or EMBEDSTREAM_PROGRESS says; 0/1: as given.
  int enabled = -1;
};

class Progress {
 public:
  explicit Progress(ProgressOptions options);
  ~Progress();  // Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n = 1);
  void Set(uint64_t done);
  void SetTotal(uint64_t total);
  // The final line (once); later calls do nothing.
  void Finish();
  bool enabled() const { return enabled_; }

  // "label: done/total unit (p%)  rate/s  ETA t" (pure: unit-tested).
  static std::string Format(const std::string& label, uint64_t done, uint64_t total,
                            const std::string& unit, double seconds, bool final);
  // Whether progress shows by default: EMBEDSTREAM_PROGRESS, else isatty(stderr).
  static bool DefaultEnabled();

 private:
  void MaybeDraw(bool final);

  const ProgressOptions options_;
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_;
  std::atomic<int64_t> next_draw_ns_{0};
  std::mutex draw_mu_;
  bool finished_ = false;  // guarded by draw_mu_
};

}  // namespace embedstream
