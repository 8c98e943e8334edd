#include "app/api_routes.h"

#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"

namespace embedstream::app {
namespace {

using json = nlohmann::json;
using server::HttpRequest;
using server::HttpResponse;
using server::JsonError;
using server::JsonOk;

ApiError Bad(std::string error, std::string detail) {
  return ApiError{400, std::move(error), std::move(detail)};
}

HttpResponse ToResponse(const ApiError& e) { return JsonError(e.status, e.error, e.detail); }

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::discarded:
      return "invalid";
    default:
      return "number";
  }
}

struct TooDeep {};

// Parses a JSON object body: invalid_utf8, invalid_json (also a number out of
// range, e.g. 1e400), too_deep (nesting over kMaxJsonDepth, refused while
// parsing, so no deep tree ever exists to be copied or destroyed recursively),
// wrong_type (not an object), unknown_field (a key outside `allowed`).
std::variant<json, ApiError> ParseObject(std::string_view body,
                                         std::initializer_list<const char*> allowed) {
  if (!simdjson::validate_utf8(body.data(), body.size())) {
    return Bad("invalid_utf8", "the request body is not valid UTF-8");
  }
  json doc;
  try {
    // `depth` is how many containers are open around the one starting.
    doc = json::parse(body, [](int depth, json::parse_event_t event, json&) {
      const bool opens = event == json::parse_event_t::object_start ||
                         event == json::parse_event_t::array_start;
      if (opens && depth >= kMaxJsonDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return Bad("too_deep", fmt::format("the request body nests objects and arrays more than {} "
                                       "levels deep",
                                       kMaxJsonDepth));
  } catch (const json::exception& e) {  // parse_error, and out_of_range for 1e400
    return Bad("invalid_json", fmt::format("the request body is not JSON: {}", e.what()));
  }
  if (!doc.is_object()) {
    return Bad("wrong_type",
               fmt::format("the request body must be a JSON object, not {}", TypeName(doc)));
  }
  for (const auto& [key, value] : doc.items()) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) {
      std::string names;
      for (const char* name : allowed) names.append(names.empty() ? "" : ", ").append(name);
      return Bad("unknown_field", fmt::format("unknown field '{}' (allowed: {})", key, names));
    }
  }
  return doc;
}

bool HasControlChars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A non-negative integer query parameter within [lo, hi], or an error.
std::variant<size_t, ApiError> QueryNumber(const HttpRequest& req, const char* name, size_t dflt,
                                           size_t lo, size_t hi) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return dflt;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < static_cast<long long>(lo) ||
      static_cast<unsigned long long>(v) > hi) {
    return Bad(std::string("invalid_") + name,
               fmt::format("{} must be an integer in [{}, {}], got '{}'", name, lo, hi, s));
  }
  return static_cast<size_t>(v);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // the length is not the secret
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

}  // namespace

std::variant<MessageRequest, ApiError> ParseMessageRequest(std::string_view body) {
  auto parsed = ParseObject(body, {"message", "text", "id", "metadata", "user_id"});
  if (auto* err = std::get_if<ApiError>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  MessageRequest out;

  const bool has_message = doc.contains("message");
  const bool has_text = doc.contains("text");
  if (has_message && has_text) {
    return Bad("conflicting_fields", "give the text as either \"message\" or \"text\", not both");
  }
  if (!has_message && !has_text) {
    return Bad("missing_text", "the body needs a \"message\" (or \"text\") string");
  }
  const char* text_key = has_message ? "message" : "text";
  const json& text = doc.at(text_key);
  if (!text.is_string()) {
    return Bad("wrong_type",
               fmt::format("\"{}\" must be a string, not {}", text_key, TypeName(text)));
  }
  out.message.text = text.get<std::string>();
  if (out.message.text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
    return Bad("empty_text", fmt::format("\"{}\" is empty", text_key));
  }

  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_string()) {
      return Bad("wrong_type", fmt::format("\"id\" must be a string, not {}", TypeName(*it)));
    }
    out.message.id = it->get<std::string>();
    if (out.message.id.empty() || out.message.id.size() > kMaxIdBytes ||
        HasControlChars(out.message.id)) {
      return Bad("invalid_id",
                 fmt::format("\"id\" must be 1..{} bytes without control characters", kMaxIdBytes));
    }
  } else {
    out.message.id = FormatUuid(RandomUuidV4());
  }

  json metadata;
  if (auto it = doc.find("metadata"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Bad("invalid_metadata",
                 fmt::format("\"metadata\" must be a JSON object, not {}", TypeName(*it)));
    }
    metadata = *it;
  }
  if (auto it = doc.find("user_id"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) {
      return Bad("wrong_type", fmt::format("\"user_id\" must be a string, not {}", TypeName(*it)));
    }
    out.user_id = it->get<std::string>();
    metadata["user_id"] = out.user_id;
  } else if (metadata.is_object()) {
    if (auto u = metadata.find("user_id"); u != metadata.end() && u->is_string()) {
      out.user_id = u->get<std::string>();
    }
  }
  if (!metadata.is_null()) {
    out.message.metadata_json = metadata.dump();
    if (out.message.metadata_json.size() > kMaxMetadataBytes) {
      return Bad("invalid_metadata",
                 fmt::format("\"metadata\" is {} bytes serialised; the limit "
                             "is {}",
                             out.message.metadata_json.size(), kMaxMetadataBytes));
    }
  }
  return out;
}

