#include "app/serve_config.h"

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace embedstream::app {
namespace {

class ServeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* k : {"KAFKA_BOOTSTRAP_SERVERS",
                          "KAFKA_GROUP_ID",
                          "KAFKA_INPUT_TOPICS",
                          "KAFKA_INPUT_TOPIC",
                          "KAFKA_OUTPUT_TOPIC",
                          "KAFKA_DLQ_TOPIC",
                          "PORT",
                          "EMBEDSTREAM_HTTP_PORT",
                          "EMBEDSTREAM_HTTP_HOST",
                          "DATABASE_HOST",
                          "DATABASE_PORT",
                          "DATABASE_NAME",
                          "DATABASE_USER",
                          "DATABASE_PASSWORD",
                          "QDRANT_URL",
                          "QDRANT_API_KEY",
                          "QDRANT_COLLECTION",
                          "EMBEDSTREAM_AUTH_TOKEN",
                          "EMBEDSTREAM_AUTH_READ_TOKEN",
                          "EMBEDSTREAM_HTTP_SINKS",
                          "EMBEDSTREAM_KAFKA_SINKS",
                          "EMBEDSTREAM_POSTGRES_SINKS",
                          "EMBEDSTREAM_INGEST_MODE",
                          "EMBEDSTREAM_EVENTS_BUS",
                          "REDIS_URL"}) {
      ::unsetenv(k);
    }
    dir_ = embedstream::testing::MakeTempDir("servecfg");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Yaml(const std::string& text) {
    const auto p = dir_ / "c.yaml";
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ServeConfigTest, DefaultsFollowTheSeeds) {
  auto c = LoadServeConfig({});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_FALSE(c->kafka.enabled());
  EXPECT_EQ(c->kafka.group_id, "embedstream");
  EXPECT_EQ(c->kafka.input_topics, std::vector<std::string>{"text-messages"});
  EXPECT_EQ(c->kafka.output_topic, "embeddings");
  EXPECT_EQ(c->kafka.DlqTopic(), "text-messages-dlq");
  EXPECT_EQ(c->http_port, 5000);
}

TEST_F(ServeConfigTest, FileThenEnvironmentThenFlags) {
  ServeFlags f;
  f.config_file = Yaml(
      "kafka:\n  bootstrap_servers: file:9092\n  group_id: g-file\n  input_topics: [a, b]\n"
      "  output_topic: out-file\nbatch:\n  max_tokens: 1024\n  max_wait_ms: 5\n"
      "http:\n  port: 7000\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->kafka.bootstrap_servers, "file:9092");
  EXPECT_EQ(c->kafka.input_topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c->kafka.DlqTopic(), "a-dlq");
  EXPECT_EQ(c->batch_max_tokens, 1024u);
  EXPECT_EQ(c->http_port, 7000);

  ::setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092", 1);
  ::setenv("KAFKA_INPUT_TOPICS", "x, y", 1);
  ::setenv("PORT", "7100", 1);
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kafka.bootstrap_servers, "env:9092");
  EXPECT_EQ(c->kafka.input_topics, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c->kafka.group_id, "g-file");
  EXPECT_EQ(c->http_port, 7100);

  f.kafka_brokers = "flag:9092";
  f.http_port = 7200;
  f.group_id = "g-flag";
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kafka.bootstrap_servers, "flag:9092");
  EXPECT_EQ(c->kafka.group_id, "g-flag");
  EXPECT_EQ(c->http_port, 7200);
}

TEST_F(ServeConfigTest, ClearErrors) {
  ServeFlags f;
  f.config_file = Yaml("kafka: [unclosed\n");
  EXPECT_EQ(LoadServeConfig(f).error().code, errc::invalid_argument);
  f.config_file = Yaml("kafka:\n  auto_offset_reset: sometimes\n");
  EXPECT_NE(LoadServeConfig(f).error().message.find("auto_offset_reset"), std::string::npos);
  f.config_file = Yaml("http:\n  port: 70000\n");
  EXPECT_FALSE(LoadServeConfig(f).ok());
  f.config_file = (dir_ / "missing.yaml").string();
  EXPECT_FALSE(LoadServeConfig(f).ok());
  ::setenv("PORT", "fifty", 1);
  auto bad_env = LoadServeConfig({});
  ASSERT_FALSE(bad_env.ok());
  EXPECT_NE(bad_env.error().message.find("PORT"), std::string::npos);
}

