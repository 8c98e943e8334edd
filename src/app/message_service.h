#pragma once
// MessageService: the CQRS pipeline of the embedded default (seed 001 without
// PostgreSQL), between the HTTP routes and the EmbeddedStore.
//
//   POST /messages -> Submit -> [writer thread: group commit, one fsync per
//   batch of queued puts] -> reply 202 -> message_received
//   [embedding worker: NextPending -> tokenize -> embed -> StoreEmbeddings]
//   -> message_processing, stage_completed 1..3, message_completed / _failed
//
// Write side: Submit queues the put and returns at once; the writer thread
// commits everything queued in one transaction (PutMessages) and then calls
// each `done` — so a 202 is only sent for a message on disk, and concurrent
// POSTs share the fsync. A full queue refuses the put (the route answers 503).
//
// Read side: the worker picks the oldest pending rows (up to a token budget),
// embeds them and stores the vectors. A row that changed meanwhile (new
// revision) is skipped by the store and picked again. Rows pending from a
// previous run are picked up at start: nothing acknowledged is ever lost.
//
// Events: message_received is published by the writer under the same lock
// the worker takes to read pending rows, so every message's events are in
// lifecycle order on the SSE stream.
//
// Threads: Submit/stats from any thread; Start/Stop from the owner.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/lifecycle.h"
#include "core/metrics.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "server/sse_hub.h"
#include "store/embedded_store.h"

namespace embedstream::app {

struct MessageServiceOptions {
  std::string model_name;             // stored with every vector
  size_t max_queue = 10000;           // puts waiting for a commit before Submit refuses
  size_t max_queue_bytes = 64 << 20;  // the same in bytes (id, text, metadata, user id)
  size_t commit_batch_max = 1024;     // puts per transaction
  size_t worker_batch_max = 512;      // rows per worker round
  size_t worker_batch_tokens = 8192;  // token budget of a worker round
};

struct MessageServiceStats {
  std::atomic<uint64_t> received{0};  // puts committed (new, changed or replayed)
  std::atomic<uint64_t> created{0};   // new ids
  std::atomic<uint64_t> requeued{0};  // existing ids with a new text
  std::atomic<uint64_t> refused{0};   // queue full
  std::atomic<uint64_t> commits{0};   // write transactions
  std::atomic<uint64_t> embedded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> worker_batches{0};
  std::atomic<uint64_t> store_errors{0};
  std::atomic<int64_t> queued{0};        // waiting for a commit
  std::atomic<int64_t> queued_bytes{0};  // their bytes, until answered
};

class MessageService {
 public:
  using PutCallback = std::function<void(Result<store::PutOutcome>)>;

  // `hub` may be null (no events). All references must outlive the service.
  MessageService(store::EmbeddedStore& store, model::SentenceEncoder& encoder, server::SseHub* hub,
                 MessageServiceOptions options);
  ~MessageService();  // Stop()
  MessageService(const MessageService&) = delete;
  MessageService& operator=(const MessageService&) = delete;

  void Start();
  // Commits and answers every queued put, lets the worker finish its round,
  // joins both threads. Idempotent.
  void Stop();

  // Queues a validated message (store::PutMessages rules). `done` runs on the
  // writer thread once the put is committed or failed; keep it quick. False
  // (and `done` is not called) when the queue is full (max_queue puts or
  // max_queue_bytes) or the service stopped.
  bool Submit(store::NewMessage message, std::string user_id, PutCallback done);

  const MessageServiceStats& stats() const { return stats_; }

 private:
  struct Put {
    store::NewMessage message;
    std::string user_id;
    PutCallback done;
    size_t bytes = 0;  // PutBytes
  };
  static size_t PutBytes(const store::NewMessage& m, const std::string& user_id);
  void Release(size_t bytes);  // a batch was answered
  void WriterLoop();
  void WorkerLoop();
  // One worker round; false when nothing was pending.
  bool WorkOnce();

  store::EmbeddedStore& store_;
  model::SentenceEncoder& encoder_;
  Lifecycle events_;
  MessageServiceOptions options_;
  MessageServiceStats stats_;
  Histogram* latency_ = nullptr;  // queued -> searchable
  Histogram* commit_size_ = nullptr;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Put> queue_;    // guarded by queue_mu_
  size_t queued_bytes_ = 0;  // guarded by queue_mu_: queue_ and the batch being committed
  bool stopping_ = false;    // guarded by queue_mu_

  // Held by the writer across commit + message_received, and by the worker
  // while it reads pending rows: keeps each message's events in order.
  std::mutex publish_mu_;

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  bool work_signal_ = false;  // guarded by work_mu_
  bool worker_stop_ = false;  // guarded by work_mu_

  std::thread writer_;
  std::thread worker_;
  bool started_ = false;
};

}  // namespace embedstream::app
