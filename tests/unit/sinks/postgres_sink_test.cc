// PostgresSink against a real PostgreSQL 16 + pgvector (scripts/pg.sh, started
// by the CTest fixture pg_sink; DATABASE_* name it). No mocks. Each test uses
// its own tables and drops them first, so reruns on a kept server work.

#include "sinks/postgres_sink.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/uuid.h"

namespace embedstream::sinks {
namespace {

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

// A second connection for checks, independent of the sink under test.
class Admin {
 public:
  Admin() {
    auto o = PostgresSinkOptions::FromEnv();
    const std::string port = std::to_string(o.port);
    const char* keys[] = {"host", "port", "dbname", "user", "password", nullptr};
    const char* values[] = {o.host.c_str(), port.c_str(),       o.dbname.c_str(),
                            o.user.c_str(), o.password.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn_) == CONNECTION_OK) {
      PQclear(PQexec(conn_, "SET client_min_messages = warning"));
    }
  }
  ~Admin() { PQfinish(conn_); }
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(conn_); }

  // The first column of the first row ("" when no row); fails the test on error.
  std::string Value(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    std::string out;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    } else if (st != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    }
    PQclear(r);
    return out;
  }

  void DropTables(const std::string& prefix) {
    Value("DROP TABLE IF EXISTS " + prefix + "_embeddings, " + prefix + "_embeddings_chunks, " +
          prefix + "_messages CASCADE");
  }

 private:
  PGconn* conn_ = nullptr;
};

class PostgresSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(admin_.ok()) << "no PostgreSQL (run through ctest, fixture pg_sink, or set "
                                "DATABASE_*): "
                             << admin_.error();
  }

  // Options for tables <prefix>_messages / <prefix>_embeddings, dropped first.
  PostgresSinkOptions Fresh(const std::string& prefix, size_t dim) {
    admin_.DropTables(prefix);
    auto o = PostgresSinkOptions::FromEnv();
    o.text_table = prefix + "_messages";
    o.embeddings_table = prefix + "_embeddings";
    o.dim = dim;
    o.model_name = "test-model";
    return o;
  }

  std::unique_ptr<PostgresSink> MustConnect(const PostgresSinkOptions& o) {
    auto s = PostgresSink::Connect(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().ToString());
    return s.ok() ? std::move(*s) : nullptr;
  }

  static std::vector<PgRow> Rows(size_t n, size_t dim, uint32_t seed, const std::string& tag) {
    std::mt19937 rng(seed);
    std::vector<PgRow> rows;
    for (size_t i = 0; i < n; ++i) {
      rows.push_back({tag + "-" + std::to_string(i), "message " + std::to_string(i),
                      "{\"i\":" + std::to_string(i) + "}", RandomUnit(dim, rng)});
    }
    return rows;
  }

  Admin admin_;
};

