#pragma once
// The client side of the HTTP API (docs/API.md), seed 001's cli.py: commands
// that talk to a running `embedstream serve` over HTTP.
//
//   embedstream messages create TEXT [--id ID] [--metadata JSON] [--user-id U]
//   embedstream messages list [--limit N] [--offset N]
//   embedstream messages get ID
//   embedstream messages delete ID
//   embedstream messages stats
//   embedstream documents add FILE... [--id ID] [--metadata JSON] [--wait]
//   embedstream search "query" [--limit K] [--filter metadata.key=value ...]
//   embedstream events [--user-id U] [--key K] [--count N] [--timeout S]
//   embedstream health [--ready] [--timeout S]
//
// Every command takes --url (env EMBEDSTREAM_URL, default
// http://localhost:5000), --token (env EMBEDSTREAM_AUTH_TOKEN, sent as
// `Authorization: Bearer`) and --json (print the server's JSON as it is).
// Exit codes: 0 ok; 1 the server answered 4xx/5xx (its error and detail go to
// stderr); 2 usage error, or no usable answer (cannot connect, timeout).
//
// The commands run on the main thread, synchronously (server::HttpClient).
// The pure pieces (filters, request bodies, tables) are free functions in
// cli/client_format.h so that they can be tested without a server.

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>
#include <vector>

namespace embedstream::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;  // 4xx/5xx
inline constexpr int kExitUsage = 2;        // bad arguments, cannot connect, timeout

inline constexpr const char* kDefaultServerUrl = "http://localhost:5000";

// Options shared by every client command.
struct ClientFlags {
  std::string url;    // empty: env EMBEDSTREAM_URL, else kDefaultServerUrl
  std::string token;  // empty: env EMBEDSTREAM_AUTH_TOKEN, else none
  bool json = false;  // print the server's JSON instead of a table

  // The flag, else the environment, else the default.
  std::string ResolvedUrl() const;
  std::string ResolvedToken() const;
};

struct MessagesCommand {
  ClientFlags client;
  std::string text;  // create; "-" reads stdin
  std::string id;    // create --id, get ID
  std::string metadata;
  std::string user_id;
  int limit = 20;
  long offset = 0;

  void Register(CLI::App& parent);
  int Create(std::ostream& out, std::ostream& err);
  int List(std::ostream& out, std::ostream& err);
  int Get(std::ostream& out, std::ostream& err);
  int Delete(std::ostream& out, std::ostream& err);
  int Stats(std::ostream& out, std::ostream& err);
};

// POST /documents for each file (text/markdown for .md/.markdown, else
// text/plain); the id is the file's path unless --id (one file only). A
// progress bar on stderr for more than one file (when stderr is a terminal,
// else a line per 10%). Prints "<id>\t<chunks>" per document.
struct DocumentsCommand {
  ClientFlags client;
  std::vector<std::string> files;
  std::string id;
  std::string metadata;
  std::string user_id;

  void Register(CLI::App& parent);
  int Add(std::ostream& out, std::ostream& err);
};

struct SearchCommand {
  ClientFlags client;
  std::string query;
  int limit = 10;
  std::vector<std::string> filters;

  void Register(CLI::App& parent);
  int Run(std::ostream& out, std::ostream& err);
};

struct EventsCommand {
  ClientFlags client;
  std::string user_id;
  std::string key;
  std::string last_event_id;
  long count = 0;        // stop after this many events; 0: no limit
  double timeout_s = 0;  // stop after this many seconds; 0: no limit
  double idle_s = 60;    // error when the stream is silent this long (heartbeats every 15 s)

  void Register(CLI::App& parent);
  int Run(std::ostream& out, std::ostream& err);
};

// GET /health (or /ready): exit 0 when the server answers 2xx, 1 on any other
// answer, 2 when it cannot be reached in time. For container health checks
// (deploy/Dockerfile's HEALTHCHECK), where no curl is installed.
struct HealthCommand {
  ClientFlags client;
  bool ready = false;    // /ready instead of /health
  double timeout_s = 5;  // connect + answer

  void Register(CLI::App& parent);
  int Run(std::ostream& out, std::ostream& err);
};

}  // namespace embedstream::cli
