// QdrantSink against tests/e2e/qdrant_server.py (an in-memory Qdrant REST
// subset that checks every request and response against
// tests/fixtures/qdrant/openapi-master.json), started by the CTest fixture qdrant_sink:
// QDRANT_TEST_URL (no key) and QDRANT_TEST_AUTH_URL (QDRANT_TEST_API_KEY
// required). Each test starts from an empty server (/__control/reset) and
// ends by asserting that the server saw no schema error.

#include "sinks/qdrant_sink.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/uuid.h"

namespace embedstream::sinks {
namespace {

using json = nlohmann::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// One HTTP call (the control API, or a raw Qdrant call); status 0 on failure.
std::pair<long, std::string> Http(const std::string& method, const std::string& url,
                                  const std::string& body = {}) {
  CURL* c = curl_easy_init();
  std::string out;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!body.empty()) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return {status, out};
}

json Control(const std::string& base, const std::string& method, const std::string& op,
             const json& body = nullptr) {
  auto [status, text] = Http(method, base + "/__control/" + op, body.is_null() ? "" : body.dump());
  EXPECT_EQ(status, 200) << method << " /__control/" << op << ": " << text;
  json doc = json::parse(text, nullptr, false);
  return doc.is_discarded() ? json() : doc;
}

std::vector<float> RandomUnit(size_t dim, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  float norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += x * x;
  }
  norm = std::sqrt(norm);
  for (float& x : v) x /= norm;
  return v;
}

constexpr size_t kDim = 16;

// prefix + n (not `"x" + std::to_string(n)`: GCC 12 -Wrestrict false positive).
std::string Name(const char* prefix, size_t n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

class QdrantSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = Env("QDRANT_TEST_URL");
    if (url_.empty()) GTEST_SKIP() << "QDRANT_TEST_URL not set (run through ctest -L qdrant)";
    Control(url_, "POST", "reset", {{"data", true}});
  }
  void TearDown() override {
    if (url_.empty()) return;
    // Every request the sink sent (and every answer) matched openapi.json.
    json stats = Control(url_, "GET", "stats");
    EXPECT_TRUE(stats.contains("schema_errors"));
    EXPECT_EQ(stats["schema_errors"], json::array()) << stats["schema_errors"].dump(2);
    Control(url_, "POST", "reset", {{"data", false}});
  }

  QdrantSinkOptions Options(size_t dim = kDim) const {
    QdrantSinkOptions o;
    o.url = url_;
    o.dim = dim;
    o.timeout_ms = 5000;
    return o;
  }
  std::unique_ptr<QdrantSink> Open(const QdrantSinkOptions& o) {
    auto sink = QdrantSink::Connect(o);
    EXPECT_TRUE(sink.ok()) << (sink.ok() ? "" : sink.error().ToString());
    return sink.ok() ? std::move(*sink) : nullptr;
  }
  // {point id: {"payload": ..., "vector": ...}} as the server holds them.
  json Points(const std::string& collection = "ecommerce_embeddings", bool vectors = false) {
    return Control(url_, "GET", "points/" + collection + (vectors ? "" : "?vectors=0"))["points"];
  }
  // Requests the Qdrant API saw, e.g. Count("PUT", "/points?wait=true").
  // Requests of `method` whose path holds `path_part`, payload index
  // creation (PUT .../index, made at each connect) left out.
  size_t CountRequests(const std::string& method, const std::string& path_part) {
    size_t n = 0;
    const json log = Control(url_, "GET", "requests");
    for (const json& r : log["requests"]) {
      const std::string path = r["path"].get<std::string>();
      if (r["method"] == method && path.find(path_part) != std::string::npos &&
          path.find("/index") == std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  std::string url_;
};

TEST_F(QdrantSinkTest, CreatesTheCollection) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  json c = Control(url_, "GET", "stats")["collections"];
  ASSERT_TRUE(c.contains("ecommerce_embeddings")) << c.dump();
  EXPECT_EQ(c["ecommerce_embeddings"]["size"], kDim);
  EXPECT_EQ(c["ecommerce_embeddings"]["distance"], "Cosine");
  EXPECT_EQ(c["ecommerce_embeddings"]["points"], 0);
}

TEST_F(QdrantSinkTest, SecondConnectIsANoOp) {
  ASSERT_NE(Open(Options()), nullptr);
  ASSERT_NE(Open(Options()), nullptr);
  EXPECT_EQ(CountRequests("PUT", "/collections/ecommerce_embeddings"), 1u);
  EXPECT_EQ(CountRequests("GET", "/collections/ecommerce_embeddings"), 2u);
}

TEST_F(QdrantSinkTest, RefusesACollectionOfAnotherSizeOrDistance) {
  ASSERT_NE(Open(Options(kDim)), nullptr);
  auto other = QdrantSink::Connect(Options(8));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, errc::invalid_argument);
  EXPECT_NE(other.error().message.find("size 16"), std::string::npos) << other.error().message;
  EXPECT_NE(other.error().message.find("size 8"), std::string::npos) << other.error().message;

  QdrantSinkOptions dot = Options(kDim);
  dot.distance = "Dot";
  auto d = QdrantSink::Connect(dot);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, errc::invalid_argument);
  EXPECT_NE(d.error().message.find("Cosine"), std::string::npos) << d.error().message;
  EXPECT_NE(d.error().message.find("Dot"), std::string::npos) << d.error().message;
  EXPECT_EQ(CountRequests("PUT", "/collections/"), 1u);  // nothing changed
}