TEST_F(PostgresSinkTest, CreatesSchemaOnEmptyDatabase) {
  admin_.Value(
      "DROP TABLE IF EXISTS message_embeddings, message_embeddings_chunks, text_messages CASCADE");
  auto o = PostgresSinkOptions::FromEnv();
  o.dim = 384;
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  EXPECT_EQ(admin_.Value("SELECT extname FROM pg_extension WHERE extname = 'vector'"), "vector");
  EXPECT_EQ(admin_.Value("SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY "
                         "ordinal_position) FROM information_schema.columns WHERE table_name = "
                         "'text_messages'"),
            "id:uuid,message:text,created_at:timestamp with time zone,processed_at:timestamp "
            "with time zone,metadata:jsonb");
  EXPECT_EQ(admin_.Value("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                         "attrelid = 'message_embeddings'::regclass AND attname = 'embedding'"),
            "vector(384)");
  EXPECT_EQ(admin_.Value("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                         "information_schema.columns WHERE table_name = 'message_embeddings'"),
            "id,embedding,model_name,metadata,created_at,text_md5,chunk_count");
  const std::string hnsw_count =
      "SELECT count(*) FROM pg_indexes WHERE tablename = 'message_embeddings' AND indexdef "
      "LIKE '%USING hnsw (embedding vector_cosine_ops)%'";
  EXPECT_EQ(admin_.Value(hnsw_count), "1");
  // Connecting again is a no-op: same schema, still one index.
  sink.reset();
  ASSERT_TRUE(MustConnect(o));
  EXPECT_EQ(admin_.Value(hnsw_count), "1");
}

TEST_F(PostgresSinkTest, BatchedUpsertIsIdempotentAndUpdatesChangedText) {
  auto o = Fresh("pgst_upsert", 384);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  auto rows = Rows(1000, o.dim, 1, "msg");
  size_t written = 0;
  for (size_t i = 0; i < rows.size(); i += 128) {
    auto n = sink->Upsert(std::span(rows).subspan(i, std::min<size_t>(128, rows.size() - i)));
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    written += *n;
  }
  EXPECT_EQ(written, 2000u);  // 1,000 rows in each table
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_upsert_messages"), "1000");
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_upsert_embeddings"), "1000");
  const std::string versions =
      "SELECT md5(string_agg(m.xmin::text || '/' || e.xmin::text, ',' ORDER BY m.id)) FROM "
      "pgst_upsert_messages m JOIN pgst_upsert_embeddings e USING (id)";
  const std::string before = admin_.Value(versions);

  // Replay: nothing changes, no row version is written.
  for (size_t i = 0; i < rows.size(); i += 256) {
    auto n = sink->Upsert(std::span(rows).subspan(i, std::min<size_t>(256, rows.size() - i)));
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    EXPECT_EQ(*n, 0u);
  }
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_upsert_embeddings"), "1000");
  EXPECT_EQ(admin_.Value(versions), before);

  // Changed text: the text rows and the embedding rows' text_md5 (the
  // embedding row records which text it embeds) change; nothing else.
  std::vector<PgRow> changed(rows.begin(), rows.begin() + 10);
  for (auto& r : changed) r.text += " (edited)";
  auto n = sink->Upsert(changed);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(*n, 20u);
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_upsert_messages m JOIN pgst_upsert_embeddings "
                         "e USING (id) WHERE e.text_md5 = md5(m.message)"),
            "1000");
  EXPECT_EQ(admin_.Value("SELECT message FROM pgst_upsert_messages WHERE id = $1",
                         {PostgresSink::StoredId("msg-3")}),
            "message 3 (edited)");
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_upsert_messages WHERE message LIKE "
                         "'%(edited)'"),
            "10");

  // The same id twice in one batch: the last one wins.
  std::vector<PgRow> dup = {rows[0], rows[0]};
  dup[0].text = "first";
  dup[1].text = "second";
  n = sink->Upsert(dup);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(admin_.Value("SELECT message FROM pgst_upsert_messages WHERE id = $1",
                         {PostgresSink::StoredId("msg-0")}),
            "second");
  EXPECT_EQ(admin_.Value("SELECT model_name FROM pgst_upsert_embeddings LIMIT 1"), "test-model");
}

TEST_F(PostgresSinkTest, SearchReturnsPlantedNearestFirst) {
  auto o = Fresh("pgst_search", 32);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  auto rows = Rows(500, o.dim, 2, "noise");
  std::mt19937 rng(3);
  std::vector<float> planted = RandomUnit(o.dim, rng);
  rows.push_back({"planted", "the planted one", "{\"kind\":\"planted\"}", planted});
  ASSERT_TRUE(sink->Upsert(rows).ok());

  std::vector<float> q = planted;
  for (float& x : q) x += 0.01f * std::normal_distribution<float>(0, 1)(rng);
  auto hits = sink->Search(q, 5);
  ASSERT_TRUE(hits.ok()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 5u);
  EXPECT_EQ((*hits)[0].id, PostgresSink::StoredId("planted"));
  EXPECT_EQ((*hits)[0].source_id, "planted");
  EXPECT_EQ((*hits)[0].text, "the planted one");
  EXPECT_GT((*hits)[0].score, 0.99f);
  EXPECT_EQ(nlohmann::json::parse((*hits)[0].metadata_json)["kind"], "planted");
  for (size_t i = 1; i < hits->size(); ++i) EXPECT_LE((*hits)[i].score, (*hits)[i - 1].score);

  auto many = sink->Search(q, 100);  // past hnsw.ef_search's default of 40
  ASSERT_TRUE(many.ok()) << many.error().ToString();
  EXPECT_EQ(many->size(), 100u);
  auto bad = sink->Search(std::vector<float>(3, 1.0f), 5);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, errc::invalid_argument);
}

