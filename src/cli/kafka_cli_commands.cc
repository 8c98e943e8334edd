#include "cli/kafka_cli_commands.h"

#include "core/progress.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "cli/cli_producer.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"
#include "sinks/kafka_producer.h"
#include "sources/kafka_consumer.h"

namespace embedstream::cli {
namespace {

// Seed 000 input message.
std::string TextMessage(const std::string& id, const std::string& text, const std::string& src) {
  JsonWriter w;
  w.BeginObject()
      .Key("id")
      .String(id)
      .Key("text")
      .String(text)
      .Key("timestamp")
      .Double(UnixSeconds())
      .Key("source")
      .String(src)
      .EndObject();
  return w.Take();
}

}  // namespace

void ProduceCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "produce", "Write text messages (seed 000 JSON) to a Kafka topic; --count for a perf run");
  cmd->add_option("topic", topic, "Topic")->required();
  cmd->add_option("text", texts, "Text(s) to send, one message each");
  cmd->add_option("-b,--brokers", brokers, "Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS]");
  cmd->add_option("--file", file,
                  "Send one message per line of this file (JSON lines are "
                  "sent as they are, plain lines wrapped as seed 000 JSON)");
  cmd->add_option("--count", count, "Perf mode: send N generated messages");
  cmd->add_option("--rate", rate, "Perf mode: messages per second (0 = unthrottled)");
  cmd->add_option("--size", size, "Perf mode: approximate text size in bytes");
  cmd->add_option("--source", source, "source field of generated messages");
  cmd->add_flag("--raw", raw, "Send --file lines byte for byte (no wrapping)");
  cmd->callback([this] { std::exit(Run()); });
}

int ProduceCommand::Run() {
  auto log = GetLogger("app");
  // A message is either raw bytes (sent as they are) or a text wrapped as
  // seed 000 JSON at send time, so its timestamp is when it was sent.
  struct Out {
    std::string key, raw, text;
    bool wrap = false;
  };
  std::vector<Out> messages;
  auto add_text = [&](std::string text) {
    messages.push_back({FormatUuid(RandomUuidV4()), "", std::move(text), true});
  };
  for (const auto& t : texts) add_text(t);
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      log->error("cannot open {}", file);
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (raw || line.front() == '{') {
        messages.push_back({"", line, "", false});
      } else {
        add_text(line);
      }
    }
  }
  for (long i = 0; i < count; ++i) {
    std::string text = "perf message " + std::to_string(i) + " about streaming embeddings";
    while (text.size() < size) text += " and vectors arriving in order";
    add_text(std::move(text));
  }
  if (messages.empty()) {
    log->error("nothing to send: give text, --file or --count");
    return 2;
  }
  auto producer = CliProducer::Create(BrokersOr(brokers));
  if (!producer) {
    log->error("{}", producer.error().ToString());
    return 2;
  }
  size_t bytes = 0;
  const Pacer pacer(rate);
  Progress progress({.label = "produce", .total = messages.size(), .unit = "messages"});
  for (size_t i = 0; i < messages.size(); ++i) {
    pacer.Wait(i);
    const Out& m = messages[i];
    const std::string value = m.wrap ? TextMessage(m.key, m.text, source) : m.raw;
    if (Status st = (*producer)->Send(topic, m.key, value, i); !st) {
      log->error("{}", st.error().ToString());
      return 1;
    }
    bytes += value.size();
    progress.Add();
  }
  progress.Finish();
  const uint64_t undelivered = (*producer)->Finish(60000);
  const uint64_t delivered = (*producer)->delivered();
  const double secs = pacer.Seconds();
  if (count > 0) {
    std::printf("%llu records sent, %.1f records/sec (%.2f MB/sec), %llu failed\n",
                static_cast<unsigned long long>(delivered), static_cast<double>(delivered) / secs,
                static_cast<double>(bytes) / secs / 1e6,
                static_cast<unsigned long long>(undelivered));
  } else {
    std::fprintf(stderr, "sent %llu message(s) to %s\n", static_cast<unsigned long long>(delivered),
                 topic.c_str());
  }
  return undelivered == 0 ? 0 : 1;
}

void ConsumeCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("consume", "Read messages from a Kafka topic to stdout");
  cmd->add_option("topic", topic, "Topic")->required();
  cmd->add_option("-b,--brokers", brokers, "Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS]");
  cmd->add_option("-n,--max-messages", max_messages, "Stop after N messages");
  cmd->add_option("--group", group, "Consumer group (commits offsets) [a fresh one, no commit]");
  cmd->add_flag("--from-beginning", from_beginning, "Start at the earliest offset");
  cmd->add_option("--idle-timeout-ms", idle_timeout_ms,
                  "Stop when nothing arrives for this long [wait for ever]");
  cmd->add_option("--format", format,
                  "value (the payload) or json (topic, partition, offset, key, headers, value)")
      ->check(CLI::IsMember({"value", "json"}));
  cmd->callback([this] { std::exit(Run()); });
}

int ConsumeCommand::Run() {
  auto log = GetLogger("app");
  sources::KafkaConsumerOptions co;
  co.bootstrap_servers = BrokersOr(brokers);
  co.group_id = group.empty() ? "embedstream-cli-" + FormatUuid(RandomUuidV4()) : group;
  co.topics = {topic};
  co.auto_offset_reset = from_beginning ? "earliest" : "latest";
  co.read_headers = format == "json";
  auto consumer = sources::KafkaConsumer::Create(co, nullptr);
  if (!consumer) {
    log->error("{}", consumer.error().ToString());
    return 2;
  }
  long seen = 0;
  auto last = std::chrono::steady_clock::now();
  std::string out;
  while (max_messages < 0 || seen < max_messages) {
    auto records = (*consumer)->Poll(200, 1000);
    if (records.empty()) {
      if (idle_timeout_ms >= 0 &&
          std::chrono::steady_clock::now() - last >= std::chrono::milliseconds(idle_timeout_ms)) {
        break;
      }
      continue;
    }
    last = std::chrono::steady_clock::now();
    out.clear();
    std::vector<pipeline::CommitPoint> commits;
    for (auto& r : records) {
      if (max_messages >= 0 && seen >= max_messages) break;
      ++seen;
      if (format == "json") {
        JsonWriter w;
        w.BeginObject()
            .Key("topic")
            .String(r.topic)
            .Key("partition")
            .Int(r.partition)
            .Key("offset")
            .Int(r.offset)
            .Key("timestamp_ms")
            .Int(r.timestamp_ms)
            .Key("key");
        if (r.has_key) {
          w.String(r.key);
        } else {
          w.Null();
        }
        w.Key("headers").BeginObject();
        for (const auto& [k, v] : r.headers) w.Key(k).String(v);
        w.EndObject().Key("value").String(r.value).EndObject();
        out += w.str();
      } else {
        out += r.value;
      }
      out.push_back('\n');
      commits.push_back({r.topic, r.partition, r.offset + 1});
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    if (!group.empty()) (void)(*consumer)->Commit(commits, false);
  }
  (*consumer)->Close();
  return 0;
}

}  // namespace embedstream::cli
