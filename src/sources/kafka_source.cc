#include "sources/kafka_source.h"

#include <algorithm>

#include "core/clock.h"
#include "core/logging.h"
#include "core/uuid.h"
#include "pipeline/record.h"

namespace embedstream::sources {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

KafkaSource::KafkaSource(KafkaSourceOptions options) : options_(std::move(options)) {}

KafkaSource::~KafkaSource() {
  dlq_.reset();  // its final flush reports into deliveries_, still alive here
}

Result<std::unique_ptr<KafkaSource>> KafkaSource::Create(KafkaSourceOptions options) {
  std::unique_ptr<KafkaSource> self(new KafkaSource(std::move(options)));
  KafkaSource* s = self.get();
  auto consumer = KafkaConsumer::Create(
      s->options_.consumer,
      [s](bool assigned, const auto& parts) { s->OnRebalance(assigned, parts); });
  if (!consumer) return consumer.error();
  s->consumer_ = std::move(*consumer);
  auto producer = sinks::KafkaProducer::Create(s->options_.dlq_producer,
                                               [s](const sinks::DeliveryReport& report) {
                                                 auto it = s->deliveries_.find(report.token);
                                                 if (it == s->deliveries_.end())
                                                   return;  // from a call that timed out
                                                 it->second.done = true;
                                                 it->second.ok = report.ok;
                                                 it->second.too_large = report.permanent;
                                                 it->second.error = report.error;
                                               });
  if (!producer) return producer.error();
  s->dlq_ = std::move(*producer);
  s->last_commit_ = s->last_lag_ = Clock::now();
  return self;
}

bool KafkaSource::Assigned(const std::string& topic, int32_t partition) const {
  return assigned_.count({topic, partition}) != 0;
}

pipeline::ReadBatch KafkaSource::Read(size_t max_records, std::chrono::milliseconds wait) {
  pipeline::ReadBatch out;
  const auto now = Clock::now();
  if (now - last_commit_ >= options_.commit_interval) CommitSafe(false);
  if (now - last_lag_ >= std::chrono::seconds(1)) {
    last_lag_ = now;
    auto lag = consumer_->Lag();
    std::lock_guard lock(lag_mu_);
    lag_ = std::move(lag);
  }
  auto consumed = consumer_->Poll(static_cast<int>(wait.count()), max_records);
  for (auto& rec : consumed) {
    if (!Assigned(rec.topic, rec.partition)) continue;  // revoked meanwhile: the new owner has it
    stats_.consumed.fetch_add(1, std::memory_order_relaxed);
    tracker_.Track(rec.topic, rec.partition, rec.offset);
    pipeline::Record r;
    r.handle = next_handle_++;
    {
      std::lock_guard lock(refs_mu_);
      refs_.emplace(r.handle, Ref{rec.topic, rec.partition, rec.offset});
    }
    // Arrival: the record's timestamp when it is plausible (not in the future,
    // not older than a minute: clock skew or a backlog), else now.
    r.arrival = Clock::now();
    if (rec.timestamp_ms > 0) {
      const double age = UnixSeconds() - static_cast<double>(rec.timestamp_ms) / 1000.0;
      if (age > 0 && age < 60) {
        r.arrival -=
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(age));
      }
    }
    if (!rec.has_value) {
      // A tombstone deletes its key's document.
      r.original_key = rec.key;
      r.has_original_key = rec.has_key;
      r.id = rec.key;
      r.event_key = rec.key;
      if (!rec.has_key || rec.key.empty()) {
        stats_.decode_errors.fetch_add(1, std::memory_order_relaxed);
        out.rejected.emplace_back(std::move(r),
                                  pipeline::Rejection{"missing_id", "decode",
                                                      "a tombstone (null value) without a key", 1});
        continue;
      }
      r.op = pipeline::Record::Op::kDelete;
      r.input_source = "kafka:" + rec.topic;
      out.records.push_back(std::move(r));
      continue;
    }
    const auto mapping = options_.mappings.find(rec.topic);
    const bool mapped = mapping != options_.mappings.end();
    auto decoded =
        mapped ? pipeline::MapEvent(rec.value, mapping->second,
                                    {.max_bytes = options_.max_record_bytes})
               : pipeline::DecodeRecord(rec.value, {.format = pipeline::InputFormat::kAuto,
                                                    .max_bytes = options_.max_record_bytes});
    r.original_key = rec.key;
    r.has_original_key = rec.has_key;
    if (!decoded.ok()) {
      stats_.decode_errors.fetch_add(1, std::memory_order_relaxed);
      r.id = rec.has_key ? rec.key : "";
      r.event_key = r.id;
      r.original_value = std::move(rec.value);
      out.rejected.emplace_back(std::move(r), pipeline::Rejection{decoded.error.reason, "decode",
                                                                  decoded.error.detail, 1});
      continue;
    }
    pipeline::InputRecord& in = *decoded.record;
    if (!in.id.empty()) {
      r.id = std::move(in.id);
    } else if (rec.has_key && !rec.key.empty()) {
      r.id = rec.key;
    } else {
      r.id = FormatUuid(UuidV5(
          EmbedstreamNamespace(),
          rec.topic + "/" + std::to_string(rec.partition) + "/" + std::to_string(rec.offset)));
    }
    r.text = std::move(in.text);
    r.metadata_json = std::move(in.metadata_json);
    r.mapped = mapped;
    if (in.remove) r.op = pipeline::Record::Op::kDelete;
    // A record from ingest.mode kafka (source "http") is keyed by its user:
    // its events' key is its id, as when the store takes the POST.
    r.event_key = rec.has_key && !rec.key.empty() && in.source != "http" ? rec.key : r.id;
    r.input_source = in.source.empty() ? "kafka:" + rec.topic : std::move(in.source);
    r.input_timestamp = in.timestamp.value_or(
        rec.timestamp_ms >= 0 ? static_cast<double>(rec.timestamp_ms) / 1000.0 : UnixSeconds());
    r.original_value = std::move(rec.value);
    out.records.push_back(std::move(r));
  }
  return out;
}