TEST_F(QdrantSinkTest, RefusesBadOptions) {
  QdrantSinkOptions o = Options();
  o.dim = 0;
  EXPECT_EQ(QdrantSink::Connect(o).error().code, errc::invalid_argument);
  o = Options();
  o.url = "127.0.0.1:6333";
  EXPECT_EQ(QdrantSink::Connect(o).error().code, errc::invalid_argument);
}

TEST_F(QdrantSinkTest, ConnectsWhileQdrantIsDownAndCreatesTheCollectionWhenItAnswers) {
  // Nothing listens: an outage, not a configuration error. Connect succeeds;
  // writes and searches fail as unavailable until Qdrant answers.
  QdrantSinkOptions o = Options();
  o.url = "http://127.0.0.1:1";
  auto down = QdrantSink::Connect(o);
  ASSERT_TRUE(down.ok()) << down.error().ToString();
  std::mt19937 rng(3);
  std::vector<QdrantPoint> points = {{"p0", RandomUnit(kDim, rng), ""}};
  auto out = (*down)->Upsert(points);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, errc::unavailable) << out.error().message;
  auto hits = (*down)->Search(points[0].vector, 1);
  ASSERT_FALSE(hits.ok());
  EXPECT_EQ(hits.error().code, errc::unavailable) << hits.error().message;

  // Qdrant answers 503 at Connect, then works: the first Upsert creates the
  // collection and writes.
  Control(url_, "POST", "fail_next", {{"n", 1}, {"status", 503}});
  auto sink = QdrantSink::Connect(Options());
  ASSERT_TRUE(sink.ok()) << sink.error().ToString();
  EXPECT_FALSE(Control(url_, "GET", "stats")["collections"].contains("ecommerce_embeddings"));
  auto stored = (*sink)->Upsert(points);
  ASSERT_TRUE(stored.ok()) << stored.error().ToString();
  EXPECT_EQ(stored->stored, 1u);
  EXPECT_EQ(Points().size(), 1u);
}