TEST_F(ServeConfigTest, SecretsAreMaskedInTheEffectiveConfig) {
  ServeFlags f;
  f.config_file = Yaml(
      "kafka:\n  bootstrap_servers: b:9092\n  properties:\n    sasl.password: hunter2\n"
      "    sasl.username: alice\n    ssl.key.password: s3cret\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  const std::string json = ServeConfigJson(*c);
  EXPECT_EQ(json.find("hunter2"), std::string::npos);
  EXPECT_EQ(json.find("s3cret"), std::string::npos);
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["kafka"]["properties"]["sasl.password"], "***");
  EXPECT_EQ(j["kafka"]["properties"]["sasl.username"], "***");  // every sasl.* setting
  EXPECT_EQ(j["kafka"]["dlq_topic"], "text-messages-dlq");
}

// Keys librdkafka marks sensitive without a secret-looking word in them, and
// credentials inside URLs.
TEST_F(ServeConfigTest, LibrdkafkaSensitiveKeysAndUrlUserinfoAreMasked) {
  ServeFlags f;
  f.config_file = Yaml(
      "kafka:\n  bootstrap_servers: 'SASL_SSL://bob:brokerpw@b1:9092,b2:9092'\n"
      "  properties:\n"
      "    sasl.oauthbearer.config: 'principal=admin extension_x=oauthsecret'\n"
      "    sasl.kerberos.keytab: /etc/keytab-location\n"
      "    ssl.keystore.location: /etc/ks-location\n"
      "    ssl.key.pem: PEMDATA\n"
      "    client.id: 'http://u:clientpw@x'\n"
      "    socket.timeout.ms: '5000'\n"
      "sinks:\n  qdrant:\n    url: 'https://admin:qdrantpw@qdrant.example:6333/'\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  const std::string json = ServeConfigJson(*c);
  for (const char* secret : {"brokerpw", "oauthsecret", "keytab-location", "ks-location", "PEMDATA",
                             "clientpw", "qdrantpw"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret << " shown in " << json;
  }
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["kafka"]["bootstrap_servers"], "SASL_SSL://***@b1:9092,b2:9092");
  EXPECT_EQ(j["kafka"]["properties"]["socket.timeout.ms"], "5000");
  EXPECT_EQ(j["kafka"]["properties"]["client.id"], "http://***@x");
  EXPECT_EQ(j["sinks"]["qdrant"]["url"], "https://***@qdrant.example:6333/");
}

TEST(MaskUrlUserinfo, OnlyTheUserinfoOfEachUrl) {
  EXPECT_EQ(MaskUrlUserinfo("http://h:1/p?q=a@b"), "http://h:1/p?q=a@b");
  EXPECT_EQ(MaskUrlUserinfo("http://u:p@h/x@y"), "http://***@h/x@y");
  EXPECT_EQ(MaskUrlUserinfo("a://u@h,b://v:w@k"), "a://***@h,b://***@k");
  EXPECT_EQ(MaskUrlUserinfo("no url here @ all"), "no url here @ all");
  EXPECT_EQ(MaskUrlUserinfo(""), "");
  EXPECT_EQ(MaskUrlUserinfo("x://"), "x://");
  EXPECT_TRUE(IsSensitiveKafkaProperty("SASL.PASSWORD"));
  EXPECT_TRUE(IsSensitiveKafkaProperty("ssl.keystore.password"));
  EXPECT_FALSE(IsSensitiveKafkaProperty("ssl.endpoint.identification.algorithm"));
  EXPECT_FALSE(IsSensitiveKafkaProperty("security.protocol"));
}

TEST_F(ServeConfigTest, HttpAuthSseAndStoreLimits) {
  ServeFlags f;
  f.config_file = Yaml(
      "http:\n  max_connections: 10\n  write_timeout_ms: 5000\n  max_response_bytes: 100000\n"
      "  cors_origins: ['https://app.example.com']\n"
      "auth:\n  token: t1\n  read_token: r1\n  public_metrics: true\n"
      "store:\n  max_queue_bytes: 2000000\n"
      "sse:\n  max_client_bytes: 100000\n  max_total_bytes: 1000000\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->http_max_connections, 10u);
  EXPECT_EQ(c->http_write_timeout_ms, 5000);
  EXPECT_EQ(c->http_max_response_bytes, 100000u);
  EXPECT_EQ(c->http_cors_origins, std::vector<std::string>{"https://app.example.com"});
  EXPECT_EQ(c->auth_read_token, "r1");
  EXPECT_TRUE(c->auth_public_metrics);
  EXPECT_EQ(c->store_max_queue_bytes, 2000000u);
  EXPECT_EQ(c->sse_max_client_bytes, 100000u);
  EXPECT_EQ(c->sse_max_total_bytes, 1000000u);
  const auto j = nlohmann::json::parse(ServeConfigJson(*c));
  EXPECT_EQ(j["auth"]["read_token"], "***");
  EXPECT_EQ(j["http"]["max_connections"], 10);

  const auto bad = [&](const std::string& yaml, const std::string& says) {
    ServeFlags g;
    g.config_file = Yaml(yaml);
    auto r = LoadServeConfig(g);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  };
  bad("auth:\n  read_token: r\n", "auth.read_token needs auth.token");
  bad("auth:\n  token: same\n  read_token: same\n", "must differ");
  bad("http:\n  cors_origins: [example.com]\n", "http.cors_origins");
  bad("http:\n  max_connections: 0\n", "http.max_connections");
  bad("store:\n  max_queue_bytes: 10\n", "store.max_queue_bytes");
  bad("sse:\n  max_client_bytes: 100000\n  max_total_bytes: 1000\n", "sse.max_");
}

TEST_F(ServeConfigTest, PostgresSectionsFileEnvFlagsAndChecks) {
  auto d = LoadServeConfig({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->postgres.connection.port, 5433);
  EXPECT_EQ(d->postgres.connection.dbname, "text_messages_db");
  EXPECT_EQ(d->postgres.sink_mode, "off");
  EXPECT_FALSE(d->postgres.source_enabled);
  EXPECT_EQ(d->search_backend, "embedded");

  ServeFlags f;
  f.config_file = Yaml(
      "kafka:\n  bootstrap_servers: b:9092\n"
      "postgres:\n  host: db.file\n  port: 6000\n  database: d\n  user: u\n"
      "  password: pw-file\n  text_table: tt\n  embeddings_table: ee\n"
      "sinks:\n  postgres:\n    mode: text\n"
      "sources:\n  postgres:\n    enabled: true\n    id_column: key\n    text_column: body\n"
      "    poll_interval_ms: 250\n"
      "search:\n  backend: postgres\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->postgres.connection.host, "db.file");
  EXPECT_EQ(c->postgres.connection.port, 6000);
  EXPECT_EQ(c->postgres.text_table, "tt");
  EXPECT_EQ(c->postgres.embeddings_table, "ee");
  EXPECT_EQ(c->postgres.sink_mode, "text");
  EXPECT_TRUE(c->postgres.source_enabled);
  EXPECT_EQ(c->postgres.id_column, "key");
  EXPECT_EQ(c->postgres.text_column, "body");
  EXPECT_EQ(c->postgres.poll_interval_ms, 250);
  EXPECT_EQ(c->search_backend, "postgres");
  const std::string json = ServeConfigJson(*c);
  EXPECT_EQ(json.find("pw-file"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(json)["sinks"]["postgres"]["mode"], "text");

  // Seed 001's variables over the file; flags over both.
  ::setenv("DATABASE_HOST", "db.env", 1);
  ::setenv("DATABASE_PORT", "6100", 1);
  f.pg_sink = "embeddings";
  f.search_backend = "embedded";
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->postgres.connection.host, "db.env");
  EXPECT_EQ(c->postgres.connection.port, 6100);
  EXPECT_EQ(c->postgres.connection.user, "u");
  EXPECT_EQ(c->postgres.sink_mode, "embeddings");
  EXPECT_EQ(c->search_backend, "embedded");

  // Clear errors.
  f.pg_sink = "vectors";
  EXPECT_NE(LoadServeConfig(f).error().message.find("sinks.postgres.mode"), std::string::npos);
  f = {};
  f.pg_sink = "text";  // no Kafka: nothing would feed the sink
  EXPECT_NE(LoadServeConfig(f).error().message.find("kafka"), std::string::npos);
  f = {};
  f.search_backend = "qdrant";
  EXPECT_NE(LoadServeConfig(f).error().message.find("search.backend"), std::string::npos);
  f.search_backend = "postgres";
  f.no_store = true;
  EXPECT_FALSE(LoadServeConfig(f).ok());
  // The source alone is something to run.
  f = {};
  f.no_store = true;
  f.pg_source = true;
  EXPECT_TRUE(LoadServeConfig(f).ok());
}

TEST_F(ServeConfigTest, EverySourceNamesItsSinksAndOlderKeysGiveTheDefaults) {
  // Defaults from the older keys.
  ServeFlags f;
  f.kafka_brokers = "127.0.0.1:9092";
  f.qdrant_url = "http://127.0.0.1:6333";
  f.pg_sink = "embeddings";
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->Sources(), (std::vector<std::string>{"http", "kafka"}));
  EXPECT_EQ(c->SinksOf("kafka"),
            (std::vector<std::string>{"store", "postgres", "qdrant", "kafka"}));
  EXPECT_EQ(c->SinksOf("http"), (std::vector<std::string>{"store"}));
  f.pg_sink = "text";
  f.qdrant_url.clear();
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SinksOf("kafka"), (std::vector<std::string>{"postgres"}));

  // The example: any source names any set of sinks.
  ServeFlags g;
  g.config_file = Yaml(
      "kafka: {bootstrap_servers: '127.0.0.1:9092'}\n"
      "sinks: {qdrant: {url: 'http://127.0.0.1:6333'}}\n"
      "sources:\n"
      "  http: {sinks: [store, qdrant]}\n"
      "  kafka: {topics: [a, b], sinks: [kafka, store, postgres]}\n"
      "  postgres: {table: my_texts, sinks: [postgres, qdrant]}\n");
  c = LoadServeConfig(g);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->Sources(), (std::vector<std::string>{"http", "kafka", "postgres"}));
  EXPECT_EQ(c->SinksOf("http"), (std::vector<std::string>{"store", "qdrant"}));
  EXPECT_EQ(c->SinksOf("kafka"), (std::vector<std::string>{"kafka", "store", "postgres"}));
  EXPECT_EQ(c->SinksOf("postgres"), (std::vector<std::string>{"postgres", "qdrant"}));
  EXPECT_EQ(c->kafka.input_topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c->postgres.text_table, "my_texts");
  EXPECT_TRUE(c->postgres.source_enabled);
  const auto shown = nlohmann::json::parse(ServeConfigJson(*c));
  EXPECT_EQ(shown["sources"]["http"]["sinks"], nlohmann::json({"store", "qdrant"}));
  EXPECT_EQ(shown["sources"]["postgres"]["sinks"], nlohmann::json({"postgres", "qdrant"}));

  // Environment, then the flag.
  ::setenv("EMBEDSTREAM_HTTP_SINKS", "store,jsonl", 1);
  ServeFlags h;
  h.config_file = Yaml("sinks: {jsonl: {path: /tmp/out.jsonl}}\n");
  c = LoadServeConfig(h);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SinksOf("http"), (std::vector<std::string>{"store", "jsonl"}));
  h.sinks = {"http=jsonl"};
  c = LoadServeConfig(h);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SinksOf("http"), (std::vector<std::string>{"jsonl"}));
  ::unsetenv("EMBEDSTREAM_HTTP_SINKS");
}

