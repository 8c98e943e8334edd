#include "sinks/qdrant_sink.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"

namespace embedstream::sinks {
namespace {

// Bodies above this that are cut off in transit count as refused for their size.
constexpr size_t kLargeBodyBytes = 1 << 20;

using json = nlohmann::json;

constexpr size_t kErrorBodyMax = 300;  // characters of a non-JSON error body kept

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

bool AllFinite(std::span<const float> v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

struct HttpAnswer {
  long status = 0;
  std::string body;
};

// Qdrant's {"status":{"error":"..."}} message, else the start of the body.
std::string QdrantMessage(const HttpAnswer& a) {
  json doc = json::parse(a.body, nullptr, false);
  if (doc.is_object()) {
    auto st = doc.find("status");
    if (st != doc.end() && st->is_object()) {
      auto err = st->find("error");
      if (err != st->end() && err->is_string()) return err->get<std::string>();
    }
  }
  std::string text = a.body.substr(0, kErrorBodyMax);
  return text.empty() ? "(empty body)" : text;
}

// The error for an answer that is not a success, by status class.
Error ErrorFor(const HttpAnswer& a, const std::string& what) {
  const std::string detail = what + ": HTTP " + std::to_string(a.status) + ": " + QdrantMessage(a);
  if (a.status == 401 || a.status == 403) {
    return Error(errc::unavailable,
                 "Qdrant refused the API key (check QDRANT_API_KEY / qdrant.api_key): " + detail);
  }
  if (a.status == 429 || a.status >= 500) return Error(errc::unavailable, "Qdrant " + detail);
  if (a.status == 400 || a.status == 422 || a.status == 409) {
    return Error(errc::invalid_argument, "Qdrant " + detail);
  }
  if (a.status == 404) return Error(errc::not_found, "Qdrant " + detail);
  return Error(errc::internal, "unexpected answer from Qdrant: " + detail);
}

}  // namespace

QdrantSinkOptions QdrantSinkOptions::FromEnv() {
  QdrantSinkOptions o;
  const std::string url = EnvOr("QDRANT_URL", "");
  if (!url.empty()) {
    o.url = url;
  } else {
    const std::string host = EnvOr("QDRANT_HOST", "127.0.0.1");
    int port = 6333;
    const std::string p = EnvOr("QDRANT_PORT", "");
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (!p.empty() && *end == '\0' && v > 0 && v < 65536) port = static_cast<int>(v);
    o.url = "http://" + host + ":" + std::to_string(port);
  }
  o.api_key = EnvOr("QDRANT_API_KEY", o.api_key);
  o.collection = EnvOr("QDRANT_COLLECTION", o.collection);
  return o;
}

struct QdrantSink::Impl {
  const QdrantSinkOptions& o;
  CURL* curl = nullptr;
  curl_slist* json_headers = nullptr;   // requests with a body
  curl_slist* plain_headers = nullptr;  // GET
  std::string base;                     // url without a trailing '/'
  std::string collection_path;          // /collections/<escaped name>
  long last_status = 0;
  // The last request was a large body cut off in transit (reset, timeout, no
  // answer): a proxy or the server may refuse bodies of that size that way.
  bool last_cut_large = false;
  bool collection_checked = false;  // EnsureCollection succeeded once
  char curl_error[CURL_ERROR_SIZE] = {};
  std::shared_ptr<spdlog::logger> logger = GetLogger("qdrant_sink");

