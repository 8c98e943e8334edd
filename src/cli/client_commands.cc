#include "cli/client_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/client_format.h"
#include "server/http_client.h"
#include "server/sse_parser.h"

namespace embedstream::cli {
namespace {

using internal::Cell;
using internal::NotApiJson;
using internal::ParseJson;
using nlohmann::ordered_json;
using server::HttpClient;
using server::HttpClientResponse;
using server::HttpHeaders;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The commands' connection to the server, with the common headers.
class Api {
 public:
  static Result<Api> Open(const ClientFlags& flags, server::HttpClientOptions options = {}) {
    auto client = HttpClient::Create(flags.ResolvedUrl(), options);
    if (!client) return client.error();
    return Api(std::move(*client), flags.ResolvedToken());
  }

  HttpHeaders Headers(bool json_body, const char* accept = "application/json") const {
    HttpHeaders h{{"Accept", accept}};
    if (json_body) h.emplace_back("Content-Type", "application/json");
    if (!token_.empty()) h.emplace_back("Authorization", "Bearer " + token_);
    return h;
  }

  Result<HttpClientResponse> Call(std::string_view method, std::string_view target,
                                  std::string_view body = {}) {
    return client_.Request(method, target, body, Headers(!body.empty()));
  }

  HttpClient& client() { return client_; }

 private:
  Api(HttpClient client, std::string token)
      : client_(std::move(client)), token_(std::move(token)) {}
  HttpClient client_;
  std::string token_;
};

int TransportFailure(std::ostream& err, const Error& e) {
  err << "error: " << e.message << "\n";
  return kExitUsage;
}

bool IsSuccess(const HttpClientResponse& r) { return r.status >= 200 && r.status < 300; }

// "error: 400 invalid_json: <detail>" from the API's {"error","detail"}.
int ServerFailure(std::ostream& err, const HttpClientResponse& r) {
  err << "error: the server answered " << r.status;
  const auto j = ParseJson(r.body);
  if (j && j->is_object() && j->contains("error")) {
    err << " " << Cell((*j)["error"]);
    if (j->contains("detail")) err << ": " << Cell((*j)["detail"]);
  } else if (!r.body.empty()) {
    err << ": " << Ellipsize(r.body, 300);
  }
  err << "\n";
  return kExitServerError;
}

// Runs one request and hands a 2xx answer to `on_success`; prints failures.
template <class OnSuccess>
int CallAndPrint(const ClientFlags& flags, std::string_view method, std::string_view target,
                 std::string_view body, std::ostream& out, std::ostream& err,
                 OnSuccess on_success) {
  auto api = Api::Open(flags);
  if (!api) return TransportFailure(err, api.error());
  auto r = api->Call(method, target, body);
  if (!r) return TransportFailure(err, r.error());
  if (!IsSuccess(*r)) return ServerFailure(err, *r);
  if (flags.json) {
    out << r->body;
    if (r->body.empty() || r->body.back() != '\n') out << '\n';
    return kExitOk;
  }
  return on_success(*r);
}

// Prints a formatted rendering or, when the body is not what we expected,
// the raw body and an error.
int PrintFormatted(const Result<std::string>& text, const HttpClientResponse& r, std::ostream& out,
                   std::ostream& err) {
  if (!text) {
    out << r.body << '\n';
    err << "error: " << text.error().message << "\n";
    return kExitServerError;
  }
  out << *text;
  return kExitOk;
}

void AddClientOptions(CLI::App* cmd, ClientFlags& flags, const char* json_help) {
  cmd->add_option(
      "--url", flags.url,
      std::string("Server base URL [env EMBEDSTREAM_URL, else ") + kDefaultServerUrl + "]");
  cmd->add_option(
      "--token", flags.token,
      "Bearer token: auth.token, or auth.read_token for reads [env EMBEDSTREAM_AUTH_TOKEN]");
  cmd->add_flag("--json", flags.json, json_help);
}

// Runs a command from a CLI11 callback: flush and leave with its exit code.
template <class Fn>
std::function<void()> Exit(Fn fn) {
  return [fn] {
    const int code = fn();
    std::cout.flush();
    std::cerr.flush();
    std::exit(code);
  };
}

}  // namespace

std::string ClientFlags::ResolvedUrl() const {
  if (!url.empty()) return url;
  const std::string env = Env("EMBEDSTREAM_URL");
  return env.empty() ? kDefaultServerUrl : env;
}

std::string ClientFlags::ResolvedToken() const {
  return token.empty() ? Env("EMBEDSTREAM_AUTH_TOKEN") : token;
}

// ---- messages -------------------------------------------------------------

void MessagesCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "messages", "Write and read messages on a running `embedstream serve` (HTTP API)");
  cmd->require_subcommand(1);

  auto* create =
      cmd->add_subcommand("create", "POST /messages: store a text to embed; prints its id");
  create->add_option("text", text, "The text (- reads it from stdin)")->required();
  create->add_option("--id", id, "Message id, 1..256 bytes [a new UUID]");
  create->add_option("--metadata", metadata, "A JSON object stored with the message");
  create->add_option("--user-id", user_id, "Stored as metadata.user_id (for /events?user_id=)");
  AddClientOptions(create, client, "Print the server's JSON answer instead of the id");
  create->callback(Exit([this] { return Create(std::cout, std::cerr); }));

  auto* list = cmd->add_subcommand("list", "GET /messages: newest first, as a table");
  list->add_option("--limit", limit, "How many, 1..1000 [20]");
  list->add_option("--offset", offset, "Skip this many [0]");
  AddClientOptions(list, client, "Print the server's JSON instead of a table");
  list->callback(Exit([this] { return List(std::cout, std::cerr); }));

  auto* get = cmd->add_subcommand("get", "GET /messages/{id}: one message and its status");
  get->add_option("id", id, "Message id")->required();
  AddClientOptions(get, client, "Print the server's JSON");
  get->callback(Exit([this] { return Get(std::cout, std::cerr); }));

  auto* del = cmd->add_subcommand(
      "delete", "DELETE /messages/{id}: remove a message (all its chunks) from every sink");
  del->add_option("id", id, "Message id")->required();
  AddClientOptions(del, client, "Print the server's JSON");
  del->callback(Exit([this] { return Delete(std::cout, std::cerr); }));

  auto* stats = cmd->add_subcommand("stats", "GET /status and /stats: progress and counters");
  AddClientOptions(stats, client, R"(Print {"status":..., "stats":...} as JSON)");
  stats->callback(Exit([this] { return Stats(std::cout, std::cerr); }));
}

