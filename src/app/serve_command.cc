#include "app/serve_command.h"

#include <csignal>
#include <cstdio>
#include <thread>

#include "app/kafka_stream.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "server/http_server.h"

namespace embedstream::app {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

std::string StatsJson(const StreamStats& s, const std::vector<sources::PartitionLag>& lag) {
  JsonWriter w;
  const uint64_t batches = s.batches.load();
  int64_t total_lag = 0;
  for (const auto& l : lag) total_lag += std::max<int64_t>(0, l.lag);
  w.BeginObject()
      .Key("consumed")
      .Uint(s.consumed.load())
      .Key("embedded")
      .Uint(s.embedded.load())
      .Key("produced")
      .Uint(s.produced.load())
      .Key("dlq")
      .Uint(s.dlq.load())
      .Key("errors")
      .Uint(s.errors.load())
      .Key("batches")
      .Uint(batches)
      .Key("average_batch_size")
      .Double(batches == 0
                  ? 0.0
                  : static_cast<double>(s.batch_records.load()) / static_cast<double>(batches))
      .Key("inflight")
      .Int(s.inflight.load())
      .Key("paused")
      .Bool(s.paused.load())
      .Key("lag")
      .Int(total_lag)
      .Key("partitions")
      .BeginArray();
  for (const auto& l : lag) {
    w.BeginObject()
        .Key("topic")
        .String(l.topic)
        .Key("partition")
        .Int(l.partition)
        .Key("lag")
        .Int(l.lag)
        .EndObject();
  }
  w.EndArray().EndObject();
  return w.Take();
}

}  // namespace

void ServeCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "serve",
      "Run the service: consume Kafka text messages, embed them, publish seed 000 `embeddings` "
      "records; HTTP /health /ready /stats /config /metrics");
  encoder.AddTo(*cmd);  // adds -c/--config, shared with the serve settings
  cmd->add_option("--kafka-brokers,--bootstrap-servers", flags.kafka_brokers,
                  "Kafka bootstrap servers [env: KAFKA_BOOTSTRAP_SERVERS]");
  cmd->add_option("--group", flags.group_id, "Consumer group id [embedstream]");
  cmd->add_option("--input-topic", flags.input_topics, "Input topic(s) [text-messages]");
  cmd->add_option("--output-topic", flags.output_topic, "Output topic [embeddings]");
  cmd->add_option("--dlq-topic", flags.dlq_topic, "Dead-letter topic [<input>-dlq]");
  cmd->add_option("--auto-offset-reset", flags.auto_offset_reset, "earliest or latest [earliest]");
  cmd->add_option("--batch-max-tokens", flags.batch_max_tokens, "Token budget of a batch [8192]");
  cmd->add_option("--batch-max-wait-ms", flags.batch_max_wait_ms,
                  "No record waits longer than this for a batch [50]");
  cmd->add_option("--batch-linger-ms", flags.batch_linger_ms,
                  "When the input is idle, wait this long for more records [0]");
  cmd->add_option("--host", flags.http_host, "HTTP listen address [0.0.0.0]");
  cmd->add_option("--port", flags.http_port, "HTTP port [5000; env: PORT]");
  cmd->add_flag("--print-config", print_config, "Print the effective configuration and exit");
  cmd->footer(
      "Precedence: config file < environment < flags. Without Kafka brokers configured there is "
      "no source to run yet (the embedded HTTP ingest is not built).");
  cmd->callback([this] { std::exit(Run()); });
}

int ServeCommand::Run() {
  auto log = GetLogger("app");
  flags.config_file = encoder.config_file;
  auto config = LoadServeConfig(flags);
  if (!config) {
    log->error("{}", config.error().ToString());
    return 2;
  }
  if (print_config) {
    std::printf("%s\n", ServeConfigJson(*config).c_str());
    return 0;
  }
  if (!config->kafka.enabled()) {
    log->error(
        "no source configured: set kafka.bootstrap_servers (or KAFKA_BOOTSTRAP_SERVERS / "
        "--kafka-brokers). The embedded default (HTTP ingest + store) is not built yet.");
    return 2;
  }
  EncoderFlags enc_flags = encoder;
  if (enc_flags.batch_tokens_max < 0) {
    enc_flags.batch_tokens_max = static_cast<long>(config->batch_max_tokens);
  }
  auto enc = enc_flags.LoadEncoder();
  if (!enc) {
    log->error("{}", enc.error().ToString());
    return 2;
  }
  InstallSignalHandlers();
  KafkaStream stream(*config, **enc);
  if (auto st = stream.Start(); !st.ok()) {
    log->error("{}", st.error().ToString());
    return 2;
  }

  server::ServerOptions so;
  so.host = config->http_host;
  so.port = static_cast<uint16_t>(config->http_port);
  server::HttpServer http(so);
  const std::string config_json = ServeConfigJson(*config);
  http.Route("GET", "/health",
             [](const server::HttpRequest&) { return server::JsonOk(R"({"status":"healthy"})"); });
  http.Route("GET", "/ready", [&stream](const server::HttpRequest&) {
    if (stream.stats().running.load()) return server::JsonOk(R"({"status":"ready"})");
    return server::JsonError(503, "not_ready", "the pipeline is starting or stopping");
  });
  http.Route("GET", "/stats", [&stream](const server::HttpRequest&) {
    return server::JsonOk(StatsJson(stream.stats(), stream.Lag()));
  });
  http.Route("GET", "/config",
             [&config_json](const server::HttpRequest&) { return server::JsonOk(config_json); });
  http.Route("GET", "/metrics", [](const server::HttpRequest&) {
    server::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = MetricsRegistry::Global().RenderPrometheus();
    return r;
  });
  if (auto st = http.Start(); !st.ok()) {
    log->error("{}", st.error().ToString());
    return 2;
  }
  log->info("HTTP on {}:{}", config->http_host, http.port());
  stream.Run(g_stop);
  http.Stop();
  return 0;
}

}  // namespace embedstream::app
