#include "app/event_bus.h"

#include <nlohmann/json.hpp>

#include "app/event_bus_base.h"
#include "core/clock.h"

namespace embedstream::app {

// Defined in kafka_event_bus.cc and redis_event_bus.cc.
Result<std::unique_ptr<EventBus>> CreateKafkaEventBus(const EventBusOptions& options);
Result<std::unique_ptr<EventBus>> CreateRedisEventBus(const EventBusOptions& options);

Result<std::unique_ptr<EventBus>> EventBus::Create(const EventBusOptions& options) {
  if (options.kind == "kafka") return CreateKafkaEventBus(options);
  if (options.kind == "redis") return CreateRedisEventBus(options);
  return Error(errc::invalid_argument,
               "events.bus must be local, kafka or redis, not '" + options.kind + "'");
}

namespace internal {

BusBase::BusBase(EventBusOptions options, std::string kind)
    : options_(std::move(options)),
      kind_(std::move(kind)),
      log_(GetLogger("events")),
      published_total_(MetricsRegistry::Global().GetCounter(
          "embedstream_events_bus_published_total",
          "Lifecycle events this instance handed to the events bus.", {{"bus", kind_}})),
      received_total_(MetricsRegistry::Global().GetCounter(
          "embedstream_events_bus_received_total",
          "Lifecycle events this instance read from the events bus (every instance's).",
          {{"bus", kind_}})),
      failed_total_(MetricsRegistry::Global().GetCounter(
          "embedstream_events_bus_failed_total",
          "Lifecycle events the events bus refused for good (logged).", {{"bus", kind_}})),
      malformed_total_(MetricsRegistry::Global().GetCounter(
          "embedstream_events_bus_malformed_total",
          "Records on the events bus that are not lifecycle events (skipped).", {{"bus", kind_}})),
      lag_(MetricsRegistry::Global().GetGauge(
          "embedstream_events_bus_lag",
          "Events the bus has issued that this instance has not read yet.", {{"bus", kind_}})),
      up_gauge_(MetricsRegistry::Global().GetGauge(
          "embedstream_events_bus_up", "1 while the events bus is reachable.", {{"bus", kind_}})),
      delay_(MetricsRegistry::Global().GetHistogram(
          "embedstream_events_bus_delay_seconds",
          "From an event's publication on any instance to this instance reading it from the bus "
          "(the bus's share of the SSE delivery delay; embedstream_sse_delivery_delay_seconds "
          "is the hub's share after it).",
          LatencyBucketsSeconds(), {{"bus", kind_}})) {}

void BusBase::Published() {
  published_total_.Inc();
  std::lock_guard lock(mu_);
  ++published_;
}

void BusBase::Settled(uint64_t n, bool ok) {
  if (!ok) failed_total_.Inc(n);
  {
    std::lock_guard lock(mu_);
    settled_ += n;
  }
  settled_cv_.notify_all();
}

void BusBase::WakeAllForStop() {
  stopping_.store(true, std::memory_order_release);
  std::lock_guard lock(mu_);  // no waiter misses the flag between its check and its wait
  settled_cv_.notify_all();
}

void BusBase::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = published_;
  auto next_log = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (settled_ < target && !stopping()) {
    if (settled_cv_.wait_until(lock, next_log) == std::cv_status::timeout) {
      log_->warn("waiting for the {} events bus: {} event(s) not on it yet; acks wait ({})", kind_,
                 target - settled_, up_ ? "connected" : down_why_);
      next_log = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
  }
}

void BusBase::Receive(uint64_t id, std::string_view data) {
  auto doc = nlohmann::json::parse(data, nullptr, false);
  const auto text = [&doc](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!doc.is_object() || text("type").empty()) {
    malformed_total_.Inc();
    log_->warn("events bus: record {} is not a lifecycle event; skipped", id);
    last_received_.store(id, std::memory_order_relaxed);
    return;
  }
  if (auto ts = doc.find("timestamp"); ts != doc.end() && ts->is_number()) {
    const double delay = UnixSeconds() - ts->get<double>();
    delay_.Observe(delay > 0 ? delay : 0.0);
  }
  received_total_.Inc();
  hub_->Deliver(id, text("type"), text("user_id"), text("key"), data);
  last_received_.store(id, std::memory_order_relaxed);
  uint64_t head = head_.load(std::memory_order_relaxed);
  while (head < id && !head_.compare_exchange_weak(head, id, std::memory_order_relaxed)) {
  }
  lag_.Set(head > id ? static_cast<double>(head - id) : 0.0);
}

void BusBase::SetHead(uint64_t head) {
  head_.store(head, std::memory_order_relaxed);
  const uint64_t got = last_received_.load(std::memory_order_relaxed);
  lag_.Set(head > got ? static_cast<double>(head - got) : 0.0);
}

void BusBase::SetUp(bool up, const std::string& why) {
  std::lock_guard lock(mu_);
  if (up != up_) {
    if (up) {
      log_->info("{} events bus connected", kind_);
    } else {
      log_->warn("{} events bus unreachable: {}", kind_, why);
    }
  }
  up_ = up;
  down_why_ = why;
  up_gauge_.Set(up ? 1 : 0);
}

bool BusBase::CommonHealthy(std::string& why) const {
  std::lock_guard lock(mu_);
  if (!up_) why = "the " + kind_ + " events bus is unreachable: " + down_why_;
  return up_;
}

void BusBase::WriteCommonStats(JsonWriter& w) const {
  uint64_t published = 0, settled = 0;
  bool up = false;
  {
    std::lock_guard lock(mu_);
    published = published_;
    settled = settled_;
    up = up_;
  }
  const uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t got = last_received_.load(std::memory_order_relaxed);
  w.Key("bus").String(kind_).Key("up").Bool(up);
  w.Key("published").Uint(published).Key("pending").Uint(published - settled);
  w.Key("failed").Uint(failed_total_.Value());
  w.Key("received").Uint(received_total_.Value()).Key("malformed").Uint(malformed_total_.Value());
  w.Key("latest_id").Uint(head).Key("received_id").Uint(got);
  w.Key("lag").Uint(head > got ? head - got : 0);
  const uint64_t n = delay_.Count();
  w.Key("delay_mean_ms").Double(n ? delay_.Sum() / static_cast<double>(n) * 1000.0 : 0.0);
}

}  // namespace internal
}  // namespace embedstream::app