  explicit Impl(const QdrantSinkOptions& options) : o(options) {}
  ~Impl() {
    curl_slist_free_all(json_headers);
    curl_slist_free_all(plain_headers);
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status Init();
  // One request on the kept-alive connection. unavailable: no answer
  // (refused, reset, timed out); any HTTP answer is a value.
  Result<HttpAnswer> Request(const char* method, const std::string& path, const std::string* body);
  // GET the collection and check its vector params; create it when missing.
  Status EnsureCollection();
  // EnsureCollection unless it succeeded before (Connect found Qdrant down).
  Status EnsureChecked() { return collection_checked ? Status{} : EnsureCollection(); }
  // A keyword index on payload parent_id: replacing and deleting a
  // document's chunks filter on it. Best effort (idempotent in Qdrant).
  void IndexParentId() {
    const std::string body = R"({"field_name":"parent_id","field_schema":"keyword"})";
    auto a = Request("PUT", collection_path + "/index?wait=true", &body);
    if (!a || a->status != 200) {
      logger->warn("Qdrant: no payload index on parent_id ({}); deletes scan the collection",
                   a ? QdrantMessage(*a) : a.error().message);
    }
  }
  Status CheckCollection(const HttpAnswer& a);
  // PUT one batch (points[idx...]); bisects a refused batch into `out`.
  Status SendBatch(std::span<const std::string> pieces, std::span<const size_t> idx,
                   UpsertOutcome& out, bool& recreated);
};

Status QdrantSink::Impl::Init() {
  GlobalInitOnce();
  curl = curl_easy_init();
  if (curl == nullptr) return Error(errc::internal, "curl_easy_init failed");
  base = o.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  char* escaped =
      curl_easy_escape(curl, o.collection.c_str(), static_cast<int>(o.collection.size()));
  if (escaped == nullptr) return Error(errc::internal, "curl_easy_escape failed");
  collection_path = std::string("/collections/") + escaped;
  curl_free(escaped);

  for (curl_slist** list : {&json_headers, &plain_headers}) {
    if (!o.api_key.empty()) *list = curl_slist_append(*list, ("api-key: " + o.api_key).c_str());
    *list = curl_slist_append(*list, "Accept: application/json");
  }
  // libcurl's POSTFIELDS default is form-urlencoded, which Qdrant refuses;
  // "Expect:" stops the 100-continue round trip on large bodies.
  json_headers = curl_slist_append(json_headers, "Content-Type: application/json");
  json_headers = curl_slist_append(json_headers, "Expect:");
  if (json_headers == nullptr || plain_headers == nullptr) {
    return Error(errc::internal, "curl_slist_append failed");
  }
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  return {};
}

Result<HttpAnswer> QdrantSink::Impl::Request(const char* method, const std::string& path,
                                             const std::string* body) {
  HttpAnswer answer;
  const std::string url = base + path;
  curl_error[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer.body);
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, json_headers);
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST,
                     std::string_view(method) == "GET" ? nullptr : method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, plain_headers);
  }
  const CURLcode rc = curl_easy_perform(curl);
  last_cut_large = false;
  if (rc != CURLE_OK) {
    last_status = 0;
    last_cut_large =
        body != nullptr && body->size() > kLargeBodyBytes &&
        (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_OPERATION_TIMEDOUT ||
         rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE);
    const std::string why = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc);
    const errc code = (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
                          ? errc::invalid_argument
                          : errc::unavailable;
    return Error(code, std::string("Qdrant at ") + base + ": " + method + " " + path + ": " + why);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  last_status = answer.status;
  return answer;
}

Status QdrantSink::Impl::CheckCollection(const HttpAnswer& a) {
  const json doc = json::parse(a.body, nullptr, false);
  const json* vectors = nullptr;
  if (doc.is_object() && doc.contains("result")) {
    const json& r = doc["result"];
    if (r.is_object() && r.contains("config") && r["config"].is_object() &&
        r["config"].contains("params") && r["config"]["params"].is_object() &&
        r["config"]["params"].contains("vectors")) {
      vectors = &r["config"]["params"]["vectors"];
    }
  }
  if (vectors == nullptr || !vectors->is_object()) {
    return Error(errc::internal, "Qdrant GET " + collection_path +
                                     ": no result.config.params.vectors in the answer");
  }
  const auto size = vectors->find("size");
  const auto distance = vectors->find("distance");
  if (size == vectors->end() || distance == vectors->end() || !size->is_number_unsigned() ||
      !distance->is_string()) {
    return Error(errc::invalid_argument, "Qdrant collection '" + o.collection +
                                             "' has named vectors " + vectors->dump() +
                                             "; the sink needs one unnamed vector of size " +
                                             std::to_string(o.dim) + " and distance " + o.distance);
  }
  const uint64_t have_size = size->get<uint64_t>();
  const std::string have_distance = distance->get<std::string>();
  if (have_size != o.dim || have_distance != o.distance) {
    return Error(errc::invalid_argument,
                 "Qdrant collection '" + o.collection + "' has vectors of size " +
                     std::to_string(have_size) + " and distance " + have_distance +
                     ", the model needs size " + std::to_string(o.dim) + " and distance " +
                     o.distance + " (use another collection or delete this one)");
  }
  return {};
}

Status QdrantSink::Impl::EnsureCollection() {
  // GET; on 404 PUT; on 409 (created meanwhile by someone else) GET again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto got = Request("GET", collection_path, nullptr);
    if (!got) return got.error();
    if (got->status == 200) {
      Status st = CheckCollection(*got);
      collection_checked = st.ok();
      if (collection_checked) IndexParentId();
      return st;
    }
    if (got->status != 404) return ErrorFor(*got, "GET " + collection_path);
    JsonWriter w;
    w.BeginObject().Key("vectors").BeginObject();
    w.Key("size").Uint(o.dim).Key("distance").String(o.distance);
    w.EndObject().EndObject();
    const std::string body = w.Take();
    auto put = Request("PUT", collection_path, &body);
    if (!put) return put.error();
    if (put->status == 200) {
      collection_checked = true;
      IndexParentId();
      logger->info("created Qdrant collection '{}' (size {}, {})", o.collection, o.dim, o.distance);
      return {};
    }
    if (put->status != 409) return ErrorFor(*put, "PUT " + collection_path);
  }
  return Error(errc::unavailable,
               "Qdrant collection '" + o.collection + "' keeps disappearing and reappearing");
}

