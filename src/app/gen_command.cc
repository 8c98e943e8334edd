#include "app/gen_command.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "app/ecommerce_gen.h"
#include "core/logging.h"
#include "sinks/kafka_producer.h"

namespace embedstream::app {
namespace {

std::string Brokers(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  return (env != nullptr && *env != '\0') ? env : "127.0.0.1:9092";
}

// Paces a loop at `rate` per second against the start time (no drift).
class Pacer {
 public:
  explicit Pacer(double rate) : rate_(rate), t0_(std::chrono::steady_clock::now()) {}
  void Wait(uint64_t i) const {
    if (rate_ <= 0) return;
    const auto due = t0_ + std::chrono::duration<double>(static_cast<double>(i) / rate_);
    std::this_thread::sleep_until(
        std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
  }
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double rate_;
  std::chrono::steady_clock::time_point t0_;
};

void Summary(uint64_t events, double secs, const std::string& where, uint64_t failed) {
  std::fprintf(stderr, "gen: %llu events to %s in %.2f s (%.1f events/s), %llu failed\n",
               static_cast<unsigned long long>(events), where.c_str(), secs,
               secs > 0 ? static_cast<double>(events) / secs : 0.0,
               static_cast<unsigned long long>(failed));
}

}  // namespace

void GenCommand::Register(CLI::App& parent) {
  auto* gen = parent.add_subcommand(
      "gen", "Generate synthetic event streams (to Kafka or a file) for demos and benchmarks");
  gen->require_subcommand(1);
  auto* cmd = gen->add_subcommand(
      "ecommerce",
      "Seed 002 e-commerce events: {event_id, timestamp, user_id, event_type, product{id, name, "
      "description, category, price}, session_id}; 10 categories, Zipf-popular products, "
      "descriptions of 1-8 sentences. Same --seed, same events (ids and timestamps included, "
      "unless --now).\n"
      "  embedstream gen ecommerce --count 20000 --topic ecommerce-events\n"
      "  embedstream gen ecommerce --count 5 --output -");
  cmd->add_option("-n,--count", count, "Number of events")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--rate", rate, "Events per second (0 = as fast as possible) [0]")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", seed, "Random seed: the same seed gives the same events [42]");
  cmd->add_option("--users", users, "Distinct users [5000]")->check(CLI::PositiveNumber);
  cmd->add_option("--products", products, "Catalog size (at least 10) [2000]")
      ->check(CLI::PositiveNumber);
  auto* topic_opt =
      cmd->add_option("-t,--topic", topic, "Kafka topic to produce to (key = event_id)");
  cmd->add_option("-b,--kafka-brokers,--brokers", brokers,
                  "Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092]");
  auto* output_opt =
      cmd->add_option("-o,--output", output, "Write JSON lines to FILE (- = stdout)");
  topic_opt->excludes(output_opt);
  cmd->add_flag("--now", now, "Timestamps from the wall clock instead of the seed's fixed base");
  cmd->callback([this] { std::exit(Run()); });
}

int GenCommand::Run() {
  auto log = GetLogger("app");
  if (topic.empty() == output.empty()) {
    log->error("give exactly one of --topic (Kafka) or --output (FILE or -)");
    return 2;
  }
  EcommerceGenOptions go;
  go.seed = seed;
  go.users = users;
  go.products = products;
  go.wall_clock = now;
  EcommerceGenerator generator(go);
  const auto n = static_cast<uint64_t>(count);

  if (!output.empty()) {
    FILE* out = output == "-" ? stdout : std::fopen(output.c_str(), "wb");
    if (out == nullptr) {
      log->error("cannot open {} for writing", output);
      return 2;
    }
    Pacer pacer(rate);
    bool ok = true;
    for (uint64_t i = 0; i < n && ok; ++i) {
      pacer.Wait(i);
      std::string line = generator.Next();
      line.push_back('\n');
      ok = std::fwrite(line.data(), 1, line.size(), out) == line.size();
      if (rate > 0) std::fflush(out);
    }
    ok = std::fflush(out) == 0 && ok;
    if (out != stdout) ok = std::fclose(out) == 0 && ok;
    if (!ok) {
      log->error("writing {} failed", output);
      return 1;
    }
    Summary(n, pacer.Seconds(), output == "-" ? "stdout" : output, 0);
    return 0;
  }

  uint64_t delivered = 0, failed = 0;
  sinks::KafkaProducerOptions po;
  po.bootstrap_servers = Brokers(brokers);
  po.delivery_timeout_ms = 60000;
  auto producer = sinks::KafkaProducer::Create(po, [&](const sinks::DeliveryReport& r) {
    if (r.ok) {
      ++delivered;
    } else {
      if (failed++ < 10) GetLogger("app")->error("delivery failed: {}", r.error);
    }
  });
  if (!producer) {
    log->error("{}", producer.error().ToString());
    return 2;
  }
  Pacer pacer(rate);
  for (uint64_t i = 0; i < n; ++i) {
    pacer.Wait(i);
    const EcommerceEvent ev = generator.NextEvent();
    for (;;) {
      const Status st = (*producer)->Produce(topic, ev.event_id, ev.json, {}, i);
      if (st.ok()) break;
      if (st.error().code != errc::unavailable) {
        log->error("{}", st.error().ToString());
        (*producer)->Flush(60000);
        return 1;
      }
      (*producer)->Poll(10);  // local queue full: serve reports, then retry
    }
    (*producer)->Poll(0);
  }
  const int left = (*producer)->Flush(90000);
  Summary(delivered, pacer.Seconds(), "topic " + topic, failed + static_cast<uint64_t>(left));
  return (failed == 0 && left == 0 && delivered == n) ? 0 : 1;
}

}  // namespace embedstream::app
