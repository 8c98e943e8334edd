#include "sinks/kafka_producer.h"

#include <librdkafka/rdkafkacpp.h>

#include "core/logging.h"

namespace embedstream::sinks {

struct KafkaProducer::Impl : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
  std::unique_ptr<RdKafka::Producer> producer;
  DeliveryListener listener;
  std::shared_ptr<spdlog::logger> log = GetLogger("kafka");

  void dr_cb(RdKafka::Message& message) override {
    DeliveryReport r;
    r.token = reinterpret_cast<uintptr_t>(message.msg_opaque());
    r.ok = message.err() == RdKafka::ERR_NO_ERROR;
    if (!r.ok) {
      r.error = message.errstr();
      switch (message.err()) {
        case RdKafka::ERR_MSG_SIZE_TOO_LARGE:
        case RdKafka::ERR_RECORD_LIST_TOO_LARGE:
        case RdKafka::ERR_INVALID_MSG:
        case RdKafka::ERR_INVALID_MSG_SIZE:
        case RdKafka::ERR_INVALID_RECORD:
          r.permanent = true;
          break;
        default:
          break;
      }
    }
    if (listener) listener(r);
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_ERROR) {
      log->warn("kafka producer: {}: {}", RdKafka::err2str(event.err()), event.str());
    }
  }
};

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(const KafkaProducerOptions& o,
                                                             DeliveryListener listener) {
  std::unique_ptr<KafkaProducer> self(new KafkaProducer());
  self->impl_ = std::make_unique<Impl>();
  self->impl_->listener = std::move(listener);
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", o.bootstrap_servers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
      {"message.timeout.ms", std::to_string(o.delivery_timeout_ms)},
      {"queue.buffering.max.messages", "200000"},
      {"message.max.bytes", "10000000"},
      {"client.id", "embedstream"},
  };
  for (const auto& [k, v] : o.properties) settings[k] = v;
  for (const auto& [k, v] : settings) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      return Error(errc::invalid_argument, "kafka producer setting " + k + ": " + err);
    }
  }
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(self->impl_.get()), err) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", static_cast<RdKafka::EventCb*>(self->impl_.get()), err) !=
          RdKafka::Conf::CONF_OK) {
    return Error(errc::internal, "kafka producer callbacks: " + err);
  }
  self->impl_->producer.reset(RdKafka::Producer::create(conf.get(), err));
  if (!self->impl_->producer) {
    return Error(errc::invalid_argument, "cannot create kafka producer: " + err);
  }
  return self;
}

KafkaProducer::~KafkaProducer() {
  if (impl_ && impl_->producer) impl_->producer->flush(5000);
}

Status KafkaProducer::Produce(const std::string& topic, const std::string& key,
                              const std::string& value,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              uint64_t token) {
  return ProduceRaw(topic, key, value.data(), value.size(), headers, token);
}

Status KafkaProducer::ProduceTombstone(const std::string& topic, const std::string& key,
                                       uint64_t token) {
  return ProduceRaw(topic, key, nullptr, 0, {}, token);
}

Status KafkaProducer::ProduceRaw(const std::string& topic, const std::string& key,
                                 const char* value, size_t size,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 uint64_t token) {
  RdKafka::Headers* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = RdKafka::Headers::create();
    for (const auto& [k, v] : headers) hdrs->add(k, v);
  }
  const auto err = impl_->producer->produce(
      topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value),
      size, key.empty() ? nullptr : key.data(), key.size(), 0, hdrs,
      reinterpret_cast<void*>(static_cast<uintptr_t>(token)));
  if (err == RdKafka::ERR_NO_ERROR) return Status::Ok();
  delete hdrs;  // not taken over on failure
  if (err == RdKafka::ERR__QUEUE_FULL) {
    return Error(errc::unavailable, "producer queue full");
  }
  // Only the record's size is the record's fault; anything else (an unknown
  // topic with auto-create off, a fatal idempotence error, a closed client)
  // is the producer's or the cluster's: io_error, retried by the caller.
  const bool record_fault =
      err == RdKafka::ERR_MSG_SIZE_TOO_LARGE || err == RdKafka::ERR_INVALID_MSG_SIZE;
  return Error(record_fault ? errc::invalid_argument : errc::io_error,
               "produce to " + topic + ": " + RdKafka::err2str(err));
}

void KafkaProducer::Poll(int timeout_ms) { impl_->producer->poll(timeout_ms); }

int KafkaProducer::Flush(int timeout_ms) {
  impl_->producer->flush(timeout_ms);
  return impl_->producer->outq_len();
}

int KafkaProducer::outstanding() const { return impl_->producer->outq_len(); }

Status KafkaProducer::WarmUp(const std::string& topic, int timeout_ms) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(impl_->producer.get(), topic, nullptr, err));
  if (!handle) return Error(errc::invalid_argument, "topic " + topic + ": " + err);
  RdKafka::Metadata* raw = nullptr;
  const auto code = impl_->producer->metadata(false, handle.get(), &raw, timeout_ms);
  delete raw;
  if (code == RdKafka::ERR_NO_ERROR) return Status::Ok();
  return Error(errc::unavailable, "metadata of " + topic + ": " + RdKafka::err2str(code));
}

Status KafkaProducer::Ping(int timeout_ms) {
  RdKafka::Metadata* raw = nullptr;
  const auto err = impl_->producer->metadata(false, nullptr, &raw, timeout_ms);
  delete raw;
  if (err == RdKafka::ERR_NO_ERROR) return Status::Ok();
  return Error(errc::unavailable, "kafka metadata: " + RdKafka::err2str(err));
}

}  // namespace embedstream::sinks