std::variant<SearchRequest, ApiError> ParseSearchRequest(std::string_view body, size_t dim) {
  auto parsed = ParseObject(body, {"query", "vector", "limit", "filter"});
  if (auto* err = std::get_if<ApiError>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  SearchRequest out;
  const bool has_query = doc.contains("query") && !doc.at("query").is_null();
  const bool has_vector = doc.contains("vector") && !doc.at("vector").is_null();
  if (has_query == has_vector) {
    return Bad("missing_query",
               "give either \"query\" (text) or \"vector\" (numbers), one of them");
  }
  if (has_query) {
    const json& q = doc.at("query");
    if (!q.is_string()) {
      return Bad("wrong_type", fmt::format("\"query\" must be a string, not {}", TypeName(q)));
    }
    out.query = q.get<std::string>();
    if (out.query.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
      return Bad("missing_query", "\"query\" is empty");
    }
  } else {
    const json& v = doc.at("vector");
    if (!v.is_array()) {
      return Bad("invalid_vector", fmt::format("\"vector\" must be an array, not {}", TypeName(v)));
    }
    if (v.size() != dim) {
      return Bad(
          "invalid_vector",
          fmt::format("\"vector\" has {} numbers; the model has {} dimensions", v.size(), dim));
    }
    out.vector.reserve(dim);
    float norm2 = 0;  // in float, as the search normalises it
    for (const auto& x : v) {
      if (!x.is_number()) return Bad("invalid_vector", "\"vector\" must hold only numbers");
      const auto f = x.get<float>();
      if (!std::isfinite(f)) return Bad("invalid_vector", "\"vector\" holds a non-finite number");
      norm2 += f * f;
      out.vector.push_back(f);
    }
    if (norm2 == 0) return Bad("invalid_vector", "\"vector\" is all zeros");
    // Too small (1e-40s) or too large to normalise in float: the scores would
    // be NaN (null) in no order.
    if (!(norm2 >= FLT_MIN) || !std::isfinite(norm2)) {
      return Bad("invalid_vector",
                 "\"vector\" cannot be normalised: its length is out of float range");
    }
  }
  if (auto it = doc.find("limit"); it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
        it->get<int64_t>() > static_cast<int64_t>(kMaxLimit)) {
      return Bad("invalid_limit",
                 fmt::format("\"limit\" must be an integer in [1, {}]", kMaxLimit));
    }
    out.limit = it->get<size_t>();
  }
  if (auto it = doc.find("filter"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Bad(
          "invalid_filter",
          fmt::format("\"filter\" must be an object of field: value, not {}", TypeName(*it)));
    }
    for (const auto& [field, value] : it->items()) {
      if (value.is_object() || value.is_array()) {
        return Bad("invalid_filter",
                   fmt::format("filter \"{}\": only equality with a string, number, boolean or "
                               "null is supported",
                               field));
      }
      std::string_view path = field;
      if (path.starts_with("metadata.")) path.remove_prefix(9);
      if (path.empty() || path.front() == '.' || path.back() == '.' ||
          path.find("..") != std::string_view::npos) {
        return Bad("invalid_filter", fmt::format("filter field \"{}\" is not a field path", field));
      }
      out.filter.equals.emplace_back(field, value.dump());
    }
  }
  return out;
}

