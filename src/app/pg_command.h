#pragma once
// `embedstream pg install|status|reembed`: the PostgreSQL CQRS side from the
// command line, with the same connection settings as serve (config file
// `postgres:` section < DATABASE_* environment < flags).
//
//   pg install   tables, columns and HNSW index when missing, plus the NOTIFY
//                trigger on the text table (serve's source wakes at once)
//   pg status    {"pending", "oldest_pending_age_s", "embedded", "other_model"}
//   pg reembed   embeds every row whose embedding is missing, stale, or made by
//                another model than the configured one; {"reembedded": N}
//
// Exit codes: 0 ok, 1 PostgreSQL refused or failed, 2 usage or connection error.

#include <string>

#include <CLI/CLI.hpp>

#include "app/encoder_flags.h"

namespace embedstream::app {

struct PgCommand {
  EncoderFlags encoder;
  std::string table;
  std::string embeddings_table;
  std::string id_column;
  std::string text_column;

  void Register(CLI::App& parent);
  int Run(const std::string& action);
};

}  // namespace embedstream::app
