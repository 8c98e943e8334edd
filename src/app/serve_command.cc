#include "app/serve_command.h"

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

#include "api/access_policy.h"
#include "api/api_routes.h"
#include "api/dashboard.h"
#include "api/openapi.h"
#include "api/qdrant_search.h"
#include "app/dashboard_series.h"
#include "app/event_bus.h"
#include "app/kafka_ingest.h"
#include "app/message_service.h"
#include "app/postgres_service.h"
#include "app/qdrant_options.h"
#include "app/serve_pipelines.h"
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
  cmd->add_option("--ingest", flags.ingest_mode,
                  "Where POST /messages goes: store (the embedded store's outbox) or kafka (the "
                  "input topic, for many instances behind a load balancer) [store; env "
                  "EMBEDSTREAM_INGEST_MODE]");
  cmd->add_option("--events-bus", flags.events_bus,
                  "How lifecycle events (SSE) reach every instance: local, kafka or redis "
                  "[local; env EMBEDSTREAM_EVENTS_BUS]");
  cmd->add_option("--redis-url", flags.redis_url,
                  "Redis of the events bus: redis://[:password@]host:port[/db] [env REDIS_URL]");
  cmd->add_flag("--print-config", print_config, "Print the effective configuration and exit");
  cmd->footer(
      "Precedence: config file < environment < flags. Without Kafka brokers, serve runs the "
      "embedded default: POST /messages -> store -> embedding worker -> search. API: "
      "docs/API.md.");
  cmd->callback([this] { std::exit(Run()); });
}