TEST_F(ServeConfigTest, ASinkListThatCannotRunIsAStartUpErrorThatSaysWhy) {
  auto error_of = [&](const std::string& yaml, std::vector<std::string> sinks = {}) {
    ServeFlags f;
    f.config_file = Yaml(yaml);
    f.sinks = std::move(sinks);
    auto c = LoadServeConfig(f);
    EXPECT_FALSE(c.ok()) << yaml;
    return c.ok() ? std::string() : c.error().message;
  };
  EXPECT_NE(error_of("sources: {http: {sinks: [store, elastic]}}\n").find("unknown sink 'elastic'"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {http: {sinks: [qdrant]}}\n").find("sinks.qdrant.url"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {http: {sinks: [kafka]}}\n").find("kafka.bootstrap_servers"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {http: {sinks: [store, store]}}\n").find("named twice"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {http: {sinks: []}}\n").find("at least one sink"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {kafka: {sinks: [store]}}\n").find("does not run"),
            std::string::npos);
  EXPECT_NE(error_of("sources: {ftp: {sinks: [store]}}\n").find("unknown source"),
            std::string::npos);
  EXPECT_NE(error_of("store: {enabled: false}\nsources: {postgres: {sinks: [store]}}\n")
                .find("store.enabled"),
            std::string::npos);
  EXPECT_NE(error_of("kafka: {bootstrap_servers: 'b:9092'}\nsinks: {postgres: {mode: text}}\n"
                     "sources: {kafka: {sinks: [postgres, store]}}\n")
                .find("only sink"),
            std::string::npos);
  EXPECT_NE(error_of("", {"http"}).find("SOURCE=SINK"), std::string::npos);
}

TEST_F(ServeConfigTest, MappingsQdrantAndBreaker) {
  ServeFlags f;
  f.config_file = Yaml(
      "kafka:\n  bootstrap_servers: b:9092\n  input_topics: [ecommerce-events, other]\n"
      "  mappings:\n    ecommerce-events:\n      id_field: event_id\n"
      "      text_template: \"{product.name}. {product.description}\"\n"
      "      payload_fields: [event_type, product.category]\n      timestamp_field: timestamp\n"
      "sinks:\n  qdrant:\n    url: http://q:6333\n    collection: c1\n    api_key: k-file\n"
      "    batch_size: 64\n"
      "pipeline:\n  breaker:\n    failure_threshold: 3\n    failure_rate: 0.25\n"
      "    open_ms: 1000\n    open_max_ms: 8000\n"
      "search:\n  backend: qdrant\n");
  auto c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->kafka.mappings.count("ecommerce-events"), 1u);
  const auto& m = c->kafka.mappings.at("ecommerce-events");
  EXPECT_EQ(m.id_field, "event_id");
  EXPECT_EQ(m.text_template, "{product.name}. {product.description}");
  EXPECT_EQ(m.payload_fields, (std::vector<std::string>{"event_type", "product.category"}));
  EXPECT_EQ(m.timestamp_field, "timestamp");
  EXPECT_EQ(c->qdrant.url, "http://q:6333");
  EXPECT_EQ(c->qdrant.collection, "c1");
  EXPECT_EQ(c->qdrant.batch_size, 64u);
  EXPECT_EQ(c->breaker.failure_threshold, 3);
  EXPECT_DOUBLE_EQ(c->breaker.failure_rate_threshold, 0.25);
  EXPECT_EQ(c->breaker.open_duration.count(), 1000);
  EXPECT_EQ(c->search_backend, "qdrant");
  const std::string json = ServeConfigJson(*c);
  EXPECT_EQ(json.find("k-file"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(json)["sinks"]["qdrant"]["url"], "http://q:6333");

  ::setenv("QDRANT_URL", "http://env:6333", 1);
  ::setenv("QDRANT_COLLECTION", "c-env", 1);
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->qdrant.url, "http://env:6333");
  EXPECT_EQ(c->qdrant.collection, "c-env");
  f.qdrant_url = "http://flag:6333";
  EXPECT_EQ(LoadServeConfig(f)->qdrant.url, "http://flag:6333");
}

