#include "api/api_routes.h"

#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <unordered_set>

#include <fmt/format.h>
#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"

namespace embedstream::api {
namespace {

using json = nlohmann::json;
using server::HttpRequest;
using server::HttpResponse;
using server::JsonError;
using server::JsonOk;

HttpResponse ToResponse(const ApiError& e) { return JsonError(e.status, e.error, e.detail); }

// A non-negative integer query parameter within [lo, hi], or an error.
std::variant<size_t, ApiError> QueryNumber(const HttpRequest& req, const char* name, size_t dflt,
                                           size_t lo, size_t hi) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return dflt;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  // `end` must be the string's end: a decoded %00 is a NUL inside it.
  if (s.empty() || s[0] < '0' || s[0] > '9' || end != s.c_str() + s.size() || errno != 0 ||
      v < static_cast<long long>(lo) || static_cast<unsigned long long>(v) > hi) {
    return BadRequest(std::string("invalid_") + name,
                      fmt::format("{} must be an integer in [{}, {}], got '{}'", name, lo, hi, s));
  }
  return static_cast<size_t>(v);
}

}  // namespace

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
  if (m.chunk_count > 1) {
    // A document: how many of its chunks are embedded (and searchable).
    w.Key("chunks").BeginObject().Key("embedded").Uint(m.chunks_embedded);
    w.Key("total").Uint(m.chunk_count).EndObject();
  }
  w.Key("created_at").Double(m.created_at).EndObject();
  return w.Take();
}

ApiRoutes::ApiRoutes(store::EmbeddedStore& store, SubmitMessage submit,
                     model::SentenceEncoder& encoder, ApiOptions options)
    : store_(store), submit_(std::move(submit)), encoder_(encoder), options_(std::move(options)) {
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

void ApiRoutes::Register(server::HttpServer& server) {
  server.RouteAsync("POST", "/messages", [this](const HttpRequest& req, server::Respond respond) {
    PostMessage(req, std::move(respond));
  });
  server.Route("GET", "/messages", [this](const HttpRequest& req) { return ListMessages(req); });
  server.Route("GET", "/messages/*", [this](const HttpRequest& req) { return GetMessage(req); });
  server.RouteAsync("DELETE", "/messages/*",
                    [this](const HttpRequest& req, server::Respond respond) {
                      DeleteMessage(req, std::move(respond));
                    });
  server.RouteAsync("POST", "/documents", [this](const HttpRequest& req, server::Respond respond) {
    PostDocument(req, std::move(respond));
  });
  server.Route("GET", "/status", [this](const HttpRequest&) { return JsonOk(StatusJson()); });
  server.RouteAsync(
      "POST", "/embeddings/search",
      [this](const HttpRequest& req, server::Respond respond) { Search(req, std::move(respond)); });
}

void ApiRoutes::PostMessage(const HttpRequest& req, server::Respond respond) {
  if (!submit_) {
    respond(JsonError(503, "unavailable", "HTTP ingest is not enabled on this server"));
    return;
  }
  auto parsed = ParseMessageRequest(req.body);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    respond(ToResponse(*err));
    return;
  }
  auto shared = std::make_shared<server::Respond>(std::move(respond));
  if (options_.chunking.on_overflow == pipeline::ChunkingOptions::Overflow::kReject) {
    // A text too long is refused before the 202, as POST /documents does.
    PlanAndSubmit(std::move(std::get<MessageRequest>(parsed)), std::move(shared), false);
    return;
  }
  Submit(std::move(std::get<MessageRequest>(parsed)), std::move(shared), std::nullopt);
}

void ApiRoutes::Submit(MessageRequest request, std::shared_ptr<server::Respond> respond,
                       std::optional<uint32_t> chunks) {
  const std::string id = request.message.id;
  // `respond` is shared with the callback; Submit does not call it on refusal.
  const bool queued = submit_(
      std::move(request.message), std::move(request.user_id),
      [respond, id, chunks, ingest = options_.ingest](Result<store::PutOutcome> outcome) {
        // Kafka ingest: the record is too large for the pipeline.
        if (!outcome && ingest != "store" && outcome.error().code == errc::invalid_argument) {
          (*respond)(JsonError(413, "too_large", outcome.error().message));
          return;
        }
        if (!outcome) {
          auto r = JsonError(503, "unavailable",
                             "the message could not be made durable (" + ingest +
                                 "); retry: " + outcome.error().ToString());
          r.headers.emplace_back("Retry-After", "1");
          (*respond)(std::move(r));
          return;
        }
        JsonWriter w;
        w.BeginObject().Key("id").String(id).Key("status").String(
            store::MessageStatusName(outcome->status));
        if (ingest == "store") {
          w.Key("created").Bool(outcome->created);
        } else {
          w.Key("ingest").String(ingest);
        }
        if (chunks) w.Key("chunks").Uint(*chunks);
        w.EndObject();
        (*respond)(JsonOk(w.Take(), 202));
      });
  if (!queued) {
    auto r = JsonError(503, "overloaded", "the write queue is full; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    (*respond)(std::move(r));
  }
}

void ApiRoutes::PostDocument(const HttpRequest& req, server::Respond respond) {
  if (!submit_) {
    respond(JsonError(503, "unavailable", "HTTP ingest is not enabled on this server"));
    return;
  }
  auto it = req.headers.find("content-type");
  auto parsed =
      ParseDocumentRequest(req.body, it == req.headers.end() ? "" : it->second, req.query);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    respond(ToResponse(*err));
    return;
  }
  PlanAndSubmit(std::move(std::get<MessageRequest>(parsed)),
                std::make_shared<server::Respond>(std::move(respond)), true);
}