Status QdrantSink::Impl::SendBatch(std::span<const std::string> pieces, std::span<const size_t> idx,
                                   UpsertOutcome& out, bool& recreated) {
  std::string body = "{\"points\":[";
  for (size_t i = 0; i < idx.size(); ++i) {
    if (i > 0) body += ',';
    body += pieces[idx[i]];
  }
  body += "]}";
  const std::string path = collection_path + "/points?wait=true";
  for (;;) {
    auto a = Request("PUT", path, &body);
    if (!a) return a.error();
    if (a->status == 200) {
      out.stored += idx.size();
      return {};
    }
    if (a->status == 404 && !recreated) {
      // The collection was deleted underneath: recreate it once per call.
      logger->warn("Qdrant collection '{}' is gone ({}); recreating it", o.collection,
                   QdrantMessage(*a));
      recreated = true;
      if (Status st = EnsureCollection(); !st) return st;
      continue;
    }
    if (a->status == 400 || a->status == 422) {
      const std::string msg = QdrantMessage(*a);
      // Vectors are checked locally, so a dimension error means the
      // collection changed underneath: a sink problem, not a record's.
      if (msg.find("Vector dimension error") != std::string::npos) {
        return Error(errc::unavailable, "Qdrant collection '" + o.collection +
                                            "' no longer matches the model: " + msg);
      }
      if (idx.size() == 1) {
        out.rejected.push_back({idx[0], msg});
        return {};
      }
      const size_t half = idx.size() / 2;
      if (Status st = SendBatch(pieces, idx.first(half), out, recreated); !st) return st;
      return SendBatch(pieces, idx.subspan(half), out, recreated);
    }
    return ErrorFor(*a, "PUT " + path);
  }
}

QdrantSink::QdrantSink(QdrantSinkOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}

QdrantSink::~QdrantSink() = default;

long QdrantSink::last_http_status() const { return impl_->last_status; }

bool QdrantSink::last_failure_may_be_size() const {
  return impl_->last_status == 413 || impl_->last_cut_large;
}

Result<std::unique_ptr<QdrantSink>> QdrantSink::Connect(const QdrantSinkOptions& options) {
  if (options.dim == 0) return Error(errc::invalid_argument, "QdrantSinkOptions.dim is not set");
  if (options.batch_size == 0) {
    return Error(errc::invalid_argument, "QdrantSinkOptions.batch_size must be at least 1");
  }
  if (options.collection.empty()) {
    return Error(errc::invalid_argument, "QdrantSinkOptions.collection is empty");
  }
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0) {
    return Error(errc::invalid_argument,
                 "Qdrant url '" + options.url + "' must start with http:// or https://");
  }
  static constexpr std::string_view kDistances[] = {"Cosine", "Dot", "Euclid", "Manhattan"};
  if (std::find(std::begin(kDistances), std::end(kDistances), options.distance) ==
      std::end(kDistances)) {
    return Error(errc::invalid_argument, "Qdrant distance '" + options.distance +
                                             "' is not one of Cosine, Dot, Euclid, Manhattan");
  }
  std::unique_ptr<QdrantSink> sink(new QdrantSink(options));
  if (Status st = sink->impl_->Init(); !st) return st.error();
  if (Status st = sink->impl_->EnsureCollection(); !st) {
    const long http = sink->impl_->last_status;
    if (http == 401 || http == 403) {
      // At start-up a refused key is a configuration error: fail loudly.
      return Error(errc::invalid_argument, st.error().message);
    }
    if (st.error().code != errc::unavailable) return st.error();
    // Qdrant down at start-up is an outage, not a configuration error: start
    // anyway. The collection is checked (or created) before the first write
    // or search; until then they fail as unavailable (retried, never DLQ).
    sink->impl_->logger->warn("{}; the collection is checked once Qdrant answers",
                              st.error().message);
  }
  return sink;
}