namespace {

// Everything one `serve` process runs, in construction order; destroyed in
// reverse, after Run has stopped the threads in a safe order.
struct Service {
  std::unique_ptr<EventBus> bus;  // events.bus kafka | redis; null: local
  std::unique_ptr<server::SseHub> hub;
  std::unique_ptr<KafkaIngest> kafka_ingest;  // ingest.mode kafka
  std::unique_ptr<store::EmbeddedStore> store;
  std::unique_ptr<MessageService> messages;
  std::atomic<sources::HttpIngestSource*> http_source{nullptr};
  // Before api: its search thread uses the PostgreSQL search backend.
  std::unique_ptr<PostgresSearch> postgres_search;
  std::unique_ptr<api::ApiRoutes> api;
  std::unique_ptr<PipelineSet> pipelines;
  std::unique_ptr<DashboardSeries> series;  // the dashboard's charts; after pipelines
  BuiltSources sources;
  std::unique_ptr<server::HttpServer> http;
};

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
  if (config->store_enabled && config->search_backend == "embedded") {
    bool searchable = false;
    for (const auto& source : config->Sources()) {
      for (const auto& sink : config->SinksOf(source)) searchable = searchable || sink == "store";
    }
    if (!searchable) {
      log->warn(
          "search.backend is embedded but no source writes to the store sink: "
          "POST /embeddings/search finds nothing (add store to a source's sinks, or set "
          "search.backend postgres or qdrant)");
    }
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
  EncoderEmbedder embedder(encoder_ref);
  const std::string model_name = encoder_ref.info().model_name;
  InstallSignalHandlers();
  RaiseFileLimit();

  Service svc;
  if (config->events.bus != "local") {
    EventBusOptions bo;
    bo.kind = config->events.bus;
    bo.kafka_brokers = config->kafka.bootstrap_servers;
    bo.kafka_properties = config->kafka.properties;
    bo.topic = config->events.topic;
    bo.redis_url = config->events.redis_url;
    bo.redis_prefix = config->events.redis_prefix;
    bo.window = config->sse_ring;
    auto bus = EventBus::Create(bo);
    if (!bus) {
      log->error("{}", bus.error().ToString());
      return 2;
    }
    svc.bus = std::move(*bus);
  }
  svc.hub = std::make_unique<server::SseHub>(server::SseHubOptions{
      .ring_capacity = config->sse_ring,
      .heartbeat = std::chrono::milliseconds(config->sse_heartbeat_ms),
      .external_ids = svc.bus != nullptr,
      .bus_latest =
          svc.bus ? std::function<uint64_t()>([bus = svc.bus.get()] { return bus->LatestOnBus(); })
                  : std::function<uint64_t()>()});
  if (svc.bus) {
    if (auto st = svc.bus->Start(*svc.hub); !st.ok()) {
      log->error("events bus: {}", st.error().ToString());
      return 2;
    }
  }
  // Where lifecycle events go: the bus (every instance's hub), or this hub.
  server::EventPublisher* events =
      svc.bus ? static_cast<server::EventPublisher*>(svc.bus.get()) : svc.hub.get();
  if (config->ingest.kafka()) {
    KafkaIngestOptions io;
    io.bootstrap_servers = config->kafka.bootstrap_servers;
    io.properties = config->kafka.properties;
    io.topic =
        config->ingest.topic.empty() ? config->kafka.input_topics.front() : config->ingest.topic;
    io.timeout_ms = config->ingest.timeout_ms;
    io.max_pending_bytes = config->store_max_queue_bytes;
    io.max_record_bytes = config->max_record_bytes;
    auto ingest = KafkaIngest::Create(io);
    if (!ingest) {
      log->error("ingest: {}", ingest.error().ToString());
      return 2;
    }
    svc.kafka_ingest = std::move(*ingest);
  }
  if (config->search_backend == "postgres") {
    auto opened = PostgresSearch::Open(*config, encoder_ref);
    if (!opened) {
      log->error("{}", opened.error().ToString());
      return 2;
    }
    svc.postgres_search = std::move(*opened);
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
    mo.max_queue = config->store_max_queue;
    mo.max_queue_bytes = config->store_max_queue_bytes;
    mo.on_committed = [&svc] {
      if (auto* source = svc.http_source.load()) source->Notify();
    };
    if (!svc.kafka_ingest) {
      svc.messages = std::make_unique<MessageService>(*svc.store, events, std::move(mo));
    }
  }
  svc.pipelines = std::make_unique<PipelineSet>();
  {
    PipelineContext ctx{*config,  encoder_ref,
                        embedder, svc.store.get(),
                        events,   svc.messages ? &svc.messages->read_lock() : nullptr};
    auto built = BuildPipelines(ctx, *svc.pipelines);
    if (!built) {
      log->error("{}", built.error().ToString());
      return 2;
    }
    svc.sources = *built;
    svc.http_source = built->http;
    if (built->postgres != nullptr) RegisterPostgresSourceMetrics(built->postgres);
    if (built->kafka != nullptr) RegisterKafkaLagMetrics(built->kafka);
    svc.series = std::make_unique<DashboardSeries>(*svc.pipelines, built->kafka);
  }
  if (svc.store) {
    api::ApiOptions ao;
    ao.model_name = model_name;
    ao.max_response_bytes = config->http_max_response_bytes;
    ao.chunking = config->ChunkingOf("http");
    ao.on_deleted = [&svc](const std::string&) {
      if (auto* source = svc.http_source.load()) source->Notify();
    };
    ao.on_too_long = [&svc] {
      if (auto* http = svc.pipelines->Find("http")) http->CountRefusedTooLong();
    };
    if (config->search_backend == "qdrant") {
      auto search = sinks::QdrantSink::Connect(QdrantOptions(config->qdrant, encoder_ref.dim()));
      if (!search) {
        log->error("{}", search.error().ToString());
        return 2;
      }
      ao.search_backend = api::QdrantSearchBackend(std::move(*search));
      ao.search_backend_name = "qdrant";
    }
    if (svc.postgres_search) {
      ao.search_backend = svc.postgres_search->backend();
      ao.search_backend_name = "postgres";
    }
    if (const auto* pg = svc.sources.postgres) {
      ao.extra_status.emplace_back("postgres", [pg] { return PostgresSourceStatsJson(*pg); });
    }
    api::SubmitMessage submit;
    if (svc.kafka_ingest) {
      submit = std::bind_front(&KafkaIngest::Submit, svc.kafka_ingest.get());
      ao.ingest = "kafka";
      ao.delete_message = std::bind_front(&KafkaIngest::Delete, svc.kafka_ingest.get());
    } else {
      submit = std::bind_front(&MessageService::Submit, svc.messages.get());
    }
    svc.api =
        std::make_unique<api::ApiRoutes>(*svc.store, std::move(submit), encoder_ref, std::move(ao));
  }

  server::ServerOptions so;
  so.host = config->http_host;
  so.port = static_cast<uint16_t>(config->http_port);
  so.max_body_bytes = config->http_max_body_bytes;
  so.large_body_paths.emplace_back(
      "/documents", std::max(config->http_max_body_bytes, config->http_max_document_bytes));
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
    const bool ready = running.load() && svc.pipelines->running();
    if (ready && svc.sources.postgres && !svc.sources.postgres->stats().connected.load()) {
      return server::JsonError(503, "not_ready", "PostgreSQL is unreachable; reconnecting");
    }
    std::string why;
    if (ready && svc.bus && !svc.bus->Healthy(why)) {
      return server::JsonError(503, "not_ready", why);
    }
    if (ready && svc.kafka_ingest && !svc.kafka_ingest->Healthy(why)) {
      return server::JsonError(503, "not_ready", why);
    }
    if (ready) return server::JsonOk(R"({"status":"ready"})");
    return server::JsonError(503, "not_ready", "the service is starting or stopping");
  });
  http.Route("GET", "/stats", [&svc](const server::HttpRequest&) {
    JsonWriter w;
    w.BeginObject();
    WriteLegacyStats(w, *svc.pipelines, svc.sources, svc.messages.get());
    if (svc.api) w.Key("store").Raw(svc.api->StatusJson());
    w.Key("sse_clients").Uint(svc.hub->clients());
    w.Key("events_bus");
    if (svc.bus) {
      svc.bus->WriteStats(w);
    } else {
      w.BeginObject().Key("bus").String("local").Key("latest_id").Uint(svc.hub->latest_id());
      w.EndObject();
    }
    if (svc.kafka_ingest) {
      w.Key("ingest");
      svc.kafka_ingest->WriteStats(w);
    }
    svc.pipelines->WriteJson(w);
    w.EndObject();
    return server::JsonOk(w.Take());
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
  svc.series->Register(http);  // GET /stats/series
  api::RegisterOpenApi(http);  // GET /openapi.json (docs/openapi.yaml)
  if (auto st = http.Start(); !st.ok()) {
    log->error("{}", st.error().ToString());
    return 2;
  }
  std::string flows;
  for (const auto& source : config->Sources()) {
    std::string sinks;
    for (const auto& sink : config->SinksOf(source)) sinks += (sinks.empty() ? "" : ",") + sink;
    flows += (flows.empty() ? "" : "; ") + source + " -> [" + sinks + "]";
  }
  log->info("HTTP on {}:{} ({}; store {}, kafka {}, search {}, ingest {}, events bus {})",
            config->http_host, http.port(), flows,
            config->store_enabled ? config->store_dir : "off",
            config->kafka.enabled() ? config->kafka.bootstrap_servers : "off",
            config->search_backend, config->ingest.mode, config->events.bus);
  if (svc.messages) svc.messages->Start();
  svc.series->Start();  // its baseline before the first record is read
  svc.pipelines->StartAll();
  running = true;
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  running = false;
  log->info("stopping");
  // Commit and answer every queued POST (its messages are then in the outbox,
  // delivered now or after a restart), drain every pipeline, then close the
  // connections and streams; the store saves its index snapshot last.
  if (svc.messages) svc.messages->Stop();
  if (svc.kafka_ingest) svc.kafka_ingest->Stop();  // answers every POST it was given
  svc.series->Stop();
  svc.pipelines->StopAll();
  http.Stop();
  if (svc.bus) svc.bus->Stop();
  svc.hub->Stop();
  return 0;
}

}  // namespace embedstream::app