TEST_F(QdrantSinkTest, UpsertsInBatchesWithUuidIdsAndPayload) {
  QdrantSinkOptions o = Options();
  o.batch_size = 128;
  auto sink = Open(o);
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(7);
  std::vector<QdrantPoint> points;
  std::vector<std::string> expect_ids;
  for (int i = 0; i < 1000; ++i) {
    QdrantPoint p;
    if (i % 2 == 0) {
      // A UUID is kept, lower-cased.
      std::string u = FormatUuid(UuidV5(EmbedstreamNamespace(), Name("u", i)));
      expect_ids.push_back(u);
      for (char& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      p.id = u;
    } else {
      p.id = Name("msg-", i);
      expect_ids.push_back(FormatUuid(UuidV5(EmbedstreamNamespace(), p.id)));
    }
    p.vector = RandomUnit(kDim, rng);
    p.payload_json = json{
        {"text", Name("text ", i)},
        {"product", {{"category", i % 3 == 0 ? "A" : "B"}}},
        {"n", i}}.dump();
    points.push_back(std::move(p));
  }
  auto out = sink->Upsert(points);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->stored, 1000u);
  EXPECT_TRUE(out->rejected.empty());
  EXPECT_EQ(CountRequests("PUT", "/points?wait=true"), 8u);  // ceil(1000 / 128)

  json stored = Points("ecommerce_embeddings", true);
  ASSERT_EQ(stored.size(), 1000u);
  for (size_t i = 0; i < points.size(); ++i) {
    ASSERT_TRUE(stored.contains(expect_ids[i])) << i << " " << expect_ids[i];
    const json& s = stored[expect_ids[i]];
    EXPECT_EQ(s["payload"]["text"], Name("text ", i));
    EXPECT_EQ(s["payload"]["n"], i);
    if (i % 2 == 0) {
      EXPECT_FALSE(s["payload"].contains("source_id"));
    } else {
      EXPECT_EQ(s["payload"]["source_id"], points[i].id);
    }
    // Floats travel in the shortest form that round-trips.
    ASSERT_EQ(s["vector"].size(), kDim);
    for (size_t d = 0; d < kDim; ++d) {
      ASSERT_EQ(static_cast<float>(s["vector"][d].get<double>()), points[i].vector[d]);
    }
  }
  EXPECT_EQ(QdrantSink::PointId("msg-1"), expect_ids[1]);
}

TEST_F(QdrantSinkTest, ReplayIsIdempotent) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(1);
  std::vector<QdrantPoint> points;
  for (int i = 0; i < 50; ++i) {
    points.push_back({Name("r", i), RandomUnit(kDim, rng), json{{"i", i}, {"price", 1.5}}.dump()});
  }
  ASSERT_TRUE(sink->Upsert(points).ok());
  json first = Points();
  auto again = sink->Upsert(points);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored, 50u);
  EXPECT_EQ(Points(), first);
  EXPECT_EQ(first.size(), 50u);
}

TEST_F(QdrantSinkTest, SearchReturnsNearestFirstAndFilters) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(3);
  std::vector<QdrantPoint> points;
  for (int i = 0; i < 60; ++i) {
    points.push_back({Name("s", i), RandomUnit(kDim, rng),
                      json{{"text", Name("t", i)},
                           {"product", {{"category", i % 2 == 0 ? "even" : "odd"}}},
                           {"price", i % 4 == 0 ? 9.5 : 1.25},
                           {"qty", i % 5}}
                          .dump()});
  }
  ASSERT_TRUE(sink->Upsert(points).ok());

  auto hits = sink->Search(points[7].vector, 5);
  ASSERT_TRUE(hits.ok()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 5u);
  EXPECT_EQ((*hits)[0].id, QdrantSink::PointId("s7"));
  EXPECT_EQ((*hits)[0].source_id, "s7");
  EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-5);
  for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score);
  EXPECT_EQ(json::parse((*hits)[0].payload_json)["text"], "t7");

  auto filter = QdrantSink::FilterToQdrant({{"metadata.product.category", "\"even\""}});
  ASSERT_TRUE(filter.ok());
  auto even = sink->Search(points[7].vector, 10, *filter);
  ASSERT_TRUE(even.ok()) << even.error().ToString();
  ASSERT_EQ(even->size(), 10u);
  for (const QdrantHit& h : *even) {
    EXPECT_EQ(json::parse(h.payload_json)["product"]["category"], "even") << h.payload_json;
    EXPECT_NE(h.source_id, "s7");
  }

  // A float literal becomes a range, an integer a match; together they AND.
  auto both = QdrantSink::FilterToQdrant({{"metadata.price", "9.5"}, {"qty", "0"}});
  ASSERT_TRUE(both.ok());
  auto hits2 = sink->Search(points[0].vector, 60, *both);
  ASSERT_TRUE(hits2.ok()) << hits2.error().ToString();
  EXPECT_EQ(hits2->size(), 3u);  // i % 20 == 0: 0, 20, 40
  for (const QdrantHit& h : *hits2) {
    json p = json::parse(h.payload_json);
    EXPECT_EQ(p["price"], 9.5);
    EXPECT_EQ(p["qty"], 0);
  }

  EXPECT_EQ(sink->Search(std::vector<float>(3, 0.5f), 5).error().code, errc::invalid_argument);
  EXPECT_EQ(sink->Search(points[0].vector, 5, "[1]").error().code, errc::invalid_argument);
}

