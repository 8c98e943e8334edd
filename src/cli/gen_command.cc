#include "cli/gen_command.h"

#include "core/progress.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cli/cli_producer.h"
#include "cli/ecommerce_gen.h"
#include "core/logging.h"
#include "sinks/kafka_producer.h"

namespace embedstream::cli {
namespace {

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
    Progress progress({.label = "gen", .total = n, .unit = "events"});
    bool ok = true;
    for (uint64_t i = 0; i < n && ok; ++i) {
      pacer.Wait(i);
      std::string line = generator.Next();
      line.push_back('\n');
      ok = std::fwrite(line.data(), 1, line.size(), out) == line.size();
      if (rate > 0) std::fflush(out);
      progress.Add();
    }
    progress.Finish();
    ok = std::fflush(out) == 0 && ok;
    if (out != stdout) ok = std::fclose(out) == 0 && ok;
    if (!ok) {
      log->error("writing {} failed", output);
      return 1;
    }
    Summary(n, pacer.Seconds(), output == "-" ? "stdout" : output, 0);
    return 0;
  }

  auto producer = CliProducer::Create(BrokersOr(brokers));
  if (!producer) {
    log->error("{}", producer.error().ToString());
    return 2;
  }
  Pacer pacer(rate);
  Progress progress({.label = "gen", .total = n, .unit = "events"});
  for (uint64_t i = 0; i < n; ++i) {
    pacer.Wait(i);
    const EcommerceEvent ev = generator.NextEvent();
    if (Status st = (*producer)->Send(topic, ev.event_id, ev.json, i); !st) {
      log->error("{}", st.error().ToString());
      (*producer)->Finish(60000);
      return 1;
    }
    progress.Add();
  }
  progress.Finish();
  const uint64_t undelivered = (*producer)->Finish(90000);
  const uint64_t delivered = (*producer)->delivered();
  Summary(delivered, pacer.Seconds(), "topic " + topic, undelivered);
  return (undelivered == 0 && delivered == n) ? 0 : 1;
}

}  // namespace embedstream::cli