KafkaSource::Ref KafkaSource::RefOf(uint64_t handle) const {
  std::lock_guard lock(refs_mu_);
  auto it = refs_.find(handle);
  return it == refs_.end() ? Ref{} : it->second;
}

void KafkaSource::Ack(std::span<const pipeline::Record* const> records) {
  std::vector<Ref> refs;
  {
    std::lock_guard lock(refs_mu_);
    for (const auto* r : records) {
      auto it = refs_.find(r->handle);
      if (it == refs_.end()) continue;
      refs.push_back(std::move(it->second));
      refs_.erase(it);
    }
  }
  // False for a partition revoked meanwhile: not ours to commit any more.
  for (const auto& ref : refs) tracker_.Ack(ref.topic, ref.partition, ref.offset);
}

pipeline::WriteResult KafkaSource::Reject(std::span<const pipeline::DeadLetter> letters) {
  std::vector<size_t> too_large;
  if (auto r = SendLetters(letters, /*cut=*/false, too_large); !r.ok()) return r;
  if (!too_large.empty()) {
    // The topic refuses them for their size: send them again cut to the
    // stated size. A refusal now is the topic's (a limit below
    // dlq_truncate_bytes plus headers): retried, never dropped.
    std::vector<pipeline::DeadLetter> again;
    for (size_t i : too_large) again.push_back(letters[i]);
    std::vector<size_t> still;
    if (auto r = SendLetters(again, /*cut=*/true, still); !r.ok()) return r;
    if (!still.empty()) {
      return pipeline::WriteResult::Unavailable(
          "DLQ " + options_.dlq_topic + " refuses even a dead letter cut to " +
          std::to_string(options_.dlq_truncate_bytes) + " bytes");
    }
    GetLogger("kafka")->warn(
        "{} dead letters too large for {}: sent cut to {} bytes of their value "
        "(header error.truncated=true)",
        again.size(), options_.dlq_topic, options_.dlq_truncate_bytes);
    stats_.truncated_letters.fetch_add(again.size(), std::memory_order_relaxed);
  }
  stats_.dead_letters.fetch_add(letters.size(), std::memory_order_relaxed);
  return pipeline::WriteResult::Ok();
}

