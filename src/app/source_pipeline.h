#pragma once
// SourcePipeline: one source, its sinks and the pipeline::Runtime between
// them, running on its own thread; PipelineSet: every pipeline of a `serve`
// process, with one /stats shape and one set of metric families for all.
//
//   SourcePipeline owns the Source, the Sinks (built by app/sink_registry
//   from sources.<name>.sinks), the Runtime and the LifecycleListener (SSE);
//   it is itself a Listener for its metrics. Start() runs Runtime::Run on a
//   thread; Stop() asks it to drain and joins.
//
// /stats (PipelineSet::WriteJson):
//   "sources": {"<source>": {read, embedded, stored, rejected, acked, batches,
//               average_batch_size, inflight_records, inflight_bytes, paused,
//               running, sinks: [...]}}
//   "sinks":   {"<sink>": {state, opened_total, rejected_calls,
//               consecutive_failures, available, written, refused, writes,
//               errors, retries, splits, sources: [...]}}  (summed over the
//               pipelines that write to it; "dlq" is every source's dead letters)
//   "dead_letters": {"total", "recent": [{time, source, id, reason, stage,
//               detail}]}  (the last 20 of every source, newest first)
// Metrics: embedstream_source_*{source}, embedstream_sink_*{source,sink}.
//
// Threads: Start/Stop from the owner; stats, JSON and metrics from any thread.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/runtime_adapters.h"
#include "core/json_writer.h"
#include "core/metrics.h"
#include "pipeline/runtime.h"

namespace embedstream::app {

struct SourcePipelineOptions {
  pipeline::RuntimeOptions runtime;
  server::EventPublisher* hub = nullptr;  // lifecycle events; null: none
  std::string model_name;
  size_t dim = 0;
  bool announce_received = true;  // false: the source announced message_received itself
  bool completes = true;          // false: another stage completes the records (text mode)
};

class SourcePipeline : public pipeline::Listener {
 public:
  SourcePipeline(std::unique_ptr<pipeline::Source> source,
                 std::vector<std::unique_ptr<pipeline::Sink>> sinks, pipeline::Embedder* embedder,
                 SourcePipelineOptions options);
  ~SourcePipeline() override;  // Stop()
  SourcePipeline(const SourcePipeline&) = delete;
  SourcePipeline& operator=(const SourcePipeline&) = delete;

  void Start();  // Runtime::Run on a thread of its own
  // Runs on the calling thread until `stop` (or a finite source ends).
  void Run(const std::atomic<bool>& stop);
  void Stop();  // drains (pipeline.drain_timeout at most) and joins; idempotent

  const std::string& name() const { return source_->name(); }
  pipeline::Source& source() { return *source_; }
  const pipeline::Source& source() const { return *source_; }
  bool running() const { return runtime_->stats().running.load(); }
  const pipeline::RuntimeStats& stats() const { return runtime_->stats(); }
  // A text its source refused before the runtime saw it (POST /documents:
  // 400 too_long), counted with the runtime's rejected_too_long.
  void CountRefusedTooLong() { refused_too_long_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t rejected_too_long() const {
    return stats().rejected_too_long.load() + refused_too_long_.load();
  }
  std::vector<const pipeline::SinkGuard*> guards() const { return runtime_->guards(); }
  std::vector<std::string> sink_names() const;
  // Its embedstream_end_to_end_latency_seconds histogram, and the tokens it
  // has embedded (the dashboard's series: app/dashboard_series.h).
  const Histogram& end_to_end_latency() const { return *e2e_latency_; }
  double tokens_embedded() const { return batch_tokens_->Sum(); }
  // Its last dead letters (kRecentDeadLetters at most), newest first.
  struct DeadLetterNote {
    double time = 0;  // unix seconds
    std::string source, id, reason, stage, detail;
  };
  static constexpr size_t kRecentDeadLetters = 20;
  std::vector<DeadLetterNote> recent_dead_letters() const;
  // The source's object in /stats "sources".
  void WriteSourceJson(JsonWriter& w) const;

  // pipeline::Listener (metrics)
  void OnBatch(size_t records, size_t tokens, std::chrono::duration<double> took) override;
  void OnStored(const pipeline::Record& r) override;
  void OnSinkWrite(const std::string& sink, size_t items,
                   std::chrono::duration<double> took) override;
  // embedstream_dead_letters_total{source,reason,stage}
  void OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) override;

 private:
  std::unique_ptr<pipeline::Source> source_;
  std::vector<std::unique_ptr<pipeline::Sink>> sinks_;
  std::unique_ptr<pipeline::Runtime> runtime_;
  std::unique_ptr<LifecycleListener> lifecycle_;
  Histogram* e2e_latency_ = nullptr;
  Histogram* embed_latency_ = nullptr;
  Histogram* batch_size_ = nullptr;
  Histogram* batch_tokens_ = nullptr;
  std::vector<std::pair<std::string, Histogram*>> sink_latency_;
  std::string source_name_;
  mutable std::mutex recent_mu_;
  std::deque<DeadLetterNote> recent_;  // newest first
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_too_long_{0};
  std::thread thread_;
};

class PipelineSet {
 public:
  PipelineSet();
  ~PipelineSet();  // StopAll()
  void Add(std::unique_ptr<SourcePipeline> p);
  SourcePipeline* Find(const std::string& source) const;
  const std::vector<std::unique_ptr<SourcePipeline>>& all() const { return pipelines_; }
  bool empty() const { return pipelines_.empty(); }
  bool running() const;  // every pipeline's runtime is running
  void StartAll();
  // Stops (drains) in the order given by `order` (source names), then the rest.
  void StopAll(const std::vector<std::string>& order = {});
  // "sources": {...}, "sinks": {...} as keys of the object being written.
  void WriteJson(JsonWriter& w) const;

 private:
  void WriteDeadLetters(JsonWriter& w) const;  // "dead_letters": {...}

  std::vector<std::unique_ptr<SourcePipeline>> pipelines_;
};

}  // namespace embedstream::app