int MessagesCommand::Create(std::ostream& out, std::ostream& err) {
  std::string message = text;
  if (message == "-") {
    message.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!message.empty() && message.back() == '\n') message.pop_back();
    if (!message.empty() && message.back() == '\r') message.pop_back();
  }
  const auto body = BuildCreateBody(message, id, metadata, user_id);
  if (!body) return TransportFailure(err, body.error());
  return CallAndPrint(client, "POST", "/messages", *body, out, err,
                      [&](const HttpClientResponse& r) {
                        const auto j = ParseJson(r.body);
                        if (!j || !j->is_object() || !(*j)["id"].is_string()) {
                          out << r.body << "\n";
                          err << "error: " << NotApiJson("POST /messages").message << "\n";
                          return kExitServerError;
                        }
                        out << (*j)["id"].get<std::string>() << "\n";
                        return kExitOk;
                      });
}

int MessagesCommand::List(std::ostream& out, std::ostream& err) {
  const std::string target =
      "/messages?limit=" + std::to_string(limit) + "&offset=" + std::to_string(offset);
  return CallAndPrint(client, "GET", target, {}, out, err, [&](const HttpClientResponse& r) {
    return PrintFormatted(FormatMessageList(r.body), r, out, err);
  });
}

int MessagesCommand::Get(std::ostream& out, std::ostream& err) {
  return CallAndPrint(client, "GET", "/messages/" + PercentEncode(id), {}, out, err,
                      [&](const HttpClientResponse& r) {
                        return PrintFormatted(FormatMessage(r.body), r, out, err);
                      });
}

int MessagesCommand::Delete(std::ostream& out, std::ostream& err) {
  return CallAndPrint(client, "DELETE", "/messages/" + PercentEncode(id), {}, out, err,
                      [&](const HttpClientResponse& r) {
                        const auto j = ParseJson(r.body);
                        const bool existed =
                            j && j->is_object() && j->value("existed", false) == true;
                        out << id << (existed ? " deleted" : " deleted (it was not there)")
                            << "\n";
                        return kExitOk;
                      });
}

// ---- documents ------------------------------------------------------------

void DocumentsCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "documents", "Add long texts (files) to a running `embedstream serve`, chunked there");
  cmd->require_subcommand(1);
  auto* add = cmd->add_subcommand(
      "add", "POST /documents for each file; prints each id and the chunks it becomes");
  add->add_option("files", files, "Text or Markdown files")->required()->check(CLI::ExistingFile);
  add->add_option("--id", id, "Document id (one file only) [the file's path]");
  add->add_option("--metadata", metadata, "A JSON object stored with each document");
  add->add_option("--user-id", user_id, "Stored as metadata.user_id");
  AddClientOptions(add, client, "Print the server's JSON answers, one per line");
  add->callback(Exit([this] { return Add(std::cout, std::cerr); }));
}

int DocumentsCommand::Add(std::ostream& out, std::ostream& err) {
  if (!id.empty() && files.size() != 1) {
    err << "error: --id names one document; give one file\n";
    return kExitUsage;
  }
  server::HttpClientOptions options;
  options.read_timeout = std::chrono::seconds(120);  // a long document is tokenized before the 202
  auto api = Api::Open(client, options);
  if (!api) return TransportFailure(err, api.error());
  const bool tty = ::isatty(2) != 0;
  const bool progress = files.size() > 1;
  int code = kExitOk;
  size_t last_tenth = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i];
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      err << "error: reading " << path << "\n";
      code = std::max(code, kExitUsage);
      continue;
    }
    std::string target = "/documents?id=" + PercentEncode(id.empty() ? path : id);
    if (!metadata.empty()) target += "&metadata=" + PercentEncode(metadata);
    if (!user_id.empty()) target += "&user_id=" + PercentEncode(user_id);
    const bool markdown = path.ends_with(".md") || path.ends_with(".markdown");
    HttpHeaders headers = api->Headers(false);
    headers.emplace_back("Content-Type", markdown ? "text/markdown; charset=utf-8"
                                                  : "text/plain; charset=utf-8");
    auto r = api->client().Request("POST", target, text, headers);
    if (!r) return TransportFailure(err, r.error());
    if (!IsSuccess(*r)) {
      err << path << ": ";
      code = std::max(code, ServerFailure(err, *r));
    } else if (client.json) {
      out << r->body << (r->body.ends_with('\n') ? "" : "\n");
    } else {
      const auto j = ParseJson(r->body);
      const bool ok = j && j->is_object() && (*j)["id"].is_string();
      out << (ok ? (*j)["id"].get<std::string>() : path) << "\t"
          << (ok && (*j)["chunks"].is_number() ? (*j)["chunks"].dump() : "?") << "\n";
    }
    if (progress) {
      const size_t done = i + 1;
      if (tty) {
        constexpr size_t kWidth = 30;
        const size_t fill = done * kWidth / files.size();
        err << "\r[" << std::string(fill, '#') << std::string(kWidth - fill, ' ') << "] " << done
            << "/" << files.size() << (done == files.size() ? "\n" : "") << std::flush;
      } else if (done * 10 / files.size() > last_tenth || done == files.size()) {
        last_tenth = done * 10 / files.size();
        err << "documents: " << done << "/" << files.size() << " sent\n";
      }
    }
  }
  return code;
}

int MessagesCommand::Stats(std::ostream& out, std::ostream& err) {
  auto api = Api::Open(client);
  if (!api) return TransportFailure(err, api.error());
  std::vector<std::pair<std::string, HttpClientResponse>> answers;
  for (const std::string path : {"/status", "/stats"}) {
    auto r = api->Call("GET", path);
    if (!r) return TransportFailure(err, r.error());
    if (!IsSuccess(*r)) {
      err << "GET " << path << ": ";
      return ServerFailure(err, *r);
    }
    answers.emplace_back(path.substr(1), std::move(*r));
  }
  if (client.json) {
    ordered_json j;
    for (const auto& [name, r] : answers) {
      auto v = ordered_json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      j[name] = v.is_discarded() ? ordered_json(r.body) : std::move(v);
    }
    out << j.dump() << "\n";
    return kExitOk;
  }
  int code = kExitOk;
  for (const auto& [name, r] : answers) {
    out << name << "\n";
    const int c = PrintFormatted(FormatKeyValues(r.body), r, out, err);
    code = std::max(code, c);
  }
  return code;
}

// ---- search ---------------------------------------------------------------

void SearchCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "search", "POST /embeddings/search on a running server: the stored texts nearest a query");
  cmd->add_option("query", query, "Text to search for")->required();
  cmd->add_option("-k,--limit", limit, "How many results, 1..1000 [10]");
  cmd->add_option("--filter", filters,
                  "metadata.KEY=VALUE, repeatable, all must match; VALUE is read as JSON when it "
                  "is a number, true/false/null or \"quoted\", else as a string");
  AddClientOptions(cmd, client, "Print the server's JSON instead of a table");
  cmd->callback(Exit([this] { return Run(std::cout, std::cerr); }));
}

