// embedstream: the only place components are wired together. Each
// subcommand lives in its own *_command.cc; this file registers them.

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "app/embed_command.h"
#include "app/model_command.h"
#include "app/pg_command.h"
#include "app/serve_command.h"
#include "cli/client_commands.h"
#include "cli/gen_command.h"
#include "cli/kafka_cli_commands.h"
#include "core/logging.h"

namespace {
constexpr const char* kVersion = "0.1.0";
}

int main(int argc, char** argv) {
  CLI::App app{
      "embedstream: turns a live stream of text into searchable vectors.\n"
      "Embeds text in-process with a sentence-transformers BERT model "
      "(default all-MiniLM-L6-v2, 384 dimensions).\n\n"
      "Try:  echo 'hello world' | embedstream embed\n"
      "      embedstream model info"};
  app.name("embedstream");
  app.require_subcommand(1);
  app.fallthrough();  // global options (--log-level) also after the subcommand
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off [info]");
  app.set_version_flag("--version", kVersion);
  app.parse_complete_callback([&] { embedstream::SetLogLevel(log_level); });

  embedstream::app::EmbedCommand embed;
  embed.Register(app);
  embedstream::app::ModelCommand model;
  model.Register(app);
  embedstream::app::ServeCommand serve;
  serve.Register(app);
  embedstream::cli::ProduceCommand produce;
  produce.Register(app);
  embedstream::cli::ConsumeCommand consume;
  consume.Register(app);
  embedstream::cli::MessagesCommand messages;
  messages.Register(app);
  embedstream::cli::DocumentsCommand documents;
  documents.Register(app);
  embedstream::cli::SearchCommand search;
  search.Register(app);
  embedstream::cli::EventsCommand events;
  events.Register(app);
  embedstream::cli::HealthCommand health;
  health.Register(app);
  embedstream::app::PgCommand pg;
  pg.Register(app);
  embedstream::cli::GenCommand gen;
  gen.Register(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every usage error exits 2, like the commands'
    // own argument checks (CLI11's own codes would differ per error kind).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
