#include "sources/http_source.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "core/logging.h"

namespace embedstream::sources {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

HttpIngestSource::HttpIngestSource(store::EmbeddedStore& store, std::string model_name,
                                   std::mutex* read_lock)
    : store_(store), model_name_(std::move(model_name)), read_lock_(read_lock) {}

void HttpIngestSource::Notify() {
  {
    std::lock_guard lock(mu_);
    signalled_ = true;
  }
  cv_.notify_one();
}

pipeline::ReadBatch HttpIngestSource::Read(size_t max_records, std::chrono::milliseconds wait) {
  pipeline::ReadBatch out;
  {
    // Wait for a commit (or the wait to pass: a store error is retried then).
    std::unique_lock lock(mu_);
    if (paused_) {
      cv_.wait_for(lock, wait);  // paused: the outbox keeps the messages
      return out;
    }
    if (!cv_.wait_for(lock, wait, [this] { return signalled_; })) return out;
    signalled_ = false;
  }
  Result<std::vector<store::Message>> rows = std::vector<store::Message>{};
  {
    std::unique_lock<std::mutex> lock;
    if (read_lock_ != nullptr) lock = std::unique_lock(*read_lock_);
    rows = store_.NextOutbox(cursor_, max_records);
  }
  if (!rows) {
    GetLogger("ingest")->error("reading the outbox failed (retried): {}", rows.error().ToString());
    Notify();  // try again on the next Read
    std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(100)));
    return out;
  }
  // A full read may have left more behind: read again at once.
  if (rows->size() == max_records) Notify();
  const double now_unix = UnixSeconds();
  const auto now = Clock::now();
  out.records.reserve(rows->size());
  for (auto& m : *rows) {
    pipeline::Record r;
    r.id = std::move(m.id);
    r.text = std::move(m.text);
    r.metadata_json = std::move(m.metadata_json);
    r.input_source = "http";
    r.input_timestamp = m.queued_at;
    // The batch deadline counts from the POST, not from this read.
    const auto age = std::chrono::duration<double>(std::max(0.0, now_unix - m.queued_at));
    r.arrival = now - std::chrono::duration_cast<Clock::duration>(age);
    r.handle = static_cast<uint64_t>(m.revision);
    if (m.status == store::MessageStatus::deleted) r.op = pipeline::Record::Op::kDelete;
    out.records.push_back(std::move(r));
  }
  return out;
}

void HttpIngestSource::Ack(std::span<const pipeline::Record* const> records) {
  std::vector<std::pair<std::string, int64_t>> delivered;
  delivered.reserve(records.size());
  for (const auto* r : records) delivered.emplace_back(r->id, static_cast<int64_t>(r->handle));
  // The store is local: an error here is a disk failing. The messages stay in
  // the outbox and are delivered again after a restart (sinks upsert).
  for (int attempt = 1;; ++attempt) {
    auto done = store_.MarkDelivered(delivered, model_name_);
    if (done) return;
    GetLogger("ingest")->error("marking {} messages delivered failed (attempt {}): {}",
                               delivered.size(), attempt, done.error().ToString());
    if (attempt == 3) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
  }
}

pipeline::WriteResult HttpIngestSource::Reject(std::span<const pipeline::DeadLetter> letters) {
  for (const auto& letter : letters) {
    const std::string why = letter.why.reason + (letter.why.detail.empty() ? "" : ": ") +
                            letter.why.detail + " (" + letter.why.stage + ")";
    auto st = store_.MarkFailed(letter.record->id, why);
    if (!st && st.error().code != errc::not_found) {
      return pipeline::WriteResult::Unavailable(st.error().ToString());
    }
  }
  return pipeline::WriteResult::Ok();
}

}  // namespace embedstream::sources
