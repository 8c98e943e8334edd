#pragma once
// ClientFleet: N Server-Sent Events clients of GET /events on ONE thread
// (Boost.Asio, non-blocking sockets, no thread per client), for bench_sse.
//
// Client i connects to endpoints[i % endpoints.size()] (several `serve`
// instances: the clients are spread round-robin over them). Each client
// connects (at most `connect_parallel` connects in flight), sends
// the GET, parses the response head, decodes the chunked body and feeds it to
// a server::SseParser. For every event it records
//   delay = wall time when the read completed - the event's `timestamp`
// (Unix seconds, set by the hub at Publish, in the data JSON), and checks
// that the event ids it sees are consecutive.
//
// Threads: Start runs the io thread; the progress counters are atomics and
// may be read from any thread while it runs; per-client results and the
// delays are read after Stop (which joins the io thread).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace embedstream::bench {

struct FleetEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;
  std::string target = "/events";
};

struct FleetOptions {
  std::vector<FleetEndpoint> endpoints;  // at least one; client i uses [i % size]
  int clients = 1000;
  int connect_parallel = 64;
  // Events whose message_id starts with this and whose type is
  // message_completed/message_failed count as completions (client 0 only).
  std::string completion_prefix;
  // Keep a trace of every event the first client of each endpoint sees.
  bool trace = false;
};

// One event as the first client of an endpoint saw it (FleetOptions::trace).
struct TraceRecord {
  uint8_t endpoint = 0;
  uint64_t id = 0;
  std::string type;
  std::string message_id;
  double timestamp = 0;  // the event's, Unix s
  double read = 0;       // when the client read it, Unix s
};

struct ClientResult {
  size_t endpoint = 0;        // index into FleetOptions::endpoints
  bool subscribed = false;    // got a 200 head
  bool closed_early = false;  // the server closed the stream before Stop
  std::string error;          // connect/read error or bad status; empty: none
  uint64_t received = 0;      // events with an id
  uint64_t first_id = 0;
  uint64_t last_id = 0;
  uint64_t gaps = 0;  // times an id was not the previous one + 1
  uint64_t bad_timestamps = 0;
};

class ClientFleet {
 public:
  explicit ClientFleet(FleetOptions options);
  ~ClientFleet();
  ClientFleet(const ClientFleet&) = delete;
  ClientFleet& operator=(const ClientFleet&) = delete;

  // Resolves the host, starts the io thread and the connects. False (and
  // `error`) when the host does not resolve.
  bool Start(std::string* error);
  // Closes every connection and joins the io thread. Idempotent.
  void Stop();

  // Progress, from any thread.
  size_t subscribed() const { return subscribed_.load(); }
  size_t finished_connecting() const { return finished_connecting_.load(); }  // ok or failed
  uint64_t received() const { return received_.load(); }
  uint64_t min_id() const { return min_id_.load(); }  // UINT64_MAX before any event
  uint64_t max_id() const { return max_id_.load(); }
  uint64_t completions() const { return completions_.load(); }

  // After Stop.
  const std::vector<ClientResult>& results() const { return results_; }
  std::vector<float>& delays_ms() { return delays_ms_; }
  // The event type of each delay sample: an index into EventTypes().
  const std::vector<uint8_t>& delay_types() const { return delay_types_; }
  // The endpoint of the client that took each delay sample.
  const std::vector<uint8_t>& delay_endpoints() const { return delay_endpoints_; }
  // The event's timestamp of each delay sample, as Unix seconds minus
  // start_unix() (when Start was called).
  const std::vector<float>& delay_published_s() const { return delay_published_s_; }
  double start_unix() const { return start_unix_; }
  const std::vector<TraceRecord>& trace() const { return trace_; }
  // message_received, message_processing, stage_completed, message_completed,
  // message_failed, other.
  static const std::vector<std::string>& EventTypes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<ClientResult> results_;
  std::vector<float> delays_ms_;
  std::vector<uint8_t> delay_types_;
  std::vector<uint8_t> delay_endpoints_;
  std::vector<float> delay_published_s_;
  double start_unix_ = 0;
  std::vector<TraceRecord> trace_;
  std::atomic<size_t> subscribed_{0};
  std::atomic<size_t> finished_connecting_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> min_id_{UINT64_MAX};
  std::atomic<uint64_t> max_id_{0};
  std::atomic<uint64_t> completions_{0};
};

}  // namespace embedstream::bench