TEST_F(ServeConfigTest, MappingQdrantAndBreakerErrorsNameTheSetting) {
  const auto error_of = [&](const std::string& yaml) {
    ServeFlags f;
    f.config_file = Yaml(yaml);
    auto c = LoadServeConfig(f);
    return c.ok() ? std::string("accepted") : c.error().message;
  };
  const std::string kafka = "kafka:\n  bootstrap_servers: b:9092\n  input_topics: [t]\n";
  EXPECT_NE(error_of(kafka + "  mappings:\n    t:\n      text_template: \"{unclosed\"\n")
                .find("kafka.mappings.t"),
            std::string::npos);
  EXPECT_NE(error_of(kafka + "  mappings:\n    nope:\n      text_template: \"{a}\"\n")
                .find("not an input topic"),
            std::string::npos);
  EXPECT_NE(error_of(kafka + "sinks:\n  qdrant:\n    url: q:6333\n").find("http://"),
            std::string::npos);
  EXPECT_NE(
      error_of(kafka + "pipeline:\n  breaker:\n    failure_rate: 2\n").find("pipeline.breaker"),
      std::string::npos);
  EXPECT_NE(error_of("search:\n  backend: qdrant\n").find("sinks.qdrant.url"), std::string::npos);
  EXPECT_NE(error_of(kafka + "sinks:\n  qdrant:\n    url: http://q\n  postgres:\n"
                             "    mode: text\n")
                .find("sinks.qdrant"),
            std::string::npos);
}