TEST_F(QdrantSinkTest, UnavailableWhileQdrantFailsThenSucceeds) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(5);
  std::vector<QdrantPoint> points;
  for (int i = 0; i < 10; ++i) points.push_back({Name("f", i), RandomUnit(kDim, rng), ""});
  Control(url_, "POST", "fail", {{"status", 503}, {"for_s", 2}});
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto r = sink->Upsert(points);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("503"), std::string::npos) << r.error().message;
  EXPECT_EQ(sink->Search(points[0].vector, 3).error().code, errc::unavailable);
  EXPECT_EQ(Points().size(), 0u);
  std::this_thread::sleep_until(until + std::chrono::milliseconds(200));
  auto ok = sink->Upsert(points);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->stored, 10u);
  EXPECT_EQ(Points().size(), 10u);

  // 429 and a connection closed without an answer are retryable too.
  Control(url_, "POST", "fail_next", {{"n", 1}, {"status", 429}});
  EXPECT_EQ(sink->Upsert(points).error().code, errc::unavailable);
  Control(url_, "POST", "fail", {{"status", 0}, {"for_s", 1}});
  const auto until2 = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  EXPECT_EQ(sink->Upsert(points).error().code, errc::unavailable);
  std::this_thread::sleep_until(until2 + std::chrono::milliseconds(200));
  EXPECT_TRUE(sink->Upsert(points).ok());
}

TEST_F(QdrantSinkTest, RejectedPointsAreIsolatedByBisection) {
  QdrantSinkOptions o = Options();
  o.batch_size = 32;
  auto sink = Open(o);
  ASSERT_NE(sink, nullptr);
  Control(url_, "POST", "reject", {{"field", "product.category"}, {"value", "Bad"}});
  std::mt19937 rng(11);
  const std::set<size_t> bad = {5, 50, 51, 97};
  std::vector<QdrantPoint> points;
  for (size_t i = 0; i < 100; ++i) {
    points.push_back({Name("b", i), RandomUnit(kDim, rng),
                      json{{"product", {{"category", bad.count(i) ? "Bad" : "Good"}}}}.dump()});
  }
  auto out = sink->Upsert(points);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->stored, 96u);
  ASSERT_EQ(out->rejected.size(), bad.size());
  size_t k = 0;
  for (size_t i : bad) {
    EXPECT_EQ(out->rejected[k].index, i);
    EXPECT_NE(out->rejected[k].message.find("refused"), std::string::npos)
        << out->rejected[k].message;
    ++k;
  }
  json stored = Points();
  EXPECT_EQ(stored.size(), 96u);
  for (auto& [id, p] : stored.items()) EXPECT_EQ(p["payload"]["product"]["category"], "Good");
}

TEST_F(QdrantSinkTest, RefusesBadPointsLocally) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(13);
  std::vector<QdrantPoint> points;
  for (int i = 0; i < 6; ++i) points.push_back({Name("l", i), RandomUnit(kDim, rng), "{}"});
  points[1].vector[3] = std::numeric_limits<float>::quiet_NaN();
  points[2].vector.pop_back();
  points[3].payload_json = "{not json";
  points[4].payload_json = "[1,2]";
  points[5].id.clear();
  auto out = sink->Upsert(points);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->stored, 1u);
  ASSERT_EQ(out->rejected.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(out->rejected[i].index, i + 1);
  EXPECT_EQ(Points().size(), 1u);
  EXPECT_EQ(CountRequests("PUT", "/points?wait=true"), 1u);
}

