#pragma once
// The client side of the HTTP API (docs/API.md), seed 001's cli.py: commands
// that talk to a running `embedstream serve` over HTTP.
//
//   embedstream messages create TEXT [--id ID] [--metadata JSON] [--user-id U]
//   embedstream messages list [--limit N] [--offset N]
//   embedstream messages get ID
//   embedstream messages stats
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
// The pure pieces (filters, request bodies, tables) are free functions below
// so that they can be tested without a server.

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

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

// One `--filter key=value`: the value is read as a JSON scalar when it is one
// (42, 4.5, true, false, null, "quoted") and as a plain string otherwise
// (en, 007, hello world). Objects and arrays are refused (the API matches
// scalars). `value_json` is serialised JSON.
struct FilterTerm {
  std::string key;
  std::string value_json;
};
Result<FilterTerm> ParseFilterTerm(std::string_view arg);

// {"query": ..., "limit": k, "filter": {...}} for POST /embeddings/search.
// A key given twice is an error.
Result<std::string> BuildSearchBody(const std::string& query, int limit,
                                    const std::vector<std::string>& filters);

// {"message": text, "id"?, "metadata"?, "user_id"?} for POST /messages;
// `metadata_json` must be a JSON object when given.
Result<std::string> BuildCreateBody(const std::string& text, const std::string& id,
                                    const std::string& metadata_json, const std::string& user_id);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view s);

// Readable renderings of the server's JSON answers; an Error when the body is
// not the JSON the API promises.
Result<std::string> FormatMessageList(std::string_view body);    // GET /messages
Result<std::string> FormatMessage(std::string_view body);        // GET /messages/{id}
Result<std::string> FormatSearchResults(std::string_view body);  // POST /embeddings/search
Result<std::string> FormatKeyValues(std::string_view body);      // any object, flattened
// One SSE event as `events` prints it: "<id> <event> <data>", or the data
// alone with json.
std::string FormatEventLine(std::string_view id, std::string_view event, std::string_view data,
                            bool json);

// "1700000000.123" -> "2023-11-14 22:13:20" (UTC).
std::string FormatUnixTime(double seconds);
// At most `max_chars` code points, control characters as spaces, "…" when cut.
std::string Ellipsize(std::string_view text, size_t max_chars);

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
  int Stats(std::ostream& out, std::ostream& err);
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
