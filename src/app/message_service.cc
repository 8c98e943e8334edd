#include "app/message_service.h"

#include <algorithm>
#include <chrono>

#include "core/clock.h"
#include "core/logging.h"

namespace embedstream::app {

MessageService::MessageService(store::EmbeddedStore& store, server::EventPublisher* hub,
                               MessageServiceOptions options)
    : store_(store), events_(hub), options_(std::move(options)) {
  auto& reg = MetricsRegistry::Global();
  commit_size_ = &reg.GetHistogram("embedstream_store_commit_messages",
                                   "Messages per write transaction (group commit)",
                                   ExponentialBuckets(1, 2, 12));
  reg.AddCollector([this](std::string& out) {
    auto counter = [&out](const char* name, const char* help, uint64_t v) {
      AppendScalarMetric(out, name, help, "counter", static_cast<double>(v));
    };
    counter("embedstream_messages_received_total", "Messages committed by POST /messages",
            stats_.received.load());
    counter("embedstream_messages_refused_total", "POST /messages refused (write queue full)",
            stats_.refused.load());
    counter("embedstream_store_errors_total", "Store operations that failed (retried)",
            stats_.store_errors.load());
  });
}

MessageService::~MessageService() { Stop(); }

void MessageService::Start() {
  if (started_) return;
  started_ = true;
  writer_ = std::thread([this] { WriterLoop(); });
}

void MessageService::Stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();  // answers everything still queued first
}

size_t MessageService::PutBytes(const store::NewMessage& m, const std::string& user_id) {
  return m.id.size() + m.text.size() + m.metadata_json.size() + user_id.size() + sizeof(Put);
}

void MessageService::Release(size_t bytes) {
  std::lock_guard lock(queue_mu_);
  queued_bytes_ -= bytes;
  stats_.queued_bytes.store(static_cast<int64_t>(queued_bytes_), std::memory_order_relaxed);
}

bool MessageService::Submit(store::NewMessage message, std::string user_id, PutCallback done) {
  {
    std::lock_guard lock(queue_mu_);
    const size_t bytes = PutBytes(message, user_id);
    if (stopping_ || queue_.size() >= options_.max_queue ||
        queued_bytes_ + bytes > options_.max_queue_bytes) {
      stats_.refused.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queued_bytes_ += bytes;
    stats_.queued_bytes.store(static_cast<int64_t>(queued_bytes_), std::memory_order_relaxed);
    queue_.push_back({std::move(message), std::move(user_id), std::move(done), bytes});
    stats_.queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
  }
  queue_cv_.notify_one();
  return true;
}

void MessageService::WriterLoop() {
  auto log = GetLogger("ingest");
  std::vector<Put> batch;
  std::vector<store::NewMessage> messages;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and everything answered
      const size_t n = std::min(queue_.size(), options_.commit_batch_max);
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
    }
    // The batch's bytes stay counted in queued_bytes_ until it is answered.
    size_t batch_bytes = 0;
    for (const auto& p : batch) batch_bytes += p.bytes;
    messages.clear();
    for (const auto& p : batch) messages.push_back(p.message);
    std::unique_lock publish_lock(publish_mu_);
    auto outcome = store_.PutMessages(messages);
    if (!outcome) {
      publish_lock.unlock();
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      log->error("committing {} messages failed: {}", batch.size(), outcome.error().ToString());
      for (auto& p : batch) p.done(outcome.error());
      Release(batch_bytes);
      continue;
    }
    stats_.commits.fetch_add(1, std::memory_order_relaxed);
    stats_.received.fetch_add(batch.size(), std::memory_order_relaxed);
    commit_size_->Observe(static_cast<double>(batch.size()));
    bool new_work = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& o = (*outcome)[i];
      if (o.created) stats_.created.fetch_add(1, std::memory_order_relaxed);
      if (o.requeued) stats_.requeued.fetch_add(1, std::memory_order_relaxed);
      if (o.created || o.requeued) {
        new_work = true;
        events_.Received(batch[i].message.id, batch[i].user_id, {});
      }
    }
    publish_lock.unlock();
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done((*outcome)[i]);
    Release(batch_bytes);
    if (new_work && options_.on_committed) options_.on_committed();
  }
}

}  // namespace embedstream::app