std::string MessageJson(const store::Message& m) {
  JsonWriter w;
  w.BeginObject().Key("id").String(m.id).Key("text").String(m.text).Key("metadata");
  if (m.metadata_json.empty()) {
    w.Null();
  } else {
    w.Raw(m.metadata_json);
  }
  w.Key("status").String(store::MessageStatusName(m.status));
  if (m.status == store::MessageStatus::failed) w.Key("reason").String(m.reason);
  if (m.status == store::MessageStatus::embedded) {
    w.Key("model_name").String(m.model_name).Key("embedded_at").Double(m.embedded_at);
  }
  w.Key("created_at").Double(m.created_at).EndObject();
  return w.Take();
}

ApiRoutes::ApiRoutes(store::EmbeddedStore& store, MessageService* service,
                     model::SentenceEncoder& encoder, ApiOptions options)
    : store_(store), service_(service), encoder_(encoder), options_(std::move(options)) {
  search_thread_ = std::thread([this] { SearchLoop(); });
}

ApiRoutes::~ApiRoutes() {
  {
    std::lock_guard lock(search_mu_);
    search_stop_ = true;
  }
  search_cv_.notify_all();
  search_thread_.join();
}

void ApiRoutes::SearchLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(search_mu_);
      search_cv_.wait(lock, [this] { return search_stop_ || !search_queue_.empty(); });
      if (search_queue_.empty()) return;
      if (search_stop_) {
        // Shutting down: tasks are dropped; their Respond objects answer 500
        // when destroyed, but the server is stopped before us anyway.
        search_queue_.clear();
        return;
      }
      task = std::move(search_queue_.front());
      search_queue_.pop_front();
    }
    task();
  }
}

bool ApiRoutes::Authorized(const HttpRequest& req) const {
  if (options_.auth_token.empty()) return true;
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return false;
  std::string_view value = it->second;
  constexpr std::string_view kBearer = "Bearer ";
  if (!value.starts_with(kBearer)) return false;
  return ConstantTimeEquals(value.substr(kBearer.size()), options_.auth_token);
}

void ApiRoutes::Register(server::HttpServer& server) {
  server.RouteAsync("POST", "/messages", [this](const HttpRequest& req, server::Respond respond) {
    PostMessage(req, std::move(respond));
  });
  server.Route("GET", "/messages", [this](const HttpRequest& req) { return ListMessages(req); });
  server.Route("GET", "/messages/*", [this](const HttpRequest& req) { return GetMessage(req); });
  server.Route("GET", "/status", [this](const HttpRequest&) { return JsonOk(StatusJson()); });
  server.RouteAsync(
      "POST", "/embeddings/search",
      [this](const HttpRequest& req, server::Respond respond) { Search(req, std::move(respond)); });
}

void ApiRoutes::PostMessage(const HttpRequest& req, server::Respond respond) {
  if (!Authorized(req)) {
    auto r = JsonError(401, "unauthorized", "this route needs Authorization: Bearer <auth.token>");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    respond(std::move(r));
    return;
  }
  if (service_ == nullptr) {
    respond(JsonError(503, "unavailable", "HTTP ingest is not enabled on this server"));
    return;
  }
  auto parsed = ParseMessageRequest(req.body);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    respond(ToResponse(*err));
    return;
  }
  auto& request = std::get<MessageRequest>(parsed);
  const std::string id = request.message.id;
  // `respond` is shared with the callback; Submit does not call it on refusal.
  auto shared = std::make_shared<server::Respond>(std::move(respond));
  const bool queued =
      service_->Submit(std::move(request.message), std::move(request.user_id),
                       [shared, id](Result<store::PutOutcome> outcome) {
                         if (!outcome) {
                           (*shared)(JsonError(503, "unavailable",
                                               "the store could not commit the message; retry: " +
                                                   outcome.error().ToString()));
                           return;
                         }
                         JsonWriter w;
                         w.BeginObject()
                             .Key("id")
                             .String(id)
                             .Key("status")
                             .String(store::MessageStatusName(outcome->status))
                             .Key("created")
                             .Bool(outcome->created)
                             .EndObject();
                         (*shared)(JsonOk(w.Take(), 202));
                       });
  if (!queued) {
    auto r = JsonError(503, "overloaded", "the write queue is full; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    (*shared)(std::move(r));
  }
}

