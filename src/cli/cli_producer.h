#pragma once
// What the command-line producers (`produce`, `gen ecommerce`) share: the
// broker list from a flag or the environment, pacing at a fixed rate, and an
// idempotent producer that counts delivery reports and waits out a full
// local queue.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "sinks/kafka_producer.h"

namespace embedstream::cli {

// `flag`, else KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092.
std::string BrokersOr(const std::string& flag);

// Paces a loop at `rate` per second against its start time (no drift);
// rate <= 0: no pacing.
class Pacer {
 public:
  explicit Pacer(double rate);
  void Wait(uint64_t i) const;  // until item i is due
  double Seconds() const;       // since construction

 private:
  double rate_;
  std::chrono::steady_clock::time_point t0_;
};

class CliProducer {
 public:
  // unavailable/invalid_argument from librdkafka's configuration.
  static Result<std::unique_ptr<CliProducer>> Create(const std::string& brokers);
  // Queues one record; while librdkafka's local queue is full, serves
  // delivery reports and tries again. Errors other than a full queue return.
  Status Send(const std::string& topic, const std::string& key, const std::string& value,
              uint64_t token);
  // Waits up to timeout_ms for outstanding deliveries; the records not
  // delivered (failed or still outstanding).
  uint64_t Finish(int timeout_ms);
  uint64_t delivered() const { return delivered_; }

 private:
  CliProducer() = default;
  std::unique_ptr<sinks::KafkaProducer> producer_;
  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
};

}  // namespace embedstream::cli