std::string QdrantSink::PointId(const std::string& id, bool* is_uuid) {
  return StoredUuid(id, is_uuid);
}

std::vector<size_t> QdrantSink::Serialize(std::span<const QdrantPoint> points,
                                          std::vector<std::string>& pieces,
                                          UpsertOutcome& out) const {
  pieces.assign(points.size(), {});
  std::vector<size_t> valid;
  valid.reserve(points.size());
  JsonWriter w;
  for (size_t i = 0; i < points.size(); ++i) {
    const QdrantPoint& p = points[i];
    auto refuse = [&](std::string why) { out.rejected.push_back({i, std::move(why)}); };
    if (p.id.empty()) {
      refuse("empty id");
      continue;
    }
    if (p.vector.size() != options_.dim) {
      refuse("vector has " + std::to_string(p.vector.size()) + " dimensions, the collection " +
             std::to_string(options_.dim));
      continue;
    }
    if (!AllFinite(p.vector)) {
      refuse("vector holds NaN or infinity");
      continue;
    }
    json payload =
        p.payload_json.empty() ? json::object() : json::parse(p.payload_json, nullptr, false);
    if (payload.is_discarded()) {
      refuse("payload is not valid JSON (UTF-8)");
      continue;
    }
    if (!payload.is_object()) {
      refuse("payload is not a JSON object");
      continue;
    }
    bool is_uuid = false;
    const std::string pid = PointId(p.id, &is_uuid);
    if (!is_uuid) payload["source_id"] = p.id;
    w.Clear();
    w.BeginObject().Key("id").String(pid).Key("vector").FloatArray(p.vector);
    w.Key("payload").Raw(payload.dump(-1, ' ', false, json::error_handler_t::replace));
    w.EndObject();
    pieces[i] = w.Take();
    valid.push_back(i);
  }
  return valid;
}

Result<UpsertOutcome> QdrantSink::UpsertAndDelete(std::span<const QdrantPoint> points,
                                                  const std::string& filter_json) {
  if (filter_json.empty()) return Upsert(points);
  UpsertOutcome out;
  std::vector<std::string> pieces;
  const std::vector<size_t> valid = Serialize(points, pieces, out);
  if (Status st = impl_->EnsureChecked(); !st) return st.error();
  std::string body = "{\"operations\":[";
  if (!valid.empty()) {
    body += "{\"upsert\":{\"points\":[";
    for (size_t i = 0; i < valid.size(); ++i) {
      if (i > 0) body += ',';
      body += pieces[valid[i]];
    }
    body += "]}},";
  }
  body += "{\"delete\":{\"filter\":" + filter_json + "}}]}";
  const std::string path = impl_->collection_path + "/points/batch?wait=true";
  auto a = impl_->Request("POST", path, &body);
  if (!a) return a.error();
  if (a->status == 200) {
    out.stored = valid.size();
    return out;
  }
  if (a->status == 400 || a->status == 422 || a->status == 404) {
    // A point refused (or the collection gone): the two steps, which find
    // the refused points and recreate the collection.
    auto upserted = Upsert(points);
    if (!upserted) return upserted.error();
    if (Status st = DeleteWhere(filter_json); !st) return st.error();
    return upserted;
  }
  return ErrorFor(*a, "POST " + path);
}

Result<UpsertOutcome> QdrantSink::Upsert(std::span<const QdrantPoint> points) {
  UpsertOutcome out;
  // Each point serialised once; batches (and bisected halves) join them.
  std::vector<std::string> pieces;
  const std::vector<size_t> valid = Serialize(points, pieces, out);
  if (!valid.empty()) {
    if (Status st = impl_->EnsureChecked(); !st) return st.error();
  }
  bool recreated = false;
  const std::span<const size_t> all(valid);
  for (size_t start = 0; start < all.size(); start += options_.batch_size) {
    const size_t n = std::min(options_.batch_size, all.size() - start);
    if (Status st = impl_->SendBatch(pieces, all.subspan(start, n), out, recreated); !st) {
      return st.error();
    }
  }
  std::sort(out.rejected.begin(), out.rejected.end(),
            [](const QdrantRejected& a, const QdrantRejected& b) { return a.index < b.index; });
  if (!out.rejected.empty()) {
    impl_->logger->warn("Qdrant upsert: {} of {} points refused (first: {})", out.rejected.size(),
                        points.size(), out.rejected.front().message);
  }
  return out;
}

