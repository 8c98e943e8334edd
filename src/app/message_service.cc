#include "app/message_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/clock.h"
#include "core/logging.h"

namespace embedstream::app {
namespace {

constexpr auto kIdlePoll = std::chrono::seconds(1);
constexpr auto kErrorPause = std::chrono::milliseconds(500);

}  // namespace

MessageService::MessageService(store::EmbeddedStore& store, model::SentenceEncoder& encoder,
                               server::SseHub* hub, MessageServiceOptions options)
    : store_(store), encoder_(encoder), events_(hub), options_(std::move(options)) {
  auto& reg = MetricsRegistry::Global();
  latency_ = &reg.GetHistogram("embedstream_message_searchable_seconds",
                               "POST /messages committed to searchable (vector stored and indexed)",
                               LatencyBucketsSeconds());
  commit_size_ = &reg.GetHistogram("embedstream_store_commit_messages",
                                   "Messages per write transaction (group commit)",
                                   ExponentialBuckets(1, 2, 12));
  reg.AddCollector([this](std::string& out) {
    auto counter = [&out](const char* name, const char* help, uint64_t v) {
      AppendScalarMetric(out, name, help, "counter", static_cast<double>(v));
    };
    counter("embedstream_messages_received_total", "Messages committed by POST /messages",
            stats_.received.load());
    counter("embedstream_messages_embedded_total", "Stored messages embedded",
            stats_.embedded.load());
    counter("embedstream_messages_failed_total", "Stored messages that failed to embed",
            stats_.failed.load());
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
  worker_ = std::thread([this] { WorkerLoop(); });
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
  {
    std::lock_guard lock(work_mu_);
    worker_stop_ = true;
  }
  work_cv_.notify_all();
  worker_.join();
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
    if (new_work) {
      {
        std::lock_guard lock(work_mu_);
        work_signal_ = true;
      }
      work_cv_.notify_one();
    }
  }
}

void MessageService::WorkerLoop() {
  for (;;) {
    {
      std::lock_guard lock(work_mu_);
      if (worker_stop_) return;
      work_signal_ = false;
    }
    if (WorkOnce()) continue;
    std::unique_lock lock(work_mu_);
    work_cv_.wait_for(lock, kIdlePoll, [this] { return worker_stop_ || work_signal_; });
  }
}

bool MessageService::WorkOnce() {
  auto log = GetLogger("worker");
  std::vector<store::Message> rows;
  {
    std::lock_guard publish_lock(publish_mu_);
    auto pending = store_.NextPending(options_.worker_batch_max);
    if (!pending) {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      log->error("reading pending messages failed: {}", pending.error().ToString());
      std::this_thread::sleep_for(kErrorPause);
      return false;
    }
    rows = std::move(*pending);
  }
  if (rows.empty()) return false;

  // Stage 1: tokenize, cutting the round at the token budget (at least one row).
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> users;
  size_t budget_used = 0;
  for (const auto& row : rows) {
    auto ids = encoder_.Tokenize(row.text);
    if (!tokens.empty() && budget_used + ids.size() > options_.worker_batch_tokens) break;
    budget_used += ids.size();
    tokens.push_back(std::move(ids));
  }
  rows.resize(tokens.size());
  for (const auto& row : rows) {
    users.push_back(UserIdOf(row.metadata_json));
    events_.Processing(row.id, users.back(), {});
  }
  for (size_t i = 0; i < rows.size(); ++i) events_.Stage(1, rows[i].id, users[i], {});

  // Stage 2: embed.
  const size_t dim = encoder_.dim();
  std::vector<float> vectors(rows.size() * dim);
  encoder_.EmbedTokens(tokens, vectors.data());
  stats_.worker_batches.fetch_add(1, std::memory_order_relaxed);
  std::vector<store::Embedding> embeddings;
  std::vector<size_t> embedded_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* v = vectors.data() + i * dim;
    if (!std::all_of(v, v + dim, [](float x) { return std::isfinite(x); })) {
      // Not expected from a sound model; keep the row out of the index with a reason.
      if (auto st = store_.MarkFailed(rows[i].id, "encoder produced a non-finite vector"); !st) {
        log->error("marking {} failed: {}", rows[i].id, st.error().ToString());
      }
      stats_.failed.fetch_add(1, std::memory_order_relaxed);
      events_.Failed(rows[i].id, users[i], {}, "encoder produced a non-finite vector");
      continue;
    }
    events_.Stage(2, rows[i].id, users[i], {});
    embeddings.push_back({rows[i].id, std::vector<float>(v, v + dim), rows[i].revision});
    embedded_rows.push_back(i);
  }

  // Stage 3: store (SQLite + index); searchable once this returns.
  auto stored = store_.StoreEmbeddings(embeddings, options_.model_name);
  if (!stored) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    log->error("storing {} vectors failed (they stay pending and are retried): {}",
               embeddings.size(), stored.error().ToString());
    std::this_thread::sleep_for(kErrorPause);
    return true;
  }
  const double now = UnixSeconds();
  for (size_t i : embedded_rows) {
    const auto& row = rows[i];
    if (*stored != embeddings.size()) {
      // Some rows changed while we embedded them (a new text): those are
      // pending again with a new revision and will be embedded afresh.
      auto now_row = store_.Get(row.id);
      if (!now_row || !now_row->has_value() || (*now_row)->revision != row.revision ||
          (*now_row)->status != store::MessageStatus::embedded) {
        continue;
      }
    }
    stats_.embedded.fetch_add(1, std::memory_order_relaxed);
    latency_->Observe(std::max(0.0, now - row.queued_at));
    events_.Stage(3, row.id, users[i], {});
    events_.Completed(row.id, users[i], {}, options_.model_name, dim);
  }
  return true;
}

}  // namespace embedstream::app
