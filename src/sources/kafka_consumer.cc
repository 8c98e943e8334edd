#include "sources/kafka_consumer.h"

#include <librdkafka/rdkafkacpp.h>

#include <chrono>

#include "core/logging.h"

namespace embedstream::sources {
namespace {

void FreePartitions(std::vector<RdKafka::TopicPartition*>& parts) {
  RdKafka::TopicPartition::destroy(parts);
  parts.clear();
}

}  // namespace

struct KafkaConsumer::Impl : public RdKafka::RebalanceCb, public RdKafka::EventCb {
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  RebalanceListener listener;
  std::shared_ptr<spdlog::logger> log = GetLogger("kafka");
  std::string last_error;
  bool read_headers = false;
  bool paused = false;  // every partition, also those assigned later

  void rebalance_cb(RdKafka::KafkaConsumer* c, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& parts) override {
    std::vector<std::pair<std::string, int32_t>> list;
    for (auto* p : parts) list.emplace_back(p->topic(), p->partition());
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      log->info("assigned {} partition(s)", list.size());
      c->assign(parts);
      // Paused for backpressure: partitions that arrive now stay paused too.
      if (paused) c->pause(parts);
      if (listener) listener(true, list);
    } else {
      log->info("revoking {} partition(s)", list.size());
      if (listener) listener(false, list);
      c->unassign();
    }
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_ERROR) {
      last_error = RdKafka::err2str(event.err()) + ": " + event.str();
      if (event.fatal()) {
        log->error("fatal kafka error: {}", last_error);
      } else {
        log->warn("kafka: {}", last_error);
      }
    } else if (event.type() == RdKafka::Event::EVENT_LOG && event.severity() <= 3) {
      log->warn("librdkafka: {} {}", event.fac(), event.str());
    }
  }
};

Result<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(const KafkaConsumerOptions& o,
                                                             RebalanceListener listener) {
  std::unique_ptr<KafkaConsumer> self(new KafkaConsumer());
  self->impl_ = std::make_unique<Impl>();
  self->impl_->listener = std::move(listener);
  self->impl_->read_headers = o.read_headers;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", o.bootstrap_servers},
      {"group.id", o.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", o.auto_offset_reset},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
      {"max.poll.interval.ms", "300000"},
      {"fetch.wait.max.ms", "20"},
      {"queued.max.messages.kbytes", "65536"},
      {"client.id", "embedstream"},
  };
  for (const auto& [k, v] : o.properties) settings[k] = v;
  for (const auto& [k, v] : settings) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      return Error(errc::invalid_argument, "kafka consumer setting " + k + ": " + err);
    }
  }
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(self->impl_.get()), err) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", static_cast<RdKafka::EventCb*>(self->impl_.get()), err) !=
          RdKafka::Conf::CONF_OK) {
    return Error(errc::internal, "kafka consumer callbacks: " + err);
  }
  self->impl_->consumer.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!self->impl_->consumer) {
    return Error(errc::invalid_argument, "cannot create kafka consumer: " + err);
  }
  const auto code = self->impl_->consumer->subscribe(o.topics);
  if (code != RdKafka::ERR_NO_ERROR) {
    return Error(errc::unavailable, "subscribe: " + RdKafka::err2str(code));
  }
  return self;
}

KafkaConsumer::~KafkaConsumer() { Close(); }

std::vector<ConsumedRecord> KafkaConsumer::Poll(int timeout_ms, size_t max_records) {
  std::vector<ConsumedRecord> out;
  if (!impl_ || !impl_->consumer) return out;
  int wait = timeout_ms;
  while (out.size() < max_records) {
    std::unique_ptr<RdKafka::Message> msg(impl_->consumer->consume(wait));
    wait = 0;  // after the first, take only what is already here
    if (!msg) break;
    const auto err = msg->err();
    if (err == RdKafka::ERR__TIMED_OUT || err == RdKafka::ERR__PARTITION_EOF) break;
    if (err != RdKafka::ERR_NO_ERROR) {
      impl_->last_error = msg->errstr();
      impl_->log->warn("consume: {}", msg->errstr());
      break;
    }
    ConsumedRecord r;
    r.topic = msg->topic_name();
    r.partition = msg->partition();
    r.offset = msg->offset();
    if (msg->key() != nullptr) {
      r.key = *msg->key();
      r.has_key = true;
    }
    r.has_value = msg->payload() != nullptr;
    if (r.has_value) r.value.assign(static_cast<const char*>(msg->payload()), msg->len());
    const auto ts = msg->timestamp();
    r.timestamp_ms =
        ts.type == RdKafka::MessageTimestamp::MSG_TIMESTAMP_NOT_AVAILABLE ? -1 : ts.timestamp;
    if (impl_->read_headers && msg->headers() != nullptr) {
      for (const auto& h : msg->headers()->get_all()) {
        const char* v = static_cast<const char*>(h.value());
        r.headers.emplace_back(h.key(), v != nullptr ? std::string(v, h.value_size()) : "");
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

Status KafkaConsumer::Commit(const std::vector<pipeline::CommitPoint>& points, bool sync) {
  if (points.empty() || !impl_->consumer) return Status::Ok();
  std::vector<RdKafka::TopicPartition*> parts;
  for (const auto& p : points) {
    parts.push_back(RdKafka::TopicPartition::create(p.topic, p.partition, p.next_offset));
  }
  const auto err = sync ? impl_->consumer->commitSync(parts) : impl_->consumer->commitAsync(parts);
  FreePartitions(parts);
  if (err != RdKafka::ERR_NO_ERROR) {
    return Error(errc::unavailable, "commit: " + RdKafka::err2str(err));
  }
  return Status::Ok();
}

bool KafkaConsumer::paused() const { return impl_->paused; }

void KafkaConsumer::PauseAll() {
  if (impl_->paused || !impl_->consumer) return;
  std::vector<RdKafka::TopicPartition*> parts;
  impl_->consumer->assignment(parts);
  impl_->consumer->pause(parts);
  FreePartitions(parts);
  impl_->paused = true;
}

void KafkaConsumer::ResumeAll() {
  if (!impl_->paused || !impl_->consumer) return;
  std::vector<RdKafka::TopicPartition*> parts;
  impl_->consumer->assignment(parts);
  impl_->consumer->resume(parts);
  FreePartitions(parts);
  impl_->paused = false;
}

std::vector<PartitionLag> KafkaConsumer::Lag() {
  std::vector<PartitionLag> out;
  if (!impl_->consumer) return out;
  std::vector<RdKafka::TopicPartition*> parts;
  impl_->consumer->assignment(parts);
  impl_->consumer->position(parts);
  for (auto* p : parts) {
    int64_t low = 0, high = 0;
    PartitionLag l{p->topic(), p->partition(), -1};
    if (impl_->consumer->get_watermark_offsets(p->topic(), p->partition(), &low, &high) ==
            RdKafka::ERR_NO_ERROR &&
        high >= 0) {
      const int64_t pos = p->offset() >= 0 ? p->offset() : low;
      l.lag = std::max<int64_t>(0, high - pos);
    }
    out.push_back(l);
  }
  FreePartitions(parts);
  return out;
}

void KafkaConsumer::Close() {
  if (impl_ && impl_->consumer) {
    impl_->consumer->close();
    impl_->consumer.reset();
  }
}

std::string KafkaConsumer::last_error() const { return impl_ ? impl_->last_error : ""; }

}  // namespace embedstream::sources