TEST_F(ServeConfigTest, YamlTextAndValidationOnTheirOwn) {
  ServeConfig c;
  Status st = ApplyServeConfigYaml("http:\n  port: 6001\nstore:\n  sync: normal\n", "inline", c);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(c.http_port, 6001);
  EXPECT_FALSE(c.store_sync_full);
  EXPECT_TRUE(ValidateServeConfig(c).ok());

  st = ApplyServeConfigYaml("store:\n  sync: sometimes\n", "inline", c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, errc::invalid_argument);
  EXPECT_EQ(st.error().message.rfind("inline: ", 0), 0u) << st.error().message;

  c.http_port = 70000;
  ASSERT_FALSE(ValidateServeConfig(c).ok());
  EXPECT_NE(ValidateServeConfig(c).error().message.find("http.port"), std::string::npos);
}

// Hostile nesting (tests/fuzz/fuzz_serve_config): yaml-cpp 0.7 refuses
// documents nested 2000 deep while parsing; an error, never a stack overflow.
TEST_F(ServeConfigTest, DeeplyNestedYamlIsAnError) {
  const std::string flow = std::string(100000, '[');
  const std::string closed = std::string(5000, '[') + std::string(5000, ']');
  const std::string maps = [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "{a: ";
    return s;
  }();
  const std::string block = [] {
    std::string s;
    for (int i = 0; i < 3000; ++i) s += std::string(static_cast<size_t>(i), ' ') + "k:\n";
    return s;
  }();
  for (const std::string* doc : {&flow, &closed, &maps, &block}) {
    ServeConfig c;
    const Status st = ApplyServeConfigYaml(*doc, "deep.yaml", c);
    ASSERT_FALSE(st.ok()) << doc->substr(0, 20);
    EXPECT_EQ(st.error().code, errc::invalid_argument);
  }
  ServeFlags f;
  f.config_file = Yaml(closed);
  EXPECT_FALSE(LoadServeConfig(f).ok());
}

