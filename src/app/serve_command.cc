#include "app/serve_command.h"

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

#include "api/access_policy.h"
#include "api/api_routes.h"
#include "api/dashboard.h"
#include "api/qdrant_search.h"
#include "app/kafka_stream.h"
#include "app/message_service.h"
#include "app/postgres_service.h"
#include "app/qdrant_options.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "server/http_server.h"
#include "server/sse_hub.h"
#include "store/embedded_store.h"

namespace embedstream::app {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

// Each SSE client and connection is a file descriptor: raise the soft limit
// to the hard one (often 1024 -> 1M), so 1,000+ clients do not exhaust it.
void RaiseFileLimit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  const rlim_t before = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    GetLogger("app")->debug("open file limit raised from {} to {}", before, rl.rlim_cur);
  }
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.starts_with("127.");
}

}  // namespace

void ServeCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "serve",
      "Run the service: HTTP ingest (POST /messages) into the embedded store, embedding worker, "
      "search, live events (SSE), dashboard; with Kafka brokers also the Kafka pipeline");
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
  cmd->add_option("--data-dir", flags.data_dir,
                  "Directory of the embedded store [data; env: EMBEDSTREAM_DATA_DIR]");
  cmd->add_option("--auth-token", flags.auth_token,
                  "Bearer token required on every route but /health and /ready "
                  "[env: EMBEDSTREAM_AUTH_TOKEN]");
  cmd->add_flag("--no-store", flags.no_store,
                "Kafka only: no embedded store, no HTTP ingest or search");
  cmd->add_option("--pg-sink", flags.pg_sink,
                  "Write Kafka records into PostgreSQL: off, embeddings (text + vectors) or text "
                  "(text rows only, for --pg-source) [off]");
  cmd->add_flag("--pg-source", flags.pg_source,
                "Embed the pending rows of the PostgreSQL text table (CQRS; connection from "
                "DATABASE_* / postgres:)");
  cmd->add_option("--pg-poll-ms", flags.pg_poll_ms,
                  "Poll interval of the PostgreSQL source when no NOTIFY arrives [5000]");
  cmd->add_option("--search-backend", flags.search_backend,
                  "Where POST /embeddings/search looks: embedded, postgres or qdrant [embedded]");
  cmd->add_option("--qdrant-url", flags.qdrant_url,
                  "Write Kafka records' vectors into Qdrant at this URL [env: QDRANT_URL]");
  cmd->add_flag("--print-config", print_config, "Print the effective configuration and exit");
  cmd->footer(
      "Precedence: config file < environment < flags. Without Kafka brokers, serve runs the "
      "embedded default: POST /messages -> store -> embedding worker -> search. API: "
      "docs/API.md.");
  cmd->callback([this] { std::exit(Run()); });
}

