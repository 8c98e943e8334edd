// The Kafka events bus (app/event_bus.h): one-partition topic, id = offset + 1.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <thread>

#include "app/event_bus_base.h"
#include "core/clock.h"
#include "sinks/kafka_producer.h"

namespace embedstream::app {
namespace {

constexpr int32_t kPartition = 0;

Status SetAll(RdKafka::Conf& conf, const std::map<std::string, std::string>& settings) {
  std::string err;
  for (const auto& [k, v] : settings) {
    if (conf.set(k, v, err) != RdKafka::Conf::CONF_OK)
      return Error(errc::invalid_argument, "events bus kafka setting " + k + ": " + err);
  }
  return Status::Ok();
}

// The topic's partition count; 0 when it does not exist; an error when the
// cluster cannot be asked.
Result<int> PartitionCount(RdKafka::Handle& handle, const std::string& topic_name) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> topic(RdKafka::Topic::create(&handle, topic_name, nullptr, err));
  if (!topic) return Error(errc::invalid_argument, "events topic " + topic_name + ": " + err);
  RdKafka::Metadata* raw = nullptr;
  const auto code = handle.metadata(false, topic.get(), &raw, 5000);
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (code != RdKafka::ERR_NO_ERROR)
    return Error(errc::unavailable, "events topic metadata: " + RdKafka::err2str(code));
  for (const auto* t : *md->topics()) {
    if (t->topic() != topic_name) continue;
    if (t->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART) return 0;
    if (t->err() != RdKafka::ERR_NO_ERROR)
      return Error(errc::unavailable,
                   "events topic " + topic_name + ": " + RdKafka::err2str(t->err()));
    return static_cast<int>(t->partitions()->size());
  }
  return 0;
}

Status CreateTopic(RdKafka::Handle& handle, const std::string& topic_name) {
  rd_kafka_t* rk = handle.c_ptr();
  char errstr[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic_name.c_str(), 1, -1, errstr, sizeof errstr);
  if (nt == nullptr) return Error(errc::invalid_argument, std::string("events topic: ") + errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 15000);
  Status status = Status::Ok();
  if (ev == nullptr) {
    status = Error(errc::unavailable, "creating the events topic timed out");
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = Error(errc::unavailable,
                   std::string("creating the events topic: ") + rd_kafka_event_error_string(ev));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      const auto code = rd_kafka_topic_result_error(results[i]);
      if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        status = Error(errc::unavailable, std::string("creating the events topic: ") +
                                              rd_kafka_topic_result_error_string(results[i]));
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(nt);
  return status;
}

class KafkaEventBus final : public internal::BusBase, public RdKafka::EventCb {
 public:
  explicit KafkaEventBus(const EventBusOptions& options) : BusBase(options, "kafka") {}
  ~KafkaEventBus() override { Stop(); }

  Status Init() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    // Never joins or commits (assign, not subscribe); librdkafka wants an id.
    std::map<std::string, std::string> settings = {
        {"bootstrap.servers", options_.kafka_brokers},
        {"group.id", "embedstream-events-" + std::string(host) + "-" + std::to_string(getpid())},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "5"},
        {"fetch.error.backoff.ms", "50"},
        {"client.id", "embedstream-events"},
    };
    for (const auto& [k, v] : options_.kafka_properties) settings[k] = v;
    if (auto st = SetAll(*conf, settings); !st.ok()) return st;
    std::string err;
    if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(this), err) != RdKafka::Conf::CONF_OK)
      return Error(errc::internal, "events bus consumer callbacks: " + err);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer_) return Error(errc::invalid_argument, "events bus consumer: " + err);

    sinks::KafkaProducerOptions po;
    po.bootstrap_servers = options_.kafka_brokers;
    po.properties = options_.kafka_properties;
    po.properties.insert_or_assign("linger.ms",
                                   std::string("0"));  // an event is latency-bound, and small
    po.properties.insert_or_assign("client.id", std::string("embedstream-events"));
    po.delivery_timeout_ms = 0;  // librdkafka retries until the broker is back
    auto producer = sinks::KafkaProducer::Create(po, [this](const sinks::DeliveryReport& r) {
      if (!r.ok) log_->error("events bus: an event was not written: {}", r.error);
      Settled(1, r.ok);
    });
    if (!producer) return producer.error();
    producer_ = std::move(*producer);
    return Status::Ok();
  }

  Status Start(server::SseHub& hub) override {
    hub_ = &hub;
    auto partitions = PartitionCount(*consumer_, options_.topic);
    if (partitions && *partitions == 0) {
      if (auto st = CreateTopic(*consumer_, options_.topic); !st.ok()) return st;
      log_->info("created the events topic {} (1 partition)", options_.topic);
      for (int i = 0; i < 50 && partitions && *partitions == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        partitions = PartitionCount(*consumer_, options_.topic);
      }
    }
    if (!partitions) return partitions.error();
    if (*partitions != 1) {
      return Error(errc::invalid_argument,
                   "events topic " + options_.topic + " has " + std::to_string(*partitions) +
                       " partitions; the events bus needs exactly 1 (an event's id is its offset, "
                       "the same on every instance): delete it or set events.topic");
    }
    int64_t low = 0, high = 0;
    const auto code =
        consumer_->query_watermark_offsets(options_.topic, kPartition, &low, &high, 10000);
    if (code != RdKafka::ERR_NO_ERROR)
      return Error(errc::unavailable, "events topic offsets: " + RdKafka::err2str(code));
    const int64_t window = static_cast<int64_t>(options_.window);
    const int64_t start = std::max(low, high - window);
    hub.SetFloor(static_cast<uint64_t>(start));  // ids (offset + 1) up to start are not read
    last_received_ = static_cast<uint64_t>(start);
    SetHead(static_cast<uint64_t>(high));
    std::vector<RdKafka::TopicPartition*> parts = {
        RdKafka::TopicPartition::create(options_.topic, kPartition, start)};
    const auto assigned = consumer_->assign(parts);
    RdKafka::TopicPartition::destroy(parts);
    if (assigned != RdKafka::ERR_NO_ERROR)
      return Error(errc::unavailable, "events topic assign: " + RdKafka::err2str(assigned));
    if (auto st = producer_->WarmUp(options_.topic, 5000); !st.ok())
      log_->warn("events bus: {}; the first events may wait for the next metadata refresh",
                 st.error().ToString());
    SetUp(true, "");
    log_->info("events bus: kafka topic {} from offset {} (window {}, newest {})", options_.topic,
               start, window, high);
    reader_ = std::thread([this] { ReadLoop(); });
    poller_ = std::thread([this] {
      while (!stopping()) producer_->Poll(100);
    });
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    WakeAllForStop();
    if (reader_.joinable()) reader_.join();
    if (poller_.joinable()) poller_.join();
    if (producer_) producer_->Flush(2000);
    if (consumer_) consumer_->close();
  }

  void PublishEvent(server::LifecycleEvent e) override {
    const double ts = e.timestamp > 0 ? e.timestamp : UnixSeconds();
    const std::string value = server::LifecycleEventData(e, ts);
    Published();
    for (;;) {
      auto st = producer_->Produce(options_.topic, internal::EventRoutingKey(e), value, {}, 0);
      if (st.ok()) return;
      if (st.error().code == errc::unavailable && !stopping()) {  // queue full: wait for room
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      log_->error("events bus: an event was not written: {}", st.error().ToString());
      Settled(1, false);
      return;
    }
  }

  uint64_t LatestOnBus() override {
    int64_t low = 0, high = 0;
    if (consumer_->query_watermark_offsets(options_.topic, kPartition, &low, &high, 1000) !=
        RdKafka::ERR_NO_ERROR)
      return 0;
    SetHead(static_cast<uint64_t>(high));
    return static_cast<uint64_t>(high);
  }

  bool Healthy(std::string& why) const override { return CommonHealthy(why); }

  void WriteStats(JsonWriter& w) const override {
    w.BeginObject();
    WriteCommonStats(w);
    w.Key("topic").String(options_.topic).EndObject();
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_ERROR &&
        event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) {
      SetUp(false, RdKafka::err2str(event.err()));
    }
  }

 private:
  void ReadLoop() {
    auto next_head = std::chrono::steady_clock::now();
    while (!stopping()) {
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(100));
      if (msg->err() == RdKafka::ERR_NO_ERROR) {
        const std::string_view data(static_cast<const char*>(msg->payload()), msg->len());
        Receive(static_cast<uint64_t>(msg->offset()) + 1, data);
      } else if (msg->err() != RdKafka::ERR__TIMED_OUT) {
        log_->warn("events bus read: {}", msg->errstr());
      }
      if (std::chrono::steady_clock::now() >= next_head) {
        // Once a second: the broker's high watermark (the lag) and whether it answers.
        int64_t low = 0, high = 0;
        const bool up = consumer_->query_watermark_offsets(options_.topic, kPartition, &low, &high,
                                                           1000) == RdKafka::ERR_NO_ERROR;
        if (up && high >= 0) SetHead(static_cast<uint64_t>(high));
        SetUp(up, up ? "" : "the broker does not answer");
        next_head = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
    }
  }

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<sinks::KafkaProducer> producer_;
  std::thread reader_;
  std::thread poller_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<EventBus>> CreateKafkaEventBus(const EventBusOptions& options) {
  if (options.kafka_brokers.empty())
    return Error(errc::invalid_argument, "events.bus kafka needs kafka.bootstrap_servers");
  auto bus = std::make_unique<KafkaEventBus>(options);
  if (auto st = bus->Init(); !st.ok()) return st.error();
  return std::unique_ptr<EventBus>(std::move(bus));
}

}  // namespace embedstream::app