TEST_F(ServeConfigTest, ChunkingForEverySourceAndPerSource) {
  ServeConfig c;
  EXPECT_EQ(c.ChunkingOf("kafka").on_overflow, pipeline::ChunkingOptions::Overflow::kChunk);
  EXPECT_EQ(c.ChunkingOf("http").max_tokens, 0u) << "0: the model's limit";
  Status st = ApplyServeConfigYaml(
      "chunking:\n  max_tokens: 128\n  overlap_tokens: 16\n  split: tokens\n"
      "sources:\n  http:\n    chunking:\n      on_overflow: reject\n",
      "inline", c);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(c.ChunkingOf("kafka").max_tokens, 128u);
  EXPECT_EQ(c.ChunkingOf("kafka").split, pipeline::ChunkingOptions::Split::kTokens);
  EXPECT_EQ(c.ChunkingOf("kafka").on_overflow, pipeline::ChunkingOptions::Overflow::kChunk);
  // The source's block starts from the top-level one.
  EXPECT_EQ(c.ChunkingOf("http").max_tokens, 128u);
  EXPECT_EQ(c.ChunkingOf("http").on_overflow, pipeline::ChunkingOptions::Overflow::kReject);
  EXPECT_NE(ServeConfigJson(c).find("\"on_overflow\":\"reject\""), std::string::npos);

  for (const char* bad : {"chunking:\n  on_overflow: drop\n", "chunking:\n  split: words\n",
                          "chunking:\n  max_tokens: 4\n", "chunking:\n  maxtokens: 100\n",
                          "chunking:\n  max_tokens: 64\n  overlap_tokens: 64\n"}) {
    ServeConfig d;
    st = ApplyServeConfigYaml(bad, "inline", d);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message.find("chunking."), std::string::npos) << st.error().message;
  }
}

}  // namespace
}  // namespace embedstream::app

