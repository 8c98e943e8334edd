#pragma once
// HttpIngestSource: POST /messages as a pipeline::Source. The embedded store
// is its outbox: the HTTP write side (app/message_service) commits each
// message there (durable, then 202), and this source reads what the store
// holds and its pipeline has not yet delivered.
//
//   Read   -> EmbeddedStore::NextOutbox after a cursor (queued order), so a
//             record in flight is not read twice; a message re-queued with a
//             new text comes again with its new revision
//   Ack    -> EmbeddedStore::MarkDelivered (id, revision): it leaves the
//             outbox; a stale revision changes nothing
//   Reject -> EmbeddedStore::MarkFailed with the reason (GET /messages/{id}
//             shows it); a store error is kUnavailable (retried)
//   Pause  -> Read returns nothing (the outbox keeps the messages)
//
// After a restart the cursor starts over: every message not delivered is
// read again (at-least-once; sinks upsert by id).
//
// Threads: Read/Ack/Pause/Resume on the runtime's intake thread, Reject on
// its dead-letter thread; Notify from any thread (the writer, after a commit).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "pipeline/stage.h"
#include "store/embedded_store.h"

namespace embedstream::sources {

class HttpIngestSource : public pipeline::Source {
 public:
  // `read_lock`, when given, is held while reading the outbox (the writer
  // holds it across a commit and its message_received events, so every
  // message's events stay in lifecycle order). `model_name` is stored with
  // delivered messages that no sink stored a vector for.
  HttpIngestSource(store::EmbeddedStore& store, std::string model_name,
                   std::mutex* read_lock = nullptr);

  const std::string& name() const override { return name_; }
  pipeline::ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) override;
  void Ack(std::span<const pipeline::Record* const> records) override;
  pipeline::WriteResult Reject(std::span<const pipeline::DeadLetter> letters) override;
  void Pause() override { paused_ = true; }
  void Resume() override { paused_ = false; }

  // New messages were committed: wakes a Read that waits.
  void Notify();

 private:
  store::EmbeddedStore& store_;
  const std::string model_name_;
  std::mutex* read_lock_;
  const std::string name_ = "http";
  store::EmbeddedStore::OutboxCursor cursor_;
  bool paused_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool signalled_ = true;  // guarded by mu_: read at start
};

}  // namespace embedstream::sources