void ApiRoutes::PlanAndSubmit(MessageRequest request, std::shared_ptr<server::Respond> respond,
                              bool report_chunks) {
  // Tokenizing a long document takes a while: on the search thread, not an
  // io thread.
  std::lock_guard lock(search_mu_);
  if (search_stop_ || search_queue_.size() >= options_.max_search_queue) {
    auto r = JsonError(503, "overloaded", "too many requests queued; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    (*respond)(std::move(r));
    return;
  }
  search_queue_.push_back([this, respond, report_chunks, request = std::move(request)]() mutable {
    std::vector<int32_t> pieces;
    std::vector<text::TokenizedWord> words;
    encoder_.tokenizer().EncodeWords(request.message.text, pieces, words);
    const pipeline::ChunkPlan plan =
        pipeline::PlanChunks(request.message.text, words, pieces.size(), options_.chunking,
                             encoder_.info().max_seq_length);
    if (plan.kind == pipeline::ChunkPlan::Kind::kTooLong) {
      if (options_.on_too_long) options_.on_too_long();
      (*respond)(JsonError(400, "too_long",
                           fmt::format("the text is {} tokens; the model takes {} "
                                       "(chunking.on_overflow: reject)",
                                       plan.tokens, plan.max_tokens)));
      return;
    }
    const auto chunks = static_cast<uint32_t>(
        plan.kind == pipeline::ChunkPlan::Kind::kChunked ? plan.spans.size() : 1);
    request.message.chunk_count = chunks;
    Submit(std::move(request), respond,
           report_chunks ? std::optional<uint32_t>(chunks) : std::nullopt);
  });
  search_cv_.notify_one();
}

void ApiRoutes::DeleteMessage(const HttpRequest& req, server::Respond respond) {
  if (!submit_) {
    respond(JsonError(503, "unavailable", "HTTP ingest is not enabled on this server"));
    return;
  }
  constexpr std::string_view kPrefix = "/messages/";
  const std::string id = req.path.substr(kPrefix.size());
  if (id.empty()) {
    respond(JsonError(404, "not_found", "no message id in the path"));
    return;
  }
  if (id.size() > kMaxIdBytes) {
    respond(JsonError(400, "invalid_id", fmt::format("an id is at most {} bytes", kMaxIdBytes)));
    return;
  }
  if (options_.delete_message) {
    auto user = req.query.find("user_id");
    options_.delete_message(
        id, user == req.query.end() ? std::string() : user->second,
        [respond = std::move(respond), id](Status st) {
          if (!st.ok()) {
            auto r =
                JsonError(503, "unavailable",
                          "the delete could not be made durable; retry: " + st.error().ToString());
            r.headers.emplace_back("Retry-After", "1");
            respond(std::move(r));
            return;
          }
          JsonWriter w;
          w.BeginObject().Key("id").String(id).Key("status").String("deleted").EndObject();
          respond(JsonOk(w.Take(), 202));
        });
    return;
  }
  // Durable before the answer; the outbox takes it to every other sink.
  auto existed = store_.DeleteMessage(id);
  if (!existed) {
    respond(JsonError(503, "unavailable", existed.error().ToString()));
    return;
  }
  if (options_.on_deleted) options_.on_deleted(id);
  JsonWriter w;
  w.BeginObject().Key("id").String(id).Key("status").String("deleted");
  w.Key("existed").Bool(*existed).EndObject();
  respond(JsonOk(w.Take(), 202));
}

HttpResponse ApiRoutes::ListMessages(const HttpRequest& req) {
  auto limit = QueryNumber(req, "limit", 20, 1, kMaxLimit);
  if (auto* err = std::get_if<ApiError>(&limit)) return ToResponse(*err);
  auto offset = QueryNumber(req, "offset", 0, 0, kMaxOffset);
  if (auto* err = std::get_if<ApiError>(&offset)) return ToResponse(*err);
  size_t start = std::get<size_t>(offset);
  if (auto it = req.query.find("cursor"); it != req.query.end()) {
    const auto cursor = ParseCursor(it->second);
    if (!cursor || *cursor > kMaxOffset) {
      return JsonError(400, "invalid_cursor",
                       "cursor must be the \"next\" string of an earlier page");
    }
    start = *cursor;
  }
  const size_t budget = options_.max_response_bytes;
  auto rows = store_.List(std::get<size_t>(limit), start, budget);
  auto counts = store_.Stats();
  if (!rows || !counts) {
    return JsonError(503, "unavailable", (rows ? counts.error() : rows.error()).ToString());
  }
  JsonWriter w;
  w.BeginObject().Key("messages").BeginArray();
  size_t shown = 0, bytes = 0;
  for (const auto& m : *rows) {
    std::string item = MessageJson(m);
    if (shown > 0 && bytes + item.size() > budget) break;  // the first always fits
    bytes += item.size();
    w.Raw(item);
    ++shown;
  }
  const size_t end = start + shown;
  w.EndArray()
      .Key("limit")
      .Uint(std::get<size_t>(limit))
      .Key("offset")
      .Uint(start)
      .Key("total")
      .Uint(counts->total)
      .Key("next");
  if (end < counts->total && shown > 0) {
    w.String(FormatCursor(end));
  } else {
    w.Null();
  }
  w.EndObject();
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
  const size_t budget = options_.max_response_bytes;
  Result<store::EmbeddedStore::SearchPage> page = store::EmbeddedStore::SearchPage{};
  if (options_.search_backend) {
    // Another store answers whole: the page is cut from its hits here.
    // Grouped: ask for more chunks, keep the best of each document.
    const bool group = request.filter.group_by_parent;
    auto hits =
        options_.search_backend(q, group ? request.limit * 10 : request.limit, request.filter);
    if (hits && group) {
      std::unordered_set<std::string> seen;
      std::vector<store::SearchHit> best;
      for (auto& h : *hits) {
        if (best.size() >= request.limit) break;
        if (seen.insert(h.parent_id.empty() ? h.id : h.parent_id).second) {
          best.push_back(std::move(h));
        }
      }
      *hits = std::move(best);
    }
    if (hits) {
      auto& all = *hits;
      const size_t skip = std::min(request.offset, all.size());
      page->hits.assign(std::make_move_iterator(all.begin() + static_cast<ptrdiff_t>(skip)),
                        std::make_move_iterator(all.end()));
    } else {
      page = hits.error();
    }
  } else {
    page = store_.SearchPaged(q, request.limit, request.filter, request.offset, budget);
  }
  if (!page) {
    if (page.error().code == errc::invalid_argument) {
      return JsonError(400, "invalid_filter", page.error().message);
    }
    return JsonError(503, "unavailable", page.error().ToString());
  }
  const double took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  JsonWriter w;
  w.BeginObject().Key("results").BeginArray();
  size_t shown = 0, bytes = 0;
  for (const auto& h : page->hits) {
    JsonWriter item;
    item.BeginObject().Key("id").String(h.id).Key("score").Float(h.score).Key("text").String(
        h.text);
    item.Key("metadata");
    if (h.metadata_json.empty()) {
      item.Null();
    } else {
      item.Raw(h.metadata_json);
    }
    if (!h.parent_id.empty()) {
      // A chunk: its document, and its span in the document's text.
      item.Key("parent_id").String(h.parent_id).Key("chunk_index").Uint(h.chunk_index);
      item.Key("chunk_count").Uint(h.chunk_count).Key("char_start").Uint(h.char_start);
      item.Key("char_end").Uint(h.char_end);
    }
    item.EndObject();
    std::string json = item.Take();
    if (shown > 0 && bytes + json.size() > budget) break;  // the first always fits
    bytes += json.size();
    w.Raw(json);
    ++shown;
  }
  const bool cut = shown < page->hits.size() || page->cut;
  const size_t end = request.offset + shown;
  w.EndArray().Key("count").Uint(shown).Key("next");
  if (cut && end < request.limit) {
    w.String(FormatCursor(end));
  } else {
    w.Null();
  }
  w.Key("took_ms").Double(took_ms).Key("model").String(options_.model_name).EndObject();
  return JsonOk(w.Take());
}

}  // namespace embedstream::api
