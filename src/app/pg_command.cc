#include "app/pg_command.h"

#include <cstdio>

#include "app/postgres_service.h"
#include "app/runtime_adapters.h"
#include "app/serve_config.h"
#include "app/serve_pipelines.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "pipeline/runtime.h"
#include "sinks/pipeline_sinks.h"
#include "sources/postgres_source.h"

namespace embedstream::app {
namespace {

int ExitCodeOf(const Error& e) { return e.code == errc::unavailable ? 2 : 1; }

}  // namespace

void PgCommand::Register(CLI::App& parent) {
  auto* pg = parent.add_subcommand(
      "pg",
      "The PostgreSQL + pgvector CQRS tables: install the schema and trigger, show pending "
      "rows, re-embed after a model change");
  pg->require_subcommand(1);
  struct Action {
    const char* name;
    const char* help;
  };
  for (const Action& a :
       {Action{"install",
               "Create the tables, columns and HNSW index when missing, and the NOTIFY trigger "
               "on the text table"},
        Action{"status", "Print pending rows, the oldest pending age and embedded counts (JSON)"},
        Action{"reembed",
               "Embed every row whose embedding is missing, stale or made by another model"}}) {
    auto* cmd = pg->add_subcommand(a.name, a.help);
    encoder.AddTo(*cmd);  // -c/--config also gives the postgres: section
    cmd->add_option("--table", table, "Text table [postgres.text_table: text_messages]");
    cmd->add_option("--embeddings-table", embeddings_table,
                    "Embeddings table [postgres.embeddings_table: message_embeddings]");
    cmd->add_option("--id-column", id_column, "Id column of the text table [id]");
    cmd->add_option("--text-column", text_column, "Text column of the text table [message]");
    cmd->footer(
        "Connection: the config file's postgres: section, then DATABASE_HOST, DATABASE_PORT, "
        "DATABASE_NAME, DATABASE_USER, DATABASE_PASSWORD.");
    const std::string action = a.name;
    cmd->callback([this, action] { std::exit(Run(action)); });
  }
}

int PgCommand::Run(const std::string& action) {
  auto log = GetLogger("app");
  ServeFlags flags;
  flags.config_file = encoder.config_file;
  auto config = LoadServeConfig(flags);
  if (!config) {
    log->error("{}", config.error().ToString());
    return 2;
  }
  ServeConfig cfg = *config;
  PostgresSettings& pgs = cfg.postgres;
  if (!table.empty()) pgs.text_table = table;
  if (!embeddings_table.empty()) pgs.embeddings_table = embeddings_table;
  if (!id_column.empty()) pgs.id_column = id_column;
  if (!text_column.empty()) pgs.text_column = text_column;
  auto enc = encoder.LoadEncoder();
  if (!enc) {
    log->error("{}", enc.error().ToString());
    return 2;
  }
  auto source = OpenPostgresSource(cfg, **enc, /*reembed=*/action == "reembed", /*finite=*/true);
  if (!source) {
    log->error("{}", source.error().ToString());
    return ExitCodeOf(source.error());
  }
  sources::PostgresSource& src = **source;
  JsonWriter w;
  w.BeginObject();
  if (action == "install") {
    // The connection is the source's; it is idle between rounds.
    auto conn = pg::Connection::Open(pgs.connection);
    if (!conn) {
      log->error("{}", conn.error().ToString());
      return ExitCodeOf(conn.error());
    }
    if (Status st = pg::InstallNotifyTrigger(**conn, src.schema()); !st) {
      log->error("{}", st.error().ToString());
      return ExitCodeOf(st.error());
    }
    w.Key("text_table")
        .String(pgs.text_table)
        .Key("embeddings_table")
        .String(pgs.embeddings_table)
        .Key("dim")
        .Uint((*enc)->dim())
        .Key("channel")
        .String(src.schema().channel)
        .Key("trigger")
        .Bool(true);
  } else if (action == "status") {
    auto counts = src.Count();
    if (!counts) {
      log->error("{}", counts.error().ToString());
      return ExitCodeOf(counts.error());
    }
    w.Key("pending")
        .Uint(counts->pending)
        .Key("oldest_pending_age_s")
        .Double(counts->oldest_pending_age_s)
        .Key("embedded")
        .Uint(counts->embedded)
        .Key("other_model")
        .Uint(counts->other_model)
        .Key("model")
        .String((*enc)->info().model_name);
  } else {
    // The same runtime as serve: the source's claims -> encoder -> the
    // embeddings table; it ends when nothing is pending.
    auto sink = OpenPostgresSink(cfg, **enc, /*for_writes=*/false);
    if (!sink) {
      log->error("{}", sink.error().ToString());
      return ExitCodeOf(sink.error());
    }
    sinks::PgvectorSink vectors(std::shared_ptr<sinks::PostgresSink>(std::move(*sink)),
                                sinks::PgvectorSink::Mode::kVectors);
    EncoderEmbedder embedder(**enc);
    pipeline::RuntimeOptions ro = RuntimeOptionsOf(cfg);
    // A server that stops answering is an error here, not a reason to wait.
    ro.drain_timeout = std::chrono::milliseconds(60'000);
    std::atomic<bool> stop{false};
    {
      // On a terminal: rows done of those pending at the start.
      auto before = src.Count();
      Progress progress(
          {.label = "pg reembed", .total = before ? before->pending : 0, .unit = "rows"});
      AckProgress acked(progress);
      pipeline::Runtime runtime(src, &embedder, {&vectors}, ro);
      if (progress.enabled()) runtime.AddListener(&acked);
      runtime.Run(stop);
      progress.Finish();
    }
    src.Close();
    const auto& st = src.stats();
    auto left = src.Count();
    if (!left || left->pending > 0) {
      log->error(
          "re-embedding stopped: {} rows written, {} failed rounds, {}", st.embedded.load(),
          st.errors.load(),
          left ? std::to_string(left->pending) + " rows still pending" : left.error().ToString());
      return left ? 1 : ExitCodeOf(left.error());
    }
    w.Key("reembedded").Uint(st.embedded.load()).Key("model").String((*enc)->info().model_name);
  }
  w.EndObject();
  std::printf("%s\n", w.Take().c_str());
  return 0;
}

}  // namespace embedstream::app
