#pragma once
// MessageService: the write side of HTTP ingest (seed 001's CQRS without
// PostgreSQL), between POST /messages and the EmbeddedStore, which is the
// outbox of the `http` pipeline (sources/http_source.h).
//
//   POST /messages -> Submit -> [writer thread: group commit, one fsync per
//   batch of queued puts] -> reply 202 -> message_received -> on_committed
//   (wakes the http source, which reads the outbox)
//
// Submit queues the put and returns at once; the writer thread commits
// everything queued in one transaction (PutMessages) and then calls each
// `done` — so a 202 is only sent for a message on disk, and concurrent POSTs
// share the fsync. A full queue refuses the put (the route answers 503).
//
// Events: message_received is published by the writer while it holds
// read_lock(), which the http source takes to read the outbox, so every
// message's events are in lifecycle order on the SSE stream.
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
#include "server/sse_hub.h"
#include "store/embedded_store.h"

namespace embedstream::app {

struct MessageServiceOptions {
  size_t max_queue = 10000;           // puts waiting for a commit before Submit refuses
  size_t max_queue_bytes = 64 << 20;  // the same in bytes (id, text, metadata, user id)
  size_t commit_batch_max = 1024;     // puts per transaction
  // After a commit that queued new work (writer thread): wakes the reader of
  // the outbox.
  std::function<void()> on_committed;
};

struct MessageServiceStats {
  std::atomic<uint64_t> received{0};  // puts committed (new, changed or replayed)
  std::atomic<uint64_t> created{0};   // new ids
  std::atomic<uint64_t> requeued{0};  // existing ids with a new text
  std::atomic<uint64_t> refused{0};   // queue full
  std::atomic<uint64_t> commits{0};   // write transactions
  std::atomic<uint64_t> store_errors{0};
  std::atomic<int64_t> queued{0};        // waiting for a commit
  std::atomic<int64_t> queued_bytes{0};  // their bytes, until answered
};

class MessageService {
 public:
  using PutCallback = std::function<void(Result<store::PutOutcome>)>;

  // `hub` may be null (no events). All references must outlive the service.
  MessageService(store::EmbeddedStore& store, server::EventPublisher* hub,
                 MessageServiceOptions options);
  ~MessageService();  // Stop()
  MessageService(const MessageService&) = delete;
  MessageService& operator=(const MessageService&) = delete;

  void Start();
  // Commits and answers every queued put, joins the writer. Idempotent.
  void Stop();
  // Held while a commit's message_received events are published (see above).
  std::mutex& read_lock() { return publish_mu_; }

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

  store::EmbeddedStore& store_;
  Lifecycle events_;
  MessageServiceOptions options_;
  MessageServiceStats stats_;
  Histogram* commit_size_ = nullptr;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Put> queue_;    // guarded by queue_mu_
  size_t queued_bytes_ = 0;  // guarded by queue_mu_: queue_ and the batch being committed
  bool stopping_ = false;    // guarded by queue_mu_

  // Held by the writer across commit + message_received, and by the http
  // source while it reads the outbox: keeps each message's events in order.
  std::mutex publish_mu_;

  std::thread writer_;
  bool started_ = false;
};

}  // namespace embedstream::app
