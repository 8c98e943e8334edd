#pragma once
// KafkaProducer: an idempotent librdkafka producer (acks=all, no duplicates
// from its own retries). Produce() queues a record with a caller token;
// Poll() runs delivery reports on the calling thread, so the pipeline learns
// which tokens are durable in the broker without locks. One thread calls
// everything.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace embedstream::sinks {

struct KafkaProducerOptions {
  std::string bootstrap_servers;
  std::map<std::string, std::string> properties;  // extra librdkafka settings
  int delivery_timeout_ms = 120000;               // librdkafka retries internally this long
};

struct DeliveryReport {
  uint64_t token = 0;
  bool ok = false;
  // The broker refuses this record for what it is (too large, invalid):
  // retrying cannot help. Otherwise a failure is transient (timeouts,
  // brokers down) and worth retrying.
  bool permanent = false;
  std::string error;
};

class KafkaProducer {
 public:
  using DeliveryListener = std::function<void(const DeliveryReport&)>;

  static Result<std::unique_ptr<KafkaProducer>> Create(const KafkaProducerOptions& options,
                                                       DeliveryListener listener);
  ~KafkaProducer();

  // Queues one record. Error(unavailable) when the local queue is full (call
  // Poll and try again); Error(invalid_argument) for a record too large for
  // the client (the record's fault); Error(io_error) for any other refusal
  // (an unknown topic, a fatal producer error: not the record's fault).
  Status Produce(const std::string& topic, const std::string& key, const std::string& value,
                 const std::vector<std::pair<std::string, std::string>>& headers, uint64_t token);
  // A tombstone: `key` with a null value (a compacted topic drops the key).
  Status ProduceTombstone(const std::string& topic, const std::string& key, uint64_t token);
  // Serves delivery reports (calls the listener) for up to timeout_ms.
  void Poll(int timeout_ms);
  // Waits until every queued record is delivered or failed, up to timeout_ms.
  // Returns the number still outstanding.
  int Flush(int timeout_ms);
  int outstanding() const;
  // Asks a broker for the cluster's metadata: ok when one answers within
  // timeout_ms (readiness probes; any thread).
  Status Ping(int timeout_ms);
  // Learns where `topic` lives now (a metadata request for it), so the first
  // record produced to it is sent at once: otherwise librdkafka holds it until
  // its next periodic metadata refresh, up to a second later.
  Status WarmUp(const std::string& topic, int timeout_ms);

 private:
  Status ProduceRaw(const std::string& topic, const std::string& key, const char* value,
                    size_t size, const std::vector<std::pair<std::string, std::string>>& headers,
                    uint64_t token);
  KafkaProducer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::sinks
