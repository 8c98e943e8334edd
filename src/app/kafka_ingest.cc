#include "app/kafka_ingest.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "core/logging.h"
#include "sinks/kafka_producer.h"

namespace embedstream::app {

KafkaIngest::KafkaIngest(KafkaIngestOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<KafkaIngest>> KafkaIngest::Create(const KafkaIngestOptions& options) {
  if (options.topic.empty()) return Error(errc::invalid_argument, "ingest: no topic");
  std::unique_ptr<KafkaIngest> self(new KafkaIngest(options));
  sinks::KafkaProducerOptions po;
  po.bootstrap_servers = options.bootstrap_servers;
  po.properties = options.properties;
  po.properties.insert_or_assign("linger.ms",
                                 std::string("1"));  // a POST waits for its batch: keep it short
  po.properties.insert_or_assign("client.id", std::string("embedstream-ingest"));
  po.properties.insert_or_assign(
      "queue.buffering.max.kbytes",
      std::string(std::to_string(std::max<size_t>(options.max_pending_bytes / 1024, 1024))));
  po.properties.insert_or_assign("queue.buffering.max.messages", std::string("100000"));
  po.delivery_timeout_ms = options.timeout_ms;
  KafkaIngest* raw = self.get();
  auto producer = sinks::KafkaProducer::Create(po, [raw](const sinks::DeliveryReport& r) {
    std::function<void(Status)> done;
    {
      std::lock_guard lock(raw->mu_);
      auto it = raw->pending_.find(r.token);
      if (it == raw->pending_.end()) return;
      done = std::move(it->second);
      raw->pending_.erase(it);
      if (!r.ok && !r.permanent) raw->last_error_ = r.error;
    }
    // A record the broker refuses as it is says nothing of the broker's health.
    if (r.ok || !r.permanent) raw->last_ok_ = r.ok;
    (r.ok ? raw->acked_ : raw->failed_).fetch_add(1, std::memory_order_relaxed);
    if (r.ok) {
      done(Status::Ok());
    } else {
      done(Error(errc::unavailable,
                 fmt::format("kafka did not acknowledge the message: {}", r.error)));
    }
  });
  if (!producer) return producer.error();
  self->producer_ = std::move(*producer);
  // Before /ready: the first POST is then not held for a metadata refresh.
  if (auto st = self->producer_->WarmUp(options.topic, 5000); !st.ok()) {
    GetLogger("app")->warn("ingest: {}; the first POSTs may wait for the next metadata refresh",
                           st.error().ToString());
  }
  self->poller_ = std::thread([raw] {
    auto next_ping = std::chrono::steady_clock::now();
    while (!raw->stopping_.load(std::memory_order_acquire)) {
      raw->producer_->Poll(50);
      // After a failed delivery, /ready stays 503 until a broker answers again.
      if (!raw->last_ok_.load() && std::chrono::steady_clock::now() >= next_ping) {
        if (raw->producer_->Ping(1000).ok()) raw->last_ok_ = true;
        next_ping = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
    }
  });
  GetLogger("app")->info("ingest: POST /messages -> kafka topic {} (acks=all, timeout {} ms)",
                         options.topic, options.timeout_ms);
  return self;
}

KafkaIngest::~KafkaIngest() { Stop(); }

void KafkaIngest::Stop() {
  if (stopping_.exchange(true)) return;
  if (poller_.joinable()) poller_.join();
  producer_->Flush(options_.timeout_ms);
  producer_->Poll(0);  // the last delivery reports
}

bool KafkaIngest::Produce(const std::string& key, const std::string& value,
                          std::function<void(Status)> done) {
  if (stopping_.load(std::memory_order_acquire)) return false;
  const uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    pending_.emplace(token, std::move(done));
  }
  auto st = producer_->Produce(options_.topic, key, value, {}, token);
  if (st.ok()) {
    produced_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::function<void(Status)> callback;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(token);
    callback = std::move(it->second);
    pending_.erase(it);
  }
  if (st.error().code == errc::unavailable) {  // the local queue is full
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  callback(st.error());
  return true;
}

bool KafkaIngest::Submit(store::NewMessage message, std::string user_id, api::PutCallback done) {
  JsonWriter w;
  w.BeginObject()
      .Key("id")
      .String(message.id)
      .Key("text")
      .String(message.text)
      .Key("timestamp")
      .Double(UnixSeconds())
      .Key("source")
      .String("http");
  if (!message.metadata_json.empty()) w.Key("metadata").Raw(message.metadata_json);
  w.EndObject();
  std::string value = w.Take();
  if (value.size() > options_.max_record_bytes) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    done(Error(errc::invalid_argument,
               fmt::format("the record is {} bytes; the pipeline takes at most {} "
                           "(pipeline.max_record_bytes)",
                           value.size(), options_.max_record_bytes)));
    return true;
  }
  const std::string& key = user_id.empty() ? message.id : user_id;
  return Produce(key, value, [done = std::move(done)](Status st) {
    if (!st.ok()) {
      done(st.error());
      return;
    }
    done(store::PutOutcome{
        .created = true, .requeued = false, .status = store::MessageStatus::pending});
  });
}

void KafkaIngest::Delete(const std::string& id, const std::string& user_id,
                         std::function<void(Status)> done) {
  JsonWriter w;
  w.BeginObject().Key("id").String(id).Key("op").String("delete").Key("source").String("http");
  // The user's events (message_deleted reaches /events?user_id= clients).
  if (!user_id.empty()) w.Key("metadata").BeginObject().Key("user_id").String(user_id).EndObject();
  w.EndObject();
  if (!Produce(user_id.empty() ? id : user_id, w.Take(), done)) {
    done(Error(errc::unavailable, "the Kafka producer's queue is full; retry shortly"));
  }
}

bool KafkaIngest::Healthy(std::string& why) const {
  if (last_ok_.load()) return true;
  std::lock_guard lock(mu_);
  why = fmt::format("the last message produced to Kafka failed: {}", last_error_);
  return false;
}

void KafkaIngest::WriteStats(JsonWriter& w) const {
  size_t pending = 0;
  {
    std::lock_guard lock(mu_);
    pending = pending_.size();
  }
  w.BeginObject()
      .Key("mode")
      .String("kafka")
      .Key("topic")
      .String(options_.topic)
      .Key("produced")
      .Uint(produced_.load())
      .Key("acked")
      .Uint(acked_.load())
      .Key("failed")
      .Uint(failed_.load())
      .Key("refused")
      .Uint(refused_.load())
      .Key("pending")
      .Uint(pending)
      .EndObject();
}

}  // namespace embedstream::app