namespace embedstream::app {
namespace {

TEST_F(ServeConfigTest, IngestAndEventsBusFileEnvFlagsAndChecks) {
  auto c = LoadServeConfig({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ingest.mode, "store");
  EXPECT_EQ(c->events.bus, "local");
  EXPECT_EQ(c->events.topic, "embedstream-events");
  EXPECT_EQ(c->events.redis_prefix, "embedstream:events");
  EXPECT_EQ(c->Sources(), std::vector<std::string>{"http"});

  ServeFlags f;
  f.config_file = Yaml(
      "kafka: {bootstrap_servers: 'k:9092'}\n"
      "ingest: {mode: kafka, topic: posts, timeout_ms: 2000}\n"
      "events: {bus: redis, redis_url: 'redis://:pw@r:6379/2', redis_prefix: 'x:y', topic: ev}\n");
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_TRUE(c->ingest.kafka());
  EXPECT_EQ(c->ingest.topic, "posts");
  EXPECT_EQ(c->ingest.timeout_ms, 2000);
  EXPECT_EQ(c->events.bus, "redis");
  EXPECT_EQ(c->events.redis_prefix, "x:y");
  EXPECT_EQ(c->events.topic, "ev");
  // ingest kafka: no http source (the POSTs go to the topic the kafka source reads).
  EXPECT_EQ(c->Sources(), std::vector<std::string>{"kafka"});
  const auto json = nlohmann::json::parse(ServeConfigJson(*c));
  EXPECT_EQ(json["events"]["redis_url"], "redis://***@r:6379/2");
  EXPECT_EQ(json["ingest"]["mode"], "kafka");

  ::setenv("EMBEDSTREAM_EVENTS_BUS", "kafka", 1);
  ::setenv("REDIS_URL", "redis://env:1", 1);
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events.bus, "kafka");
  EXPECT_EQ(c->events.redis_url, "redis://env:1");
  f.events_bus = "local";
  f.ingest_mode = "store";
  f.redis_url = "redis://flag:2";
  c = LoadServeConfig(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events.bus, "local");
  EXPECT_FALSE(c->ingest.kafka());
  EXPECT_EQ(c->events.redis_url, "redis://flag:2");
  ::unsetenv("EMBEDSTREAM_EVENTS_BUS");
  ::unsetenv("REDIS_URL");

  const auto error_of = [&](const std::string& yaml) {
    ServeFlags g;
    g.config_file = Yaml(yaml);
    auto r = LoadServeConfig(g);
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(error_of("ingest: {mode: queue}").find("ingest.mode must be store or kafka"),
            std::string::npos);
  EXPECT_NE(error_of("ingest: {mode: kafka}").find("set kafka.bootstrap_servers"),
            std::string::npos);
  EXPECT_NE(error_of("events: {bus: nats}").find("events.bus must be local, kafka or redis"),
            std::string::npos);
  EXPECT_NE(error_of("events: {bus: kafka}").find("events.bus kafka needs"), std::string::npos);
  EXPECT_NE(error_of("events: {bus: redis}").find("needs events.redis_url"), std::string::npos);
  EXPECT_NE(
      error_of("events: {bus: redis, redis_url: 'http://x'}").find("must start with redis://"),
      std::string::npos);
  EXPECT_NE(
      error_of("kafka: {bootstrap_servers: k}\ningest: {mode: kafka}\nstore: {enabled: false}")
          .find("needs store.enabled"),
      std::string::npos);
}

}  // namespace
}  // namespace embedstream::app
