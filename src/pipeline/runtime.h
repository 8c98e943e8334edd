#pragma once
// Runtime: one pipeline from one Source to a set of Sinks, the same for every
// path into the system.
//
//   intake thread (Run):  Source::Read -> tokenize -> batch (token budget,
//                         deadline = earliest arrival + max_wait, linger)
//   encoder thread:       Embedder::Embed batch k+1 while sinks write batch k
//   one thread per sink:  SinkGuard(Sink::Write) — the sinks of one batch
//                         write concurrently, each in batch order
//   dead-letter thread:   SinkGuard(Source::Reject) for decode errors and
//                         records a sink refused for good
//   intake thread:        Source::Ack by contiguous prefix: a batch is acked
//                         when it and every batch before it are done
//
// Backpressure is a state, never a sleep on the intake thread: while a sink
// is unavailable (or its breaker open), or the records in flight exceed
// max_inflight_records / max_inflight_bytes, the source is paused and Read is
// still called (a Kafka consumer keeps polling and heartbeating, rebalances
// are served at once).
//
// Stop: Run returns after the batch in hand and everything in flight is
// acked, or after drain_timeout, when sinks still failing are cancelled and
// their records are not acked (a replay delivers them again).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "pipeline/chunker.h"
#include "pipeline/sink_guard.h"
#include "pipeline/stage.h"

namespace embedstream::pipeline {

struct RuntimeOptions {
  size_t batch_max_tokens = 8192;
  size_t batch_max_records = SIZE_MAX;  // records per batch at most
  std::chrono::milliseconds batch_max_wait{50};
  // With the input idle, wait this long for companions before embedding.
  std::chrono::milliseconds batch_linger{0};
  size_t read_max_records = 2000;  // per Source::Read
  // Batches cut and waiting for the encoder before intake stops reading (the
  // encoder works on one more): a backlog stays in the source, so records
  // are not held (and their events announced) long before they are embedded.
  size_t max_queued_batches = 1;
  // Records read and not yet acked, and their bytes (Record::Bytes + tokens +
  // vectors): past either, the source is paused. At least one batch is
  // always let in.
  size_t max_inflight_records = 50000;
  size_t max_inflight_bytes = 256u << 20;
  // false: nothing is embedded (sinks get records without vectors) and
  // batches are cut by an estimate of 4 bytes per token.
  bool embed = true;
  // Texts longer than the model takes (pipeline/chunker.h). A document's
  // chunks reach the sinks in one batch (a sink replaces a document's chunks
  // in one step); a batch holds each id once, so a later operation on an id
  // (a delete after an upsert) is written after the earlier one.
  ChunkingOptions chunking;
  // A document over batch_max_tokens is embedded in slices; between two, a
  // small batch that shares no id with it may be embedded and written first
  // (acks stay in read order). false: sinks get batches in read order (the
  // `embed` command's stdout keeps the input's order).
  bool allow_overtaking = true;
  std::chrono::milliseconds drain_timeout{30'000};
  SinkGuardOptions guard;
};

// The source side's counters; read from any thread.
struct RuntimeStats {
  std::atomic<uint64_t> read{0};               // records from Read (decoded or not)
  std::atomic<uint64_t> embedded{0};           // records embedded
  std::atomic<uint64_t> stored{0};             // records every sink has
  std::atomic<uint64_t> rejected{0};           // records written to the dead letters
  std::atomic<uint64_t> deleted{0};            // delete operations every sink has
  std::atomic<uint64_t> chunked{0};            // documents cut into chunks
  std::atomic<uint64_t> chunks{0};             // chunks those documents became
  std::atomic<uint64_t> truncated{0};          // texts cut (on_overflow: truncate)
  std::atomic<uint64_t> rejected_too_long{0};  // texts refused (on_overflow: reject)
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batch_records{0};
  std::atomic<uint64_t> batch_tokens{0};
  std::atomic<int64_t> inflight_records{0};
  std::atomic<int64_t> inflight_bytes{0};
  std::atomic<bool> paused{false};
  std::atomic<bool> running{false};

  double average_batch_records() const {
    const uint64_t b = batches.load();
    return b == 0 ? 0.0 : static_cast<double>(batch_records.load()) / static_cast<double>(b);
  }
};

class Runtime {
 public:
  // `embedder` may be null when !options.embed. Everything must outlive the
  // runtime; sinks are written in the order given (each on its thread, which
  // starts here and idles until Run).
  Runtime(Source& source, Embedder* embedder, std::vector<Sink*> sinks, RuntimeOptions options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  void AddListener(Listener* listener);  // before Run

  // Runs the intake loop on the calling thread until `stop` is set or a
  // finite source ends, then drains (see above). Once per runtime.
  void Run(const std::atomic<bool>& stop);

  const RuntimeStats& stats() const { return stats_; }
  const std::string& source_name() const;
  // One guard per sink, in the order given; then the dead letters' ("dlq").
  std::vector<const SinkGuard*> guards() const;

 private:
  struct Batch;
  class Worker;

  // Adds a record (a document: all its chunks) to the batch in hand; true
  // when that cut the batch.
  bool Add(Record&& r, std::optional<Rejection> error);
  void AddPart(Record&& r, std::optional<Rejection> error, std::vector<int32_t> tokens);
  // A record as the sinks get it: one, its chunks, or truncated or refused
  // (chunking), with the token sequence of each.
  void Split(Record&& r, std::optional<Rejection>& error, std::vector<Record>& parts,
             std::vector<std::vector<int32_t>>& seqs);
  void Flush();  // the batch in hand to the encoder
  void EncoderLoop();
  // Embeds a batch (in slices of the token budget) and dispatches it; an
  // `outer` batch of several slices lets small batches overtake it.
  void Encode(std::shared_ptr<Batch> batch, bool outer);
  // The next queued batch when it may be embedded and written before
  // `current` (one slice, no id in common), else null.
  std::shared_ptr<Batch> TakeOvertaking(const Batch& current);
  void Dispatch(std::shared_ptr<Batch> batch);         // to every sink (encoder thread)
  void SinkDone(const std::shared_ptr<Batch>& batch);  // a sink thread, last one merges
  void Finish(const std::shared_ptr<Batch>& batch);    // done: wake the intake thread
  void AckDone();                                      // intake thread: prefix acks
  bool Hold(std::string& why) const;

  Source& source_;
  Embedder* embedder_;
  std::vector<Sink*> sinks_;
  RuntimeOptions options_;
  RuntimeStats stats_;
  std::vector<Listener*> listeners_;

  std::vector<std::unique_ptr<Worker>> workers_;  // per sink
  std::unique_ptr<Worker> dead_letters_;

  // Intake thread only.
  std::shared_ptr<Batch> building_;
  std::deque<std::pair<Record, std::optional<Rejection>>> carry_;  // read, not yet batched
  std::chrono::steady_clock::time_point deadline_{};
  std::chrono::steady_clock::time_point first_seen_{};
  uint64_t next_seq_ = 0;
  bool paused_ = false;

  // Batches in read order, from Flush until acked; guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;  // encoder queue and done batches
  std::deque<std::shared_ptr<Batch>> inflight_;
  std::deque<std::shared_ptr<Batch>> to_encode_;
  bool encoder_stop_ = false;
  // Past the drain timeout (or destroyed): the encoder gives up the batch it
  // is embedding between two slices (its records are not acked).
  std::atomic<bool> abandon_{false};
  std::thread encoder_;
};

}  // namespace embedstream::pipeline