namespace {

// Everything one `serve` process runs, in construction order; destroyed in
// reverse, after Shutdown() has stopped the threads in a safe order.
struct Service {
  std::unique_ptr<server::SseHub> hub;
  std::unique_ptr<store::EmbeddedStore> store;
  std::unique_ptr<MessageService> messages;
  // Before api: its search thread uses the PostgreSQL search backend.
  std::unique_ptr<PostgresService> postgres;
  std::unique_ptr<api::ApiRoutes> api;
  std::unique_ptr<sinks::PostgresSink> postgres_sink;  // the Kafka pipeline's
  std::unique_ptr<sinks::QdrantSink> qdrant_sink;      // the Kafka pipeline's
  std::unique_ptr<KafkaStream> kafka;
  std::unique_ptr<server::HttpServer> http;
};

std::string EmbeddedStatsJson(const MessageServiceStats& m, const std::string& store_status,
                              size_t sse_clients) {
  JsonWriter w;
  w.BeginObject()
      .Key("received")
      .Uint(m.received.load())
      .Key("created")
      .Uint(m.created.load())
      .Key("requeued")
      .Uint(m.requeued.load())
      .Key("refused")
      .Uint(m.refused.load())
      .Key("queued")
      .Int(m.queued.load())
      .Key("queued_bytes")
      .Int(m.queued_bytes.load())
      .Key("commits")
      .Uint(m.commits.load())
      .Key("embedded")
      .Uint(m.embedded.load())
      .Key("failed")
      .Uint(m.failed.load())
      .Key("worker_batches")
      .Uint(m.worker_batches.load())
      .Key("store_errors")
      .Uint(m.store_errors.load())
      .Key("sse_clients")
      .Uint(sse_clients)
      .Key("store")
      .Raw(store_status)
      .EndObject();
  return w.Take();
}

}  // namespace

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
  EncoderFlags enc_flags = encoder;
  if (enc_flags.batch_tokens_max < 0) {
    enc_flags.batch_tokens_max = static_cast<long>(config->batch_max_tokens);
  }
  auto enc = enc_flags.LoadEncoder();
  if (!enc) {
    log->error("{}", enc.error().ToString());
    return 2;
  }
  model::SentenceEncoder& encoder_ref = **enc;
  const std::string model_name = encoder_ref.info().model_name;
  InstallSignalHandlers();
  RaiseFileLimit();

  Service svc;
  svc.hub = std::make_unique<server::SseHub>(
      server::SseHubOptions{.ring_capacity = config->sse_ring,
                            .heartbeat = std::chrono::milliseconds(config->sse_heartbeat_ms)});
  const PostgresSettings& pg = config->postgres;
  if (pg.source_enabled || config->search_backend == "postgres") {
    auto opened = PostgresService::Open(*config, encoder_ref);
    if (!opened) {
      log->error("{}", opened.error().ToString());
      return 2;
    }
    svc.postgres = std::move(*opened);
  }
  if (config->store_enabled) {
    store::StoreOptions so;
    so.dir = config->store_dir;
    so.dim = encoder_ref.dim();
    so.model_name = model_name;
    so.sync_full = config->store_sync_full;
    auto opened = store::EmbeddedStore::Open(so);
    if (!opened) {
      log->error("{}", opened.error().ToString());
      return 2;
    }
    svc.store = std::move(*opened);
    MessageServiceOptions mo;
    mo.model_name = model_name;
    mo.max_queue = config->store_max_queue;
    mo.max_queue_bytes = config->store_max_queue_bytes;
    mo.worker_batch_tokens = config->batch_max_tokens;
    svc.messages =
        std::make_unique<MessageService>(*svc.store, encoder_ref, svc.hub.get(), std::move(mo));
    api::ApiOptions ao;
    ao.model_name = model_name;
    ao.max_response_bytes = config->http_max_response_bytes;
    if (config->search_backend == "qdrant") {
      auto search = sinks::QdrantSink::Connect(QdrantOptions(config->qdrant, encoder_ref.dim()));
      if (!search) {
        log->error("{}", search.error().ToString());
        return 2;
      }
      ao.search_backend = api::QdrantSearchBackend(std::move(*search));
      ao.search_backend_name = "qdrant";
    }
    if (svc.postgres) {
      if (auto pg_search = svc.postgres->search_backend()) {
        ao.search_backend = std::move(pg_search);
        ao.search_backend_name = "postgres";
      }
      if (svc.postgres->has_source()) {
        PostgresService* p = svc.postgres.get();
        ao.extra_status.emplace_back("postgres", [p] { return p->SourceStatsJson(); });
      }
    }
    svc.api = std::make_unique<api::ApiRoutes>(
        *svc.store, std::bind_front(&MessageService::Submit, svc.messages.get()), encoder_ref,
        std::move(ao));
  }
  if (config->kafka.enabled()) {
    svc.kafka = std::make_unique<KafkaStream>(*config, encoder_ref);
    const bool text_mode = pg.sink_mode == "text";
    // Text mode embeds nothing on this path, so there is nothing for the store.
    svc.kafka->SetStoreSink(text_mode ? nullptr : svc.store.get(), svc.hub.get());
    if (pg.sink_mode != "off") {
      auto sink = OpenPostgresSink(*config, encoder_ref);
      if (!sink) {
        log->error("{}", sink.error().ToString());
        return 2;
      }
      svc.postgres_sink = std::move(*sink);
      svc.kafka->SetPostgresSink(svc.postgres_sink.get(), text_mode);
    }
    if (config->qdrant.enabled()) {
      auto sink = sinks::QdrantSink::Connect(QdrantOptions(config->qdrant, encoder_ref.dim()));
      if (!sink) {
        log->error("{}", sink.error().ToString());
        return 2;
      }
      svc.qdrant_sink = std::move(*sink);
      svc.kafka->SetQdrantSink(svc.qdrant_sink.get());
    }
    if (auto st = svc.kafka->Start(); !st.ok()) {
      log->error("{}", st.error().ToString());
      return 2;
    }
  }

  server::ServerOptions so;
  so.host = config->http_host;
  so.port = static_cast<uint16_t>(config->http_port);
  so.max_body_bytes = config->http_max_body_bytes;
  so.max_connections = config->http_max_connections;
  so.write_timeout = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::milliseconds(std::max(1000, config->http_write_timeout_ms)));
  so.stream_queue_max_bytes = config->sse_max_client_bytes;
  so.streams_max_total_bytes = config->sse_max_total_bytes;
  auto access = std::make_shared<const api::AccessPolicy>(
      api::AccessOptions{.token = config->auth_token,
                         .read_token = config->auth_read_token,
                         .public_metrics = config->auth_public_metrics,
                         .cors_origins = config->http_cors_origins});
  so.filter = [access](const server::HttpRequest& request, server::HeaderList& extra) {
    return access->Check(request, extra);
  };
  if (access->open() && !IsLoopback(config->http_host)) {
    log->warn(
        "auth.token is not set: every route, writes included, is open to anyone who can "
        "reach {}:{} (docs/SECURITY.md)",
        config->http_host, config->http_port);
  }
  svc.http = std::make_unique<server::HttpServer>(so);
  server::HttpServer& http = *svc.http;
  const std::string config_json = ServeConfigJson(*config);
  std::atomic<bool> running{false};
  http.Route("GET", "/health",
             [](const server::HttpRequest&) { return server::JsonOk(R"({"status":"healthy"})"); });
  http.Route("GET", "/ready", [&svc, &running](const server::HttpRequest&) {
    const bool ready = running.load() && (!svc.kafka || svc.kafka->running());
    if (ready && svc.postgres && !svc.postgres->connected()) {
      return server::JsonError(503, "not_ready", "PostgreSQL is unreachable; reconnecting");
    }
    if (ready) return server::JsonOk(R"({"status":"ready"})");
    return server::JsonError(503, "not_ready", "the service is starting or stopping");
  });
  http.Route("GET", "/stats", [&svc](const server::HttpRequest&) {
    std::string body;
    if (svc.kafka) {
      body = svc.kafka->StatsJson();
      if (svc.api) {
        body.pop_back();  // '}' of the Kafka object: append the store's counters
        body += R"(,"store":)" + svc.api->StatusJson() + "}";
      }
    } else if (svc.api) {
      body = EmbeddedStatsJson(svc.messages->stats(), svc.api->StatusJson(), svc.hub->clients());
    } else {
      body = "{}";
    }
    if (svc.postgres && svc.postgres->has_source()) {
      body.pop_back();
      if (body.size() > 1) body += ',';
      body += R"("postgres_source":)" + svc.postgres->SourceStatsJson() + "}";
    }
    return server::JsonOk(std::move(body));
  });
  http.Route("GET", "/config",
             [&config_json](const server::HttpRequest&) { return server::JsonOk(config_json); });
  http.Route("GET", "/metrics", [](const server::HttpRequest&) {
    server::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = MetricsRegistry::Global().RenderPrometheus();
    return r;
  });
  if (svc.api) svc.api->Register(http);
  svc.hub->Attach(http, "/events");
  api::RegisterDashboard(http);
  if (auto st = http.Start(); !st.ok()) {
    log->error("{}", st.error().ToString());
    return 2;
  }
  log->info("HTTP on {}:{} (store {}, kafka {}, postgres sink {}, source {}, search {})",
            config->http_host, http.port(), config->store_enabled ? config->store_dir : "off",
            config->kafka.enabled() ? config->kafka.bootstrap_servers : "off", pg.sink_mode,
            pg.source_enabled ? pg.connection.Where() + "/" + pg.text_table : "off",
            config->search_backend);
  if (svc.messages) svc.messages->Start();
  if (svc.postgres) svc.postgres->Start();
  running = true;
  if (svc.kafka) {
    svc.kafka->Run(g_stop);
  } else {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  running = false;
  log->info("stopping");
  // Commit and answer every queued POST, let the worker finish its round, then
  // close the connections and streams; the store saves its index snapshot last.
  if (svc.postgres) svc.postgres->Stop();
  if (svc.messages) svc.messages->Stop();
  http.Stop();
  svc.hub->Stop();
  return 0;
}

}  // namespace embedstream::app
