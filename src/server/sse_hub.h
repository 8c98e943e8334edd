#pragma once
// SseHub: GET /events, Server-Sent Events of message lifecycle events (seed
// 003's thought_* events, renamed for messages). It owns a bounded ring of
// recent events (for Last-Event-ID resume), the set of connected clients and
// one dispatcher thread that fans events out and sends heartbeats.
//
// Threads:
//   - Publish: any thread, thread-safe. It formats the frame, appends it to the
//     ring under a short lock and wakes the dispatcher; it never touches a
//     client, so a slow or stuck client cannot stall the pipeline.
//   - The dispatcher thread (one per hub) sends new events to every matching
//     client, batching what piled up into one chunk per client, and a heartbeat
//     comment (": ping\n\n") to every client each `heartbeat` period.
//   - The stream handler (Attach) runs on the server's io threads: it parses
//     the filters and Last-Event-ID, registers the client and returns the
//     replay as the first chunk of the stream.
//   - Slow clients: the server's StreamSink refuses a chunk once more than
//     ServerOptions::stream_queue_max_bytes are queued for it; the hub then
//     drops that client (embedstream_sse_clients_dropped_total).
//
// Wire format (text/event-stream), one frame per event:
//   id: 42
//   event: stage_completed
//   data:
//   {"type":"stage_completed","message_id":"m1","user_id":"u1","timestamp":1699123456.789,"stage":2,"stages":5}
//   (blank line)
// `data` is one line of JSON: type, message_id, user_id and key (when set),
// timestamp (Unix seconds), then the fields of LifecycleEvent::data_json.
// Event types (seed 003 thought_created / thought_processing /
// thought_agent_completed "k/5" / thought_completed / thought_failed):
//   message_received, message_processing, stage_completed (payload
//   {"stage":k,"stages":n,...}), message_completed, message_failed
//   (payload {"error":...}). The hub passes any type through.
// When a Last-Event-ID is older than the ring holds (or newer than any id this
// hub issued, e.g. after a restart), the stream starts with
//   event: reset
//   data: {"type":"reset","last_event_id":L,"oldest_event_id":O,"latest_event_id":N}
// (no id line, so the client's last id stays) and then replays what the ring
// holds after L and continues live. The same reset goes to live clients if the
// dispatcher ever falls more than ring_capacity events behind.
//
// Query: ?user_id=U and/or ?key=K keep only events with that user_id / key
// (both given: both must match); ?last_event_id=N stands in for the
// Last-Event-ID header (the header wins). A non-numeric id is a 400.
//
// Metrics (SseHubOptions::metrics, default the global registry):
//   embedstream_sse_clients, embedstream_sse_events_published_total,
//   embedstream_sse_clients_dropped_total,
//   embedstream_sse_delivery_delay_seconds (Publish to handed to every client).
//
// Example:
//   SseHub hub;
//   hub.Attach(server);          // before server.Start()
//   hub.Publish({.type = "stage_completed", .message_id = id, .user_id = user,
//                .data_json = R"({"stage":2,"stages":5})"});
//   ...
//   hub.Stop();                  // before server.Stop() or after; both orders are fine

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "server/http_server.h"

namespace embedstream::server {

struct LifecycleEvent {
  // Members carry initializers so designated initializers may leave any out.
  std::string type{};  // "message_received", "stage_completed", ...
  std::string message_id{};
  std::string user_id{};    // filter key; empty: none
  std::string key{};        // filter key (e.g. the Kafka record key); empty: none
  std::string data_json{};  // a JSON object whose fields are added to `data`; empty: none
  double timestamp = 0.0;   // Unix seconds; 0: the time of Publish
};

// What publishes lifecycle events: the hub itself (one instance), or an
// events bus (app/event_bus.h) that carries them to every instance's hub.
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // Any thread; never blocks on SSE clients.
  virtual void PublishEvent(LifecycleEvent event) = 0;
  // Returns once every event published so far is durable on the bus (the
  // pipeline calls it before a batch's source records are acknowledged, so a
  // crash cannot lose a message_completed whose record was committed).
  virtual void Flush() {}
};

// The `data` line of an event's frame: one line of JSON with type,
// message_id, user_id and key (when set), timestamp, then data_json's fields.
// What an events bus carries.
std::string LifecycleEventData(const LifecycleEvent& event, double timestamp);

struct SseHubOptions {
  size_t ring_capacity = 10000;  // events kept for resume; 0 counts as 1
  std::chrono::milliseconds heartbeat{15000};
  MetricsRegistry* metrics = nullptr;  // null: MetricsRegistry::Global(); must outlive the hub
  // Ids come from an events bus (Deliver), shared by every instance, instead
  // of Publish. A Last-Event-ID above the newest id delivered here is then
  // an event this instance has not received yet: the client gets what
  // follows it, no reset (unless `bus_latest` says the bus never issued it).
  bool external_ids = false;
  // External ids: the newest id the bus has issued, asked when a client
  // resumes past what this hub holds; 0 or empty: unknown (no reset).
  std::function<uint64_t()> bus_latest{};
};

class SseHub : public EventPublisher {
 public:
  explicit SseHub(SseHubOptions options = {});
  ~SseHub();  // stops
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  // Registers GET `path` as a stream route on `server` (before its Start).
  // The route keeps the hub's state alive; after Stop it answers 503.
  void Attach(HttpServer& server, const std::string& path = "/events");

  // Assigns the next event id (1, 2, ...), appends the event to the ring and
  // wakes the dispatcher. Never blocks on clients. Returns the id.
  uint64_t Publish(LifecycleEvent event);
  void PublishEvent(LifecycleEvent event) override { Publish(std::move(event)); }

  // External ids (an events bus): one event with its bus-wide id and its
  // `data` line (LifecycleEventData). Ids must increase: an id at or below
  // the newest one held is a redelivery and is ignored (returns false).
  bool Deliver(uint64_t id, std::string_view type, std::string user_id, std::string key,
               std::string_view data);
  // External ids: events at or below `id` are not held here (the bus's
  // retained window starts after it). Before the first Deliver.
  void SetFloor(uint64_t id);
  // The newest id held (issued or delivered).
  uint64_t latest_id() const;

  // Connected clients.
  size_t clients() const;

  // Stops the dispatcher thread and ends every stream. Idempotent. Publish
  // still records events afterwards but nothing is sent.
  void Stop();

  struct State;  // internal, shared with the route and the streams' callbacks

 private:
  std::shared_ptr<State> state_;
};

}  // namespace embedstream::server
