#pragma once
// EventBus: carries lifecycle events between `serve` instances, so an SSE
// client on any instance sees the events of messages processed on every other
// one (events.bus: kafka | redis; `local`, the default, needs no bus: the
// pipeline publishes straight into the instance's own SseHub).
//
//   pipeline / API (any instance) --PublishEvent--> bus --reader thread-->
//     SseHub::Deliver(id, ...) on every instance --> its SSE clients
//
// Event ids are the bus's, hence the same on every instance, and that is what
// lets a client resume with Last-Event-ID on any of them:
//   - kafka: the events topic has exactly one partition and an event's id is
//     its offset + 1. Each instance reads the partition by assignment (no
//     consumer group: there is nothing to commit and every instance reads
//     everything), from the last `window` events at start, so even an instance
//     that started later can replay what a reconnecting client missed.
//   - redis: one Lua script per event, atomically: INCR <prefix>:seq (the id),
//     XADD <prefix>:stream with entry id <id>-0 and MAXLEN ~ window (for resume
//     and for readers that reconnect: pub/sub alone loses what is published
//     while a subscriber is away and has no ids), then PUBLISH to
//     <prefix>:<user_id> and to the firehose channel <prefix> (seed 003's
//     channel per user; the payload is the data JSON with "id" first). Every
//     instance reads the stream with XREAD BLOCK from the last id it has.
// Per-user order: one instance's events reach the bus in publish order (one
// partition / one connection, pipelined), and one user's messages are
// processed by one worker at a time (the input topic is keyed by user_id).
//
// Durability: Flush() (called before a pipeline batch is acknowledged)
// returns once every event published so far is on the bus. A bus that is down
// blocks Flush, and so the pipeline's acks and, through its in-flight limits,
// its intake: events are never dropped, as with a sink that is down.
//
// Threads: PublishEvent and Flush from any thread; Start/Stop from the owner.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/json_writer.h"
#include "core/result.h"
#include "server/sse_hub.h"

namespace embedstream::app {

struct EventBusOptions {
  std::string kind;  // kafka | redis
  // kafka
  std::string kafka_brokers;
  std::map<std::string, std::string> kafka_properties;  // extra librdkafka settings
  std::string topic = "embedstream-events";
  // redis
  std::string redis_url;  // redis://[[user]:password@]host[:port][/db]
  std::string redis_prefix = "embedstream:events";
  // Events loaded at start and kept on the bus for Last-Event-ID resume (the
  // Redis stream's MAXLEN; Kafka keeps what its retention keeps).
  size_t window = 10000;
  // Published events waiting for the bus (Redis; Kafka: librdkafka's queue)
  // before PublishEvent blocks.
  size_t max_pending_bytes = 64 << 20;
};

class EventBus : public server::EventPublisher {
 public:
  static Result<std::unique_ptr<EventBus>> Create(const EventBusOptions& options);

  // Connects (Kafka: creates the one-partition topic when missing, refuses a
  // topic with more partitions), loads the retained window into `hub` and
  // starts the reader. `hub` must be made with external_ids and outlive Stop.
  virtual Status Start(server::SseHub& hub) = 0;
  // Stops the threads; a Flush waiting for a bus that is down returns.
  virtual void Stop() = 0;
  virtual const std::string& kind() const = 0;
  // The newest id the bus has issued (a query, with a short timeout); 0 when
  // unknown. For SseHubOptions::bus_latest.
  virtual uint64_t LatestOnBus() = 0;
  // Both directions work (GET /ready); `why` says what does not.
  virtual bool Healthy(std::string& why) const = 0;
  // The "events_bus" object of /stats.
  virtual void WriteStats(JsonWriter& w) const = 0;
};

}  // namespace embedstream::app