int SearchCommand::Run(std::ostream& out, std::ostream& err) {
  const auto body = BuildSearchBody(query, limit, filters);
  if (!body) return TransportFailure(err, body.error());
  return CallAndPrint(client, "POST", "/embeddings/search", *body, out, err,
                      [&](const HttpClientResponse& r) {
                        return PrintFormatted(FormatSearchResults(r.body), r, out, err);
                      });
}

// ---- events ---------------------------------------------------------------

void EventsCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "events", "Follow GET /events (Server-Sent Events): one line per lifecycle event");
  cmd->add_option("--user-id", user_id, "Only events of this user_id");
  cmd->add_option("--key", key, "Only events with this key");
  cmd->add_option("--last-event-id", last_event_id, "Resume after this event id");
  cmd->add_option("--count", count, "Stop after this many events [no limit]");
  cmd->add_option("--timeout", timeout_s, "Stop after this many seconds [no limit]");
  cmd->add_option("--idle-timeout", idle_s,
                  "Fail when the stream is silent this long; the server sends a heartbeat every "
                  "15 s [60]");
  AddClientOptions(cmd, client, "Print only each event's data JSON (JSON lines)");
  cmd->callback(Exit([this] { return Run(std::cout, std::cerr); }));
}

int EventsCommand::Run(std::ostream& out, std::ostream& err) {
  using std::chrono::milliseconds;
  server::HttpClientOptions options;
  options.stream_idle_timeout = milliseconds(static_cast<long>(std::max(0.0, idle_s) * 1000));
  auto api = Api::Open(client, options);
  if (!api) return TransportFailure(err, api.error());
  std::string target = "/events";
  auto add_query = [&target](const char* name, const std::string& value) {
    if (value.empty()) return;
    target += target.find('?') == std::string::npos ? '?' : '&';
    target += name;
    target += '=';
    target += PercentEncode(value);
  };
  add_query("user_id", user_id);
  add_query("key", key);
  HttpHeaders headers = api->Headers(false, "text/event-stream");
  if (!last_event_id.empty()) headers.emplace_back("Last-Event-ID", last_event_id);

  server::SseParser parser;
  long printed = 0;
  bool done = false;
  const auto started = std::chrono::steady_clock::now();
  const auto duration = milliseconds(static_cast<long>(std::max(0.0, timeout_s) * 1000));
  auto r = api->client().Stream(
      target, headers,
      [&](std::string_view bytes) {
        parser.Feed(bytes, [&](const server::SseEvent& e) {
          if (done) return;
          out << FormatEventLine(e.id, e.event, e.data, client.json) << '\n' << std::flush;
          if (count > 0 && ++printed >= count) done = true;
        });
        return !done;
      },
      duration);
  if (!r) return TransportFailure(err, r.error());
  if (!IsSuccess(*r)) return ServerFailure(err, *r);
  const bool time_up =
      duration.count() > 0 && std::chrono::steady_clock::now() - started >= duration;
  if (!done && !time_up) err << "the server ended the event stream\n";
  return kExitOk;
}

// ---- health ---------------------------------------------------------------

void HealthCommand::Register(CLI::App& parent) {
  auto* cmd = parent.add_subcommand(
      "health", "GET /health of a running server: exit 0 when healthy (for health checks)");
  cmd->add_flag("--ready", ready, "GET /ready instead: ready to take traffic");
  cmd->add_option("--timeout", timeout_s, "Seconds to connect and answer [5]")
      ->check(CLI::PositiveNumber);
  AddClientOptions(cmd, client, "Print the server's JSON answer");
  cmd->callback(Exit([this] { return Run(std::cout, std::cerr); }));
}

int HealthCommand::Run(std::ostream& out, std::ostream& err) {
  const auto ms = std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  server::HttpClientOptions options;
  options.connect_timeout = ms;
  options.read_timeout = ms;
  auto api = Api::Open(client, options);
  if (!api) return TransportFailure(err, api.error());
  const char* target = ready ? "/ready" : "/health";
  auto r = api->Call("GET", target, {});
  if (!r) return TransportFailure(err, r.error());
  if (!IsSuccess(*r)) return ServerFailure(err, *r);
  if (client.json) {
    out << r->body;
    if (r->body.empty() || r->body.back() != '\n') out << '\n';
  } else {
    out << target << ": " << r->status << "\n";
  }
  return kExitOk;
}

}  // namespace embedstream::cli
