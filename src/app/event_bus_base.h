#pragma once
// What the Kafka and Redis events buses share (app/event_bus.h): the count of
// events published and settled (Flush waits on it), turning an event read
// from the bus into SseHub::Deliver, and the bus metrics. Internal to
// app/*event_bus*.cc.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "app/event_bus.h"
#include "core/logging.h"
#include "core/metrics.h"

namespace embedstream::app::internal {

// The bus key of an event (Kafka record key, Redis channel suffix): its
// user_id, else its message id.
inline const std::string& EventRoutingKey(const server::LifecycleEvent& e) {
  return e.user_id.empty() ? e.message_id : e.user_id;
}

class BusBase : public EventBus {
 public:
  BusBase(EventBusOptions options, std::string kind);

  const std::string& kind() const override { return kind_; }
  void Flush() override;

 protected:
  // An event handed to the bus client (before it may settle).
  void Published();
  // `n` events are on the bus (ok) or failed for good (not ok: counted, logged
  // by the caller); wakes Flush.
  void Settled(uint64_t n, bool ok);
  // Wakes everything that waits (Flush, a full queue): the bus is stopping.
  void WakeAllForStop();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // One event read from the bus: its id and the data JSON
  // (server::LifecycleEventData). Parses the filter keys and the origin
  // timestamp (for the bus delay), then SseHub::Deliver.
  void Receive(uint64_t id, std::string_view data);
  // The newest id the bus has issued, as last seen by the reader; updates the
  // lag gauge (issued - received here).
  void SetHead(uint64_t head);
  void SetUp(bool up, const std::string& why);
  void WriteCommonStats(JsonWriter& w) const;
  bool CommonHealthy(std::string& why) const;

  const EventBusOptions options_;
  const std::string kind_;
  std::shared_ptr<spdlog::logger> log_;
  server::SseHub* hub_ = nullptr;  // set by Start
  std::atomic<uint64_t> last_received_{0};
  std::atomic<uint64_t> head_{0};

 private:
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable settled_cv_;
  uint64_t published_ = 0;  // guarded by mu_
  uint64_t settled_ = 0;    // guarded by mu_
  bool up_ = false;         // guarded by mu_
  std::string down_why_;    // guarded by mu_

  Counter& published_total_;
  Counter& received_total_;
  Counter& failed_total_;
  Counter& malformed_total_;
  Gauge& lag_;
  Gauge& up_gauge_;
  Histogram& delay_;
};

}  // namespace embedstream::app::internal