TEST_F(PostgresSinkTest, OtherDimensionIsClearStartupError) {
  auto o = Fresh("pgst_dim", 8);
  ASSERT_TRUE(MustConnect(o));
  o.dim = 16;
  auto second = PostgresSink::Connect(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, errc::invalid_argument);
  const std::string& msg = second.error().message;
  EXPECT_NE(msg.find("pgst_dim_embeddings"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vector(8)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16"), std::string::npos) << msg;
  // The table is untouched.
  EXPECT_EQ(admin_.Value("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                         "attrelid = 'pgst_dim_embeddings'::regclass AND attname = 'embedding'"),
            "vector(8)");
}

TEST_F(PostgresSinkTest, HostileTextAndMetadataStoredVerbatim) {
  auto o = Fresh("pgst_hostile", 4);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  const std::vector<std::string> texts = {
      "'); DROP TABLE pgst_hostile_messages; --",
      "quotes ' '' \" `backtick` $1 $$dollar$$",
      "back\\slash \\N \\\\ \\. end",
      "tab\there\nnew line\r\ncrlf",
      "unicode: naïve café 日本語 🙂 \u2028 \u00a0",
      "\\.",
  };
  std::vector<PgRow> rows;
  for (size_t i = 0; i < texts.size(); ++i) {
    nlohmann::json meta = {{"text", texts[i]}, {"n", i}};
    rows.push_back({"id'); DROP TABLE pgst_hostile_embeddings; -- " + std::to_string(i),
                    texts[i],
                    meta.dump(),
                    {1.0f, static_cast<float>(i), 0.5f, -0.25f}});
  }
  auto n = sink->Upsert(rows);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_hostile_messages"),
            std::to_string(texts.size()));
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string id = PostgresSink::StoredId(rows[i].id);
    EXPECT_EQ(admin_.Value("SELECT message FROM pgst_hostile_messages WHERE id = $1", {id}),
              texts[i]);
    EXPECT_EQ(
        admin_.Value("SELECT metadata->>'text' FROM pgst_hostile_embeddings WHERE id = $1", {id}),
        texts[i]);
    EXPECT_EQ(admin_.Value(
                  "SELECT metadata->>'source_id' FROM pgst_hostile_embeddings WHERE id = $1", {id}),
              rows[i].id);
  }
  auto hits = sink->Search({1.0f, 5.0f, 0.5f, -0.25f}, 1);
  ASSERT_TRUE(hits.ok()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].text, texts[5]);
}