TEST_F(QdrantSinkTest, RecreatesACollectionDeletedUnderneath) {
  auto sink = Open(Options());
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(17);
  std::vector<QdrantPoint> points = {{"d0", RandomUnit(kDim, rng), ""},
                                     {"d1", RandomUnit(kDim, rng), ""}};
  ASSERT_TRUE(sink->Upsert(points).ok());
  ASSERT_EQ(Http("DELETE", url_ + "/collections/ecommerce_embeddings").first, 200);
  auto out = sink->Upsert(points);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->stored, 2u);
  EXPECT_EQ(Points().size(), 2u);
}

TEST_F(QdrantSinkTest, ApiKey) {
  const std::string auth_url = Env("QDRANT_TEST_AUTH_URL");
  const std::string key = Env("QDRANT_TEST_API_KEY");
  if (auth_url.empty() || key.empty()) GTEST_SKIP() << "no QDRANT_TEST_AUTH_URL";
  Control(auth_url, "POST", "reset", {{"data", true}});
  QdrantSinkOptions o = Options();
  o.url = auth_url;
  auto none = QdrantSink::Connect(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, errc::invalid_argument);  // at start-up: a config error
  EXPECT_NE(none.error().message.find("401"), std::string::npos) << none.error().message;
  o.api_key = "wrong";
  EXPECT_EQ(QdrantSink::Connect(o).error().code, errc::invalid_argument);
  o.api_key = key;
  auto sink = Open(o);
  ASSERT_NE(sink, nullptr);
  std::mt19937 rng(19);
  std::vector<QdrantPoint> points = {{"k0", RandomUnit(kDim, rng), ""}};
  auto out = sink->Upsert(points);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->stored, 1u);
  auto hits = sink->Search(points[0].vector, 1);
  ASSERT_TRUE(hits.ok()) << hits.error().ToString();
  EXPECT_EQ(hits->size(), 1u);
  json stats = Control(auth_url, "GET", "stats");
  EXPECT_EQ(stats["schema_errors"], json::array()) << stats["schema_errors"].dump(2);
}

TEST(QdrantFilter, MapsEqualitiesToMustConditions) {
  auto f = QdrantSink::FilterToQdrant({{"metadata.product.category", "\"X\""},
                                       {"metadata.qty", "3"},
                                       {"in_stock", "true"},
                                       {"metadata.price", "9.99"},
                                       {"metadata.gone", "null"}});
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(json::parse(*f), json::parse(R"({"must":[
      {"key":"product.category","match":{"value":"X"}},
      {"key":"qty","match":{"value":3}},
      {"key":"in_stock","match":{"value":true}},
      {"key":"price","range":{"gte":9.99,"lte":9.99}},
      {"is_null":{"key":"gone"}}]})"));
  EXPECT_EQ(*QdrantSink::FilterToQdrant({}), "");
  EXPECT_EQ(QdrantSink::FilterToQdrant({{"a", "not json"}}).error().code, errc::invalid_argument);
  EXPECT_EQ(QdrantSink::FilterToQdrant({{"a", "[1]"}}).error().code, errc::invalid_argument);
  EXPECT_EQ(QdrantSink::FilterToQdrant({{"metadata.", "1"}}).error().code, errc::invalid_argument);
}

TEST(QdrantSinkOptions, FromEnv) {
  ::setenv("QDRANT_URL", "", 1);
  ::setenv("QDRANT_HOST", "qdrant.local", 1);
  ::setenv("QDRANT_PORT", "7000", 1);
  ::setenv("QDRANT_API_KEY", "k", 1);
  ::setenv("QDRANT_COLLECTION", "c1", 1);
  QdrantSinkOptions o = QdrantSinkOptions::FromEnv();
  EXPECT_EQ(o.url, "http://qdrant.local:7000");
  EXPECT_EQ(o.api_key, "k");
  EXPECT_EQ(o.collection, "c1");
  ::setenv("QDRANT_URL", "https://q.example:6333", 1);
  EXPECT_EQ(QdrantSinkOptions::FromEnv().url, "https://q.example:6333");
  for (const char* n :
       {"QDRANT_URL", "QDRANT_HOST", "QDRANT_PORT", "QDRANT_API_KEY", "QDRANT_COLLECTION"}) {
    ::unsetenv(n);
  }
  EXPECT_EQ(QdrantSinkOptions::FromEnv().url, "http://127.0.0.1:6333");
}

}  // namespace
}  // namespace embedstream::sinks
