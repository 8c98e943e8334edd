#include "cli/cli_producer.h"

#include <cstdlib>
#include <thread>

#include "core/logging.h"

namespace embedstream::cli {

std::string BrokersOr(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  return (env != nullptr && *env != '\0') ? env : "127.0.0.1:9092";
}

Pacer::Pacer(double rate) : rate_(rate), t0_(std::chrono::steady_clock::now()) {}

void Pacer::Wait(uint64_t i) const {
  if (rate_ <= 0) return;
  const auto due = t0_ + std::chrono::duration<double>(static_cast<double>(i) / rate_);
  std::this_thread::sleep_until(
      std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
}

double Pacer::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

Result<std::unique_ptr<CliProducer>> CliProducer::Create(const std::string& brokers) {
  std::unique_ptr<CliProducer> self(new CliProducer());
  sinks::KafkaProducerOptions po;
  po.bootstrap_servers = brokers;
  po.delivery_timeout_ms = 60000;
  CliProducer* p = self.get();
  auto producer = sinks::KafkaProducer::Create(po, [p](const sinks::DeliveryReport& r) {
    if (r.ok) {
      ++p->delivered_;
    } else if (p->failed_++ < 10) {  // the first few say why; the count says how many
      GetLogger("app")->error("delivery failed: {}", r.error);
    }
  });
  if (!producer) return producer.error();
  self->producer_ = std::move(*producer);
  return self;
}

Status CliProducer::Send(const std::string& topic, const std::string& key, const std::string& value,
                         uint64_t token) {
  for (;;) {
    Status st = producer_->Produce(topic, key, value, {}, token);
    if (st.ok() || st.error().code != errc::unavailable) {
      producer_->Poll(0);
      return st;
    }
    producer_->Poll(10);  // local queue full: serve reports, then retry
  }
}

uint64_t CliProducer::Finish(int timeout_ms) {
  const int left = producer_->Flush(timeout_ms);
  return failed_ + static_cast<uint64_t>(std::max(0, left));
}

}  // namespace embedstream::cli