TEST_F(PostgresSinkTest, NonUuidIdsMapToStableUuidV5AndKeepSourceId) {
  const std::string kafka_id = "orders/3/1042";
  EXPECT_EQ(PostgresSink::StoredId(kafka_id), FormatUuid(UuidV5(EmbedstreamNamespace(), kafka_id)));
  EXPECT_EQ(PostgresSink::StoredId(kafka_id), PostgresSink::StoredId(kafka_id));
  bool is_uuid = true;
  PostgresSink::StoredId(kafka_id, &is_uuid);
  EXPECT_FALSE(is_uuid);
  const std::string uuid = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
  EXPECT_EQ(PostgresSink::StoredId(uuid, &is_uuid), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  EXPECT_TRUE(is_uuid);

  auto o = Fresh("pgst_ids", 4);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  std::vector<PgRow> rows = {
      {kafka_id, "from kafka", "{\"a\":1}", {1, 0, 0, 0}},
      {uuid, "has a uuid", "", {0, 1, 0, 0}},
      {"plain", "no metadata", "", {0, 0, 1, 0}},
  };
  ASSERT_TRUE(sink->Upsert(rows).ok());
  const std::string kid = PostgresSink::StoredId(kafka_id);
  EXPECT_EQ(admin_.Value("SELECT metadata::text FROM pgst_ids_embeddings WHERE id = $1", {kid}),
            "{\"a\": 1, \"source_id\": \"orders/3/1042\"}");
  EXPECT_EQ(admin_.Value("SELECT coalesce(metadata::text, 'NULL') FROM pgst_ids_embeddings "
                         "WHERE id = $1",
                         {"3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
            "NULL");
  EXPECT_EQ(admin_.Value("SELECT metadata->>'source_id' FROM pgst_ids_embeddings WHERE id = $1",
                         {PostgresSink::StoredId("plain")}),
            "plain");
  // A replay with the same ids lands on the same rows.
  auto n = sink->Upsert(rows);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_ids_embeddings"), "3");
}

TEST_F(PostgresSinkTest, BadRowsAreInvalidArgumentAndSinkStaysUsable) {
  auto o = Fresh("pgst_bad", 4);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  std::vector<PgRow> wrong_dim = {{"a", "t", "", {1, 2, 3}}};
  auto r = sink->Upsert(wrong_dim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  std::vector<PgRow> nan = {{"a", "t", "", {1, 2, 3, std::nanf("")}}};
  r = sink->Upsert(nan);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  // Refused by the server: the message is the server's, the batch is rolled back.
  std::vector<PgRow> bad_json = {{"ok", "t", "", {1, 0, 0, 0}},
                                 {"b", "t", "{not json", {1, 2, 3, 4}}};
  r = sink->Upsert(bad_json);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_NE(r.error().message.find("json"), std::string::npos) << r.error().message;
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_bad_messages"), "0");
  auto good = sink->Upsert(std::span(bad_json).first(1));
  ASSERT_TRUE(good.ok()) << good.error().ToString();
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_bad_messages"), "1");
}

TEST_F(PostgresSinkTest, ReconnectsAfterConnectionIsKilled) {
  auto o = Fresh("pgst_reconnect", 4);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  std::vector<PgRow> rows = {{"r1", "one", "", {1, 0, 0, 0}}};
  ASSERT_TRUE(sink->Upsert(rows).ok());
  const int pid = sink->backend_pid();
  EXPECT_EQ(admin_.Value("SELECT pg_terminate_backend($1)", {std::to_string(pid)}), "t");
  rows.push_back({"r2", "two", "", {0, 1, 0, 0}});
  auto n = sink->Upsert(rows);  // finds the connection broken, resets, retries
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_NE(sink->backend_pid(), pid);
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_reconnect_embeddings"), "2");
  auto hits = sink->Search({0, 1, 0, 0}, 1);
  ASSERT_TRUE(hits.ok()) << hits.error().ToString();
  EXPECT_EQ((*hits)[0].source_id, "r2");
}

TEST_F(PostgresSinkTest, UnreachableServerIsUnavailable) {
  auto o = PostgresSinkOptions::FromEnv();
  o.port = 1;  // nothing listens there
  o.connect_timeout_s = 2;
  auto s = PostgresSink::Connect(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, errc::unavailable);
  EXPECT_NE(s.error().message.find("127.0.0.1:1"), std::string::npos) << s.error().message;
}

TEST_F(PostgresSinkTest, Throughput384dBatch256) {
  auto o = Fresh("pgst_throughput", 384);
  auto sink = MustConnect(o);
  ASSERT_TRUE(sink);
  constexpr size_t kRows = 4096;
  constexpr size_t kBatch = 256;
  auto rows = Rows(kRows, o.dim, 4, "tp");
  auto run = [&](const char* what) {
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < rows.size(); i += kBatch) {
      auto n = sink->Upsert(std::span(rows).subspan(i, kBatch));
      ASSERT_TRUE(n.ok()) << n.error().ToString();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[throughput] %s: %zu rows of %zu-d in batches of %zu: %.2f s, %.0f rows/s\n", what,
                kRows, o.dim, kBatch, s, static_cast<double>(kRows) / s);
  };
  run("insert (HNSW index maintained)");
  run("replay (no change)");
  // The sink's own cost: new rows without the HNSW index (pgvector's index
  // insert dominates the first figure).
  admin_.Value("DROP INDEX pgst_throughput_embeddings_embedding_hnsw_idx");
  rows = Rows(kRows, o.dim, 5, "tp-noindex");
  run("insert without the HNSW index");
  EXPECT_EQ(admin_.Value("SELECT count(*) FROM pgst_throughput_embeddings"),
            std::to_string(2 * kRows));
  admin_.DropTables("pgst_throughput");
}

}  // namespace
}  // namespace embedstream::sinks