HttpResponse ApiRoutes::ListMessages(const HttpRequest& req) {
  auto limit = QueryNumber(req, "limit", 20, 1, kMaxLimit);
  if (auto* err = std::get_if<ApiError>(&limit)) return ToResponse(*err);
  auto offset = QueryNumber(req, "offset", 0, 0, SIZE_MAX / 2);
  if (auto* err = std::get_if<ApiError>(&offset)) return ToResponse(*err);
  auto rows = store_.List(std::get<size_t>(limit), std::get<size_t>(offset));
  auto counts = store_.Stats();
  if (!rows || !counts) {
    return JsonError(503, "unavailable", (rows ? counts.error() : rows.error()).ToString());
  }
  JsonWriter w;
  w.BeginObject().Key("messages").BeginArray();
  for (const auto& m : *rows) w.Raw(MessageJson(m));
  w.EndArray()
      .Key("limit")
      .Uint(std::get<size_t>(limit))
      .Key("offset")
      .Uint(std::get<size_t>(offset))
      .Key("total")
      .Uint(counts->total)
      .EndObject();
  return JsonOk(w.Take());
}

HttpResponse ApiRoutes::GetMessage(const HttpRequest& req) {
  constexpr std::string_view kPrefix = "/messages/";
  const std::string id = req.path.substr(kPrefix.size());
  if (id.empty()) return JsonError(404, "not_found", "no message id in the path");
  auto row = store_.Get(id);
  if (!row) return JsonError(503, "unavailable", row.error().ToString());
  if (!row->has_value()) return JsonError(404, "not_found", "no message with id '" + id + "'");
  return JsonOk(MessageJson(**row));
}

std::string ApiRoutes::StatusJson() {
  auto counts = store_.Stats();
  JsonWriter w;
  w.BeginObject();
  if (counts) {
    w.Key("total")
        .Uint(counts->total)
        .Key("pending")
        .Uint(counts->pending)
        .Key("embedded")
        .Uint(counts->embedded)
        .Key("failed")
        .Uint(counts->failed)
        .Key("oldest_pending_age_s")
        .Double(counts->oldest_pending_age_s);
  } else {
    w.Key("error").String(counts.error().ToString());
  }
  w.Key("indexed").Uint(store_.indexed_count()).Key("model").String(options_.model_name);
  w.Key("search_backend").String(options_.search_backend_name);
  for (const auto& [name, json] : options_.extra_status) w.Key(name).Raw(json());
  w.EndObject();
  return w.Take();
}

void ApiRoutes::Search(const HttpRequest& req, server::Respond respond) {
  auto parsed = ParseSearchRequest(req.body, encoder_.dim());
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    respond(ToResponse(*err));
    return;
  }
  {
    std::lock_guard lock(search_mu_);
    if (search_stop_ || search_queue_.size() >= options_.max_search_queue) {
      respond(JsonError(503, "overloaded", "too many searches waiting; retry shortly"));
      return;
    }
    search_queue_.push_back([this, request = std::move(std::get<SearchRequest>(parsed)),
                             respond = std::move(respond)]() { respond(RunSearch(request)); });
  }
  search_cv_.notify_one();
}

HttpResponse ApiRoutes::RunSearch(const SearchRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> q = request.vector;
  if (!request.query.empty()) {
    q.resize(encoder_.dim());
    const std::string_view text = request.query;
    encoder_.Embed(std::span<const std::string_view>(&text, 1), q.data());
  }
  auto hits = options_.search_backend ? options_.search_backend(q, request.limit, request.filter)
                                      : store_.Search(q, request.limit, request.filter);
  if (!hits) {
    if (hits.error().code == errc::invalid_argument) {
      return JsonError(400, "invalid_filter", hits.error().message);
    }
    return JsonError(503, "unavailable", hits.error().ToString());
  }
  const double took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  JsonWriter w;
  w.BeginObject().Key("results").BeginArray();
  for (const auto& h : *hits) {
    w.BeginObject().Key("id").String(h.id).Key("score").Float(h.score).Key("text").String(h.text);
    w.Key("metadata");
    if (h.metadata_json.empty()) {
      w.Null();
    } else {
      w.Raw(h.metadata_json);
    }
    w.EndObject();
  }
  w.EndArray()
      .Key("count")
      .Uint(hits->size())
      .Key("took_ms")
      .Double(took_ms)
      .Key("model")
      .String(options_.model_name)
      .EndObject();
  return JsonOk(w.Take());
}

}  // namespace embedstream::app