Status QdrantSink::DeleteWhere(const std::string& filter_json) {
  if (Status st = impl_->EnsureChecked(); !st) return st;
  const std::string body = "{\"filter\":" + filter_json + "}";
  const std::string path = impl_->collection_path + "/points/delete?wait=true";
  auto a = impl_->Request("POST", path, &body);
  if (!a) return a.error();
  if (a->status == 200 || a->status == 404) return {};
  if (a->status == 400 || a->status == 422) {
    // Our own filter refused: a bug or an incompatible server, not a record's fault.
    return Error(errc::unavailable, "Qdrant refused a delete: " + QdrantMessage(*a));
  }
  return ErrorFor(*a, "POST " + path);
}

Result<std::vector<QdrantHit>> QdrantSink::Search(const std::vector<float>& q, size_t k,
                                                  const std::string& filter_json) {
  if (q.size() != options_.dim) {
    return Error(errc::invalid_argument, "query has " + std::to_string(q.size()) +
                                             " dimensions, the collection " +
                                             std::to_string(options_.dim));
  }
  if (!AllFinite(q)) return Error(errc::invalid_argument, "query holds NaN or infinity");
  if (k == 0) return std::vector<QdrantHit>{};
  if (Status st = impl_->EnsureChecked(); !st) return st.error();
  JsonWriter w;
  w.BeginObject().Key("query").FloatArray(q).Key("limit").Uint(k).Key("with_payload").Bool(true);
  if (!filter_json.empty()) {
    const json filter = json::parse(filter_json, nullptr, false);
    if (!filter.is_object()) {
      return Error(errc::invalid_argument, "Qdrant filter is not a JSON object: " + filter_json);
    }
    w.Key("filter").Raw(filter.dump());
  }
  w.EndObject();
  const std::string body = w.Take();
  const std::string path = impl_->collection_path + "/points/query";
  auto a = impl_->Request("POST", path, &body);
  if (!a) return a.error();
  if (a->status != 200) return ErrorFor(*a, "POST " + path);
  const json doc = json::parse(a->body, nullptr, false);
  const json* points = nullptr;
  if (doc.is_object() && doc.contains("result") && doc["result"].is_object() &&
      doc["result"].contains("points") && doc["result"]["points"].is_array()) {
    points = &doc["result"]["points"];
  }
  if (points == nullptr) {
    return Error(errc::internal, "Qdrant POST " + path + ": no result.points in the answer");
  }
  std::vector<QdrantHit> hits;
  hits.reserve(points->size());
  for (const json& p : *points) {
    if (!p.is_object() || !p.contains("id") || !p.contains("score") || !p["score"].is_number()) {
      return Error(errc::internal, "Qdrant POST " + path + ": a point without id or score");
    }
    QdrantHit h;
    const json& id = p["id"];
    h.id = id.is_string() ? id.get<std::string>() : id.dump();
    h.score = p["score"].get<float>();
    const auto payload = p.find("payload");
    if (payload != p.end() && payload->is_object()) {
      const auto src = payload->find("source_id");
      if (src != payload->end() && src->is_string()) h.source_id = src->get<std::string>();
      h.payload_json = payload->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      h.payload_json = "{}";
    }
    hits.push_back(std::move(h));
  }
  return hits;
}

Result<std::string> QdrantSink::FilterToQdrant(
    const std::vector<std::pair<std::string, std::string>>& equals) {
  if (equals.empty()) return std::string();
  json must = json::array();
  for (const auto& [path, literal] : equals) {
    const std::string key = path.rfind("metadata.", 0) == 0 ? path.substr(9) : path;
    if (key.empty()) return Error(errc::invalid_argument, "empty key in filter '" + path + "'");
    const json value = json::parse(literal, nullptr, false);
    if (value.is_discarded()) {
      return Error(errc::invalid_argument, "filter value of '" + path + "' is not JSON");
    }
    json cond;
    if (value.is_null()) {
      cond = {{"is_null", {{"key", key}}}};
    } else if (value.is_string() || value.is_boolean() || value.is_number_integer()) {
      // number_integer covers unsigned values too; Qdrant's match is int64.
      if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX}) {
        const double x = value.get<double>();
        cond = {{"key", key}, {"range", {{"gte", x}, {"lte", x}}}};
      } else {
        cond = {{"key", key}, {"match", {{"value", value}}}};
      }
    } else if (value.is_number_float()) {
      // Qdrant matches only strings, integers and booleans.
      const double x = value.get<double>();
      cond = {{"key", key}, {"range", {{"gte", x}, {"lte", x}}}};
    } else {
      return Error(errc::invalid_argument,
                   "filter value of '" + path + "' must be a string, number, boolean or null");
    }
    must.push_back(std::move(cond));
  }
  return json{{"must", std::move(must)}}.dump();
}

}  // namespace embedstream::sinks