pipeline::WriteResult KafkaSource::SendLetters(std::span<const pipeline::DeadLetter> letters,
                                               bool cut, std::vector<size_t>& too_large) {
  deliveries_.clear();
  std::vector<uint64_t> tokens;
  tokens.reserve(letters.size());
  for (size_t i = 0; i < letters.size(); ++i) {
    const pipeline::DeadLetter& letter = letters[i];
    const pipeline::Record& r = *letter.record;
    const Ref ref = RefOf(r.handle);
    const size_t limit = cut ? options_.dlq_truncate_bytes : std::string::npos;
    std::vector<std::pair<std::string, std::string>> headers = {
        {"error.reason", letter.why.reason},
        {"error.detail", letter.why.detail.substr(0, limit)},
        {"error.stage", letter.why.stage},
        {"source.topic", ref.topic},
        {"source.partition", std::to_string(ref.partition)},
        {"source.offset", std::to_string(ref.offset)},
        {"attempts", std::to_string(letter.why.attempts)}};
    if (cut) {
      headers.emplace_back("error.truncated", "true");
      headers.emplace_back("error.original_bytes", std::to_string(r.original_value.size()));
    }
    const std::string value = r.original_value.substr(0, limit);
    const uint64_t token = next_token_++;
    tokens.push_back(token);
    deliveries_[token] = Delivery{};
    Status st;
    for (;;) {
      st = dlq_->Produce(options_.dlq_topic, r.original_key, value, headers, token);
      if (st.ok() || st.error().code != errc::unavailable) break;
      dlq_->Poll(50);  // the local queue is full: let deliveries drain
    }
    if (!st.ok()) {  // refused by the client before sending: too large, or the producer failed
      deliveries_[token] =
          Delivery{true, false, st.error().code == errc::invalid_argument, st.error().message};
    }
    // Cut letters go one at a time: the topic's max.message.bytes bounds a
    // whole record batch, and several cut letters together may pass it.
    const auto one_until = Clock::now() + options_.dlq_timeout;
    while (cut && !deliveries_[token].done && Clock::now() < one_until) dlq_->Poll(5);
  }
  const auto until = Clock::now() + options_.dlq_timeout;
  for (;;) {
    bool all = true;
    for (auto t : tokens) all = all && deliveries_[t].done;
    if (all) break;
    if (Clock::now() >= until) {
      return pipeline::WriteResult::Unavailable("dead letters not acknowledged by the broker in " +
                                                std::to_string(options_.dlq_timeout.count()) +
                                                " ms");
    }
    dlq_->Poll(20);
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Delivery& d = deliveries_[tokens[i]];
    if (d.ok) continue;
    if (!d.too_large) {
      return pipeline::WriteResult::Unavailable("DLQ " + options_.dlq_topic + ": " + d.error);
    }
    too_large.push_back(i);
  }
  return pipeline::WriteResult::Ok();
}

void KafkaSource::Pause() { consumer_->PauseAll(); }
void KafkaSource::Resume() { consumer_->ResumeAll(); }

void KafkaSource::OnRebalance(bool assigned,
                              const std::vector<std::pair<std::string, int32_t>>& parts) {
  stats_.rebalances.fetch_add(1, std::memory_order_relaxed);
  if (assigned) {
    for (const auto& p : parts) assigned_.insert(p);
    return;
  }
  // Revoked: commit what is safe for them now, then forget them. Nothing
  // waits on a sink; what is still in flight is consumed again by the next owner.
  CommitSafe(true);
  for (const auto& p : parts) {
    tracker_.Drop(p.first, p.second);
    assigned_.erase(p);
  }
}

void KafkaSource::CommitSafe(bool sync) {
  last_commit_ = Clock::now();
  for (auto& p : tracker_.TakeCommittable()) uncommitted_[{p.topic, p.partition}] = p.next_offset;
  std::vector<pipeline::CommitPoint> points;
  for (auto it = uncommitted_.begin(); it != uncommitted_.end();) {
    if (!Assigned(it->first.first, it->first.second)) {
      it = uncommitted_.erase(it);  // not ours any more: the new owner commits
      continue;
    }
    points.push_back({it->first.first, it->first.second, it->second});
    ++it;
  }
  if (points.empty()) return;
  const Status st = consumer_->Commit(points, sync);
  if (!st.ok()) {  // kept in uncommitted_: the next commit tries again
    GetLogger("kafka")->warn("offset commit failed: {}", st.error().message);
    return;
  }
  uncommitted_.clear();
  stats_.commits.fetch_add(1, std::memory_order_relaxed);
}

void KafkaSource::Close() {
  CommitSafe(true);
  consumer_->Close();
}

std::vector<PartitionLag> KafkaSource::Lag() const {
  std::lock_guard lock(lag_mu_);
  return lag_;
}

}  // namespace embedstream::sources
