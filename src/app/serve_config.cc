#include "app/serve_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "core/file_util.h"
#include "core/json_writer.h"

namespace embedstream::app {
namespace {

const char* Env(const char* key) {
  const char* v = std::getenv(key);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

Result<long> ParseLong(const char* what, const std::string& s) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || end == s.c_str() || *end != '\0') {
    return Error(errc::invalid_argument, std::string(what) + "='" + s + "' is not an integer");
  }
  return v;
}

// A chunking: block (serve_config.h) over `o`; unknown keys and values are errors.
Status ParseChunking(const YAML::Node& node, const std::string& where,
                     pipeline::ChunkingOptions& o) {
  if (!node.IsMap()) return Error(errc::invalid_argument, where + " must be a map");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "max_tokens") {
      o.max_tokens = v.as<size_t>();
      if (o.max_tokens != 0 && o.max_tokens < 8) {
        return Error(errc::invalid_argument, where + ".max_tokens must be 0 (the model's) or >= 8");
      }
    } else if (key == "overlap_tokens") {
      o.overlap_tokens = v.as<size_t>();
    } else if (key == "split") {
      const auto split = v.as<std::string>();
      if (split != "sentence" && split != "tokens") {
        return Error(errc::invalid_argument, where + ".split must be sentence or tokens");
      }
      o.split = split == "tokens" ? pipeline::ChunkingOptions::Split::kTokens
                                  : pipeline::ChunkingOptions::Split::kSentence;
    } else if (key == "on_overflow") {
      const auto mode = v.as<std::string>();
      if (mode == "chunk") {
        o.on_overflow = pipeline::ChunkingOptions::Overflow::kChunk;
      } else if (mode == "truncate") {
        o.on_overflow = pipeline::ChunkingOptions::Overflow::kTruncate;
      } else if (mode == "reject") {
        o.on_overflow = pipeline::ChunkingOptions::Overflow::kReject;
      } else {
        return Error(errc::invalid_argument,
                     where + ".on_overflow must be chunk, truncate or reject");
      }
    } else {
      return Error(
          errc::invalid_argument,
          where + "." + key + ": unknown (max_tokens, overlap_tokens, split, on_overflow)");
    }
  }
  if (o.max_tokens != 0 && o.overlap_tokens + 3 > o.max_tokens) {
    return Error(errc::invalid_argument, where + ".overlap_tokens must be below max_tokens - 2");
  }
  return {};
}

bool LooksSecret(std::string key) {
  std::transform(key.begin(), key.end(), key.begin(), ::tolower);
  for (const char* word : {"password", "secret", "token", "credential", "key"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Status ApplyServeConfigYaml(std::string_view yaml_text, const std::string& path, ServeConfig& c) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return Error(errc::invalid_argument, path + ": " + e.what());
  }
  try {
    if (auto k = root["kafka"]) {
      if (k["bootstrap_servers"])
        c.kafka.bootstrap_servers = k["bootstrap_servers"].as<std::string>();
      if (k["group_id"]) c.kafka.group_id = k["group_id"].as<std::string>();
      if (k["input_topics"]) {
        c.kafka.input_topics = k["input_topics"].IsSequence()
                                   ? k["input_topics"].as<std::vector<std::string>>()
                                   : SplitComma(k["input_topics"].as<std::string>());
      }
      if (k["output_topic"]) c.kafka.output_topic = k["output_topic"].as<std::string>();
      if (k["dlq_topic"]) c.kafka.dlq_topic = k["dlq_topic"].as<std::string>();
      if (k["auto_offset_reset"])
        c.kafka.auto_offset_reset = k["auto_offset_reset"].as<std::string>();
      if (auto props = k["properties"]) {
        for (const auto& kv : props) {
          c.kafka.properties[kv.first.as<std::string>()] = kv.second.as<std::string>();
        }
      }
      if (auto maps = k["mappings"]) {
        for (const auto& kv : maps) {
          pipeline::EventMapping m;
          const auto& v = kv.second;
          if (v["id_field"]) m.id_field = v["id_field"].as<std::string>();
          if (v["text_template"]) m.text_template = v["text_template"].as<std::string>();
          if (v["payload_fields"]) {
            m.payload_fields = v["payload_fields"].as<std::vector<std::string>>();
          }
          if (v["timestamp_field"]) m.timestamp_field = v["timestamp_field"].as<std::string>();
          c.kafka.mappings[kv.first.as<std::string>()] = std::move(m);
        }
      }
    }
    if (auto b = root["batch"]) {
      if (b["max_tokens"]) c.batch_max_tokens = b["max_tokens"].as<size_t>();
      if (b["max_wait_ms"]) c.batch_max_wait_ms = b["max_wait_ms"].as<int>();
      if (b["linger_ms"]) c.batch_linger_ms = b["linger_ms"].as<int>();
    }
    if (auto p = root["pipeline"]) {
      if (p["max_inflight"]) c.max_inflight = p["max_inflight"].as<size_t>();
      if (p["max_inflight_bytes"]) c.max_inflight_bytes = p["max_inflight_bytes"].as<size_t>();
      if (p["max_record_bytes"]) c.max_record_bytes = p["max_record_bytes"].as<size_t>();
      if (p["retry_base_ms"]) c.retry_base_ms = p["retry_base_ms"].as<int>();
      if (p["retry_max_ms"]) c.retry_max_ms = p["retry_max_ms"].as<int>();
      if (p["retry_attempts"]) c.retry_attempts = p["retry_attempts"].as<int>();
      if (auto b = p["breaker"]) {
        if (b["failure_threshold"]) c.breaker.failure_threshold = b["failure_threshold"].as<int>();
        if (b["failure_rate"]) c.breaker.failure_rate_threshold = b["failure_rate"].as<double>();
        if (b["open_ms"])
          c.breaker.open_duration = std::chrono::milliseconds(b["open_ms"].as<int>());
        if (b["open_max_ms"]) {
          c.breaker.open_duration_max = std::chrono::milliseconds(b["open_max_ms"].as<int>());
        }
      }
    }
    if (auto h = root["http"]) {
      if (h["host"]) c.http_host = h["host"].as<std::string>();
      if (h["port"]) c.http_port = h["port"].as<int>();
      if (h["max_body_bytes"]) c.http_max_body_bytes = h["max_body_bytes"].as<size_t>();
      if (h["max_document_bytes"]) {
        c.http_max_document_bytes = h["max_document_bytes"].as<size_t>();
      }
      if (h["max_connections"]) c.http_max_connections = h["max_connections"].as<size_t>();
      if (h["write_timeout_ms"]) c.http_write_timeout_ms = h["write_timeout_ms"].as<int>();
      if (h["max_response_bytes"]) {
        c.http_max_response_bytes = h["max_response_bytes"].as<size_t>();
      }
      if (h["cors_origins"]) {
        c.http_cors_origins = h["cors_origins"].as<std::vector<std::string>>();
      }
    }
    if (auto a = root["auth"]) {
      if (a["token"]) c.auth_token = a["token"].as<std::string>();
      if (a["read_token"]) c.auth_read_token = a["read_token"].as<std::string>();
      if (a["public_metrics"]) c.auth_public_metrics = a["public_metrics"].as<bool>();
    }
    if (auto st = root["store"]) {
      if (st["enabled"]) c.store_enabled = st["enabled"].as<bool>();
      if (st["dir"]) c.store_dir = st["dir"].as<std::string>();
      if (st["sync"]) {
        const auto mode = st["sync"].as<std::string>();
        if (mode != "full" && mode != "normal") {
          return Error(errc::invalid_argument, path + ": store.sync must be full or normal");
        }
        c.store_sync_full = mode == "full";
      }
      if (st["max_queue"]) c.store_max_queue = st["max_queue"].as<size_t>();
      if (st["max_queue_bytes"]) c.store_max_queue_bytes = st["max_queue_bytes"].as<size_t>();
    }
    if (auto in = root["ingest"]) {
      if (in["mode"]) c.ingest.mode = in["mode"].as<std::string>();
      if (in["topic"]) c.ingest.topic = in["topic"].as<std::string>();
      if (in["timeout_ms"]) c.ingest.timeout_ms = in["timeout_ms"].as<int>();
    }
    if (auto ev = root["events"]) {
      if (ev["bus"]) c.events.bus = ev["bus"].as<std::string>();
      if (ev["topic"]) c.events.topic = ev["topic"].as<std::string>();
      if (ev["redis_url"]) c.events.redis_url = ev["redis_url"].as<std::string>();
      if (ev["redis_prefix"]) c.events.redis_prefix = ev["redis_prefix"].as<std::string>();
    }
    if (auto e = root["sse"]) {
      if (e["ring"]) c.sse_ring = e["ring"].as<size_t>();
      if (e["heartbeat_ms"]) c.sse_heartbeat_ms = e["heartbeat_ms"].as<int>();
      if (e["max_client_bytes"]) c.sse_max_client_bytes = e["max_client_bytes"].as<size_t>();
      if (e["max_total_bytes"]) c.sse_max_total_bytes = e["max_total_bytes"].as<size_t>();
    }
    if (auto pg = root["postgres"]) {
      auto& conn = c.postgres.connection;
      if (pg["host"]) conn.host = pg["host"].as<std::string>();
      if (pg["port"]) conn.port = pg["port"].as<int>();
      if (pg["database"]) conn.dbname = pg["database"].as<std::string>();
      if (pg["user"]) conn.user = pg["user"].as<std::string>();
      if (pg["password"]) conn.password = pg["password"].as<std::string>();
      if (pg["text_table"]) c.postgres.text_table = pg["text_table"].as<std::string>();
      if (pg["embeddings_table"]) {
        c.postgres.embeddings_table = pg["embeddings_table"].as<std::string>();
      }
      if (pg["hnsw_m"]) c.postgres.hnsw_m = pg["hnsw_m"].as<int>();
      if (pg["hnsw_ef_construction"]) {
        c.postgres.hnsw_ef_construction = pg["hnsw_ef_construction"].as<int>();
      }
    }
    if (auto sink = root["sinks"]["postgres"]) {
      if (sink["mode"]) c.postgres.sink_mode = sink["mode"].as<std::string>();
    }
    if (auto q = root["sinks"]["qdrant"]) {
      if (q["url"]) c.qdrant.url = q["url"].as<std::string>();
      if (q["collection"]) c.qdrant.collection = q["collection"].as<std::string>();
      if (q["api_key"]) c.qdrant.api_key = q["api_key"].as<std::string>();
      if (q["batch_size"]) c.qdrant.batch_size = q["batch_size"].as<size_t>();
      if (q["timeout_ms"]) c.qdrant.timeout_ms = q["timeout_ms"].as<int>();
    }
    if (auto jl = root["sinks"]["jsonl"]) {
      if (jl["path"]) c.jsonl_path = jl["path"].as<std::string>();
    }
    if (auto ch = root["chunking"]) {
      if (auto st = ParseChunking(ch, path + ": chunking", c.chunking); !st) return st.error();
    }
    if (auto sources = root["sources"]) {
      if (!sources.IsMap()) return Error(errc::invalid_argument, path + ": sources must be a map");
      for (const auto& kv : sources) {
        const std::string name = kv.first.as<std::string>();
        if (std::find_if(std::begin(kSourceNames), std::end(kSourceNames),
                         [&](const char* n) { return name == n; }) == std::end(kSourceNames)) {
          return Error(errc::invalid_argument,
                       path + ": sources." + name + ": unknown source (http, kafka, postgres)");
        }
        if (auto ch = kv.second["chunking"]) {
          pipeline::ChunkingOptions o = c.chunking;
          if (auto st = ParseChunking(ch, path + ": sources." + name + ".chunking", o); !st) {
            return st.error();
          }
          c.source_chunking[name] = o;
        }
        if (auto list = kv.second["sinks"]) {
          c.source_sinks[name] = list.IsSequence() ? list.as<std::vector<std::string>>()
                                                   : SplitComma(list.as<std::string>());
          if (name == "postgres" && !kv.second["enabled"]) c.postgres.source_enabled = true;
        }
      }
    }
    if (auto src = root["sources"]["kafka"]) {
      if (auto topics = src["topics"]) {
        c.kafka.input_topics = topics.IsSequence() ? topics.as<std::vector<std::string>>()
                                                   : SplitComma(topics.as<std::string>());
      }
    }
    if (auto src = root["sources"]["postgres"]) {
      if (src["table"]) {
        c.postgres.text_table = src["table"].as<std::string>();
        if (!src["enabled"]) c.postgres.source_enabled = true;
      }
      if (src["enabled"]) c.postgres.source_enabled = src["enabled"].as<bool>();
      if (src["id_column"]) c.postgres.id_column = src["id_column"].as<std::string>();
      if (src["text_column"]) c.postgres.text_column = src["text_column"].as<std::string>();
      if (src["poll_interval_ms"]) c.postgres.poll_interval_ms = src["poll_interval_ms"].as<int>();
    }
    if (auto search = root["search"]) {
      if (search["backend"]) c.search_backend = search["backend"].as<std::string>();
    }
    if (root["log_level"]) c.log_level = root["log_level"].as<std::string>();
  } catch (const YAML::Exception& e) {
    return Error(errc::invalid_argument, path + ": " + e.what());
  }
  return Status::Ok();
}

Result<ServeConfig> LoadServeConfig(const ServeFlags& f) {
  ServeConfig c;
  if (!f.config_file.empty()) {
    auto text = ReadFile(f.config_file);
    if (!text) return Error(errc::invalid_argument, text.error().message);
    if (auto st = ApplyServeConfigYaml(*text, f.config_file, c); !st) return st.error();
  }
  if (const char* v = Env("KAFKA_BOOTSTRAP_SERVERS")) c.kafka.bootstrap_servers = v;
  if (const char* v = Env("KAFKA_GROUP_ID")) c.kafka.group_id = v;
  if (const char* v = Env("KAFKA_INPUT_TOPICS")) c.kafka.input_topics = SplitComma(v);
  if (const char* v = Env("KAFKA_INPUT_TOPIC")) c.kafka.input_topics = SplitComma(v);
  if (const char* v = Env("KAFKA_OUTPUT_TOPIC")) c.kafka.output_topic = v;
  if (const char* v = Env("KAFKA_DLQ_TOPIC")) c.kafka.dlq_topic = v;
  if (const char* v = Env("EMBEDSTREAM_HTTP_HOST")) c.http_host = v;
  if (const char* v = Env("EMBEDSTREAM_DATA_DIR")) c.store_dir = v;
  if (const char* v = Env("EMBEDSTREAM_AUTH_TOKEN")) c.auth_token = v;
  if (const char* v = Env("EMBEDSTREAM_AUTH_READ_TOKEN")) c.auth_read_token = v;
  c.postgres.connection = pg::ConnectionOptions::FromEnv(c.postgres.connection);
  if (const char* v = Env("QDRANT_URL")) c.qdrant.url = v;
  if (const char* v = Env("EMBEDSTREAM_INGEST_MODE")) c.ingest.mode = v;
  if (const char* v = Env("EMBEDSTREAM_EVENTS_BUS")) c.events.bus = v;
  if (const char* v = Env("REDIS_URL")) c.events.redis_url = v;
  if (const char* v = Env("QDRANT_COLLECTION")) c.qdrant.collection = v;
  if (const char* v = Env("QDRANT_API_KEY")) c.qdrant.api_key = v;
  for (const char* key : {"PORT", "EMBEDSTREAM_HTTP_PORT"}) {
    if (const char* v = Env(key)) {
      auto port = ParseLong(key, v);
      if (!port) return port.error();
      c.http_port = static_cast<int>(*port);
    }
  }
  if (!f.kafka_brokers.empty()) c.kafka.bootstrap_servers = f.kafka_brokers;
  if (!f.group_id.empty()) c.kafka.group_id = f.group_id;
  if (!f.input_topics.empty()) c.kafka.input_topics = f.input_topics;
  if (!f.output_topic.empty()) c.kafka.output_topic = f.output_topic;
  if (!f.dlq_topic.empty()) c.kafka.dlq_topic = f.dlq_topic;
  if (!f.auto_offset_reset.empty()) c.kafka.auto_offset_reset = f.auto_offset_reset;
  if (f.batch_max_tokens >= 0) c.batch_max_tokens = static_cast<size_t>(f.batch_max_tokens);
  if (f.batch_max_wait_ms >= 0) c.batch_max_wait_ms = static_cast<int>(f.batch_max_wait_ms);
  if (f.batch_linger_ms >= 0) c.batch_linger_ms = static_cast<int>(f.batch_linger_ms);
  if (f.http_port >= 0) c.http_port = static_cast<int>(f.http_port);
  if (!f.http_host.empty()) c.http_host = f.http_host;
  if (!f.data_dir.empty()) c.store_dir = f.data_dir;
  if (!f.auth_token.empty()) c.auth_token = f.auth_token;
  if (f.no_store) c.store_enabled = false;
  if (!f.pg_sink.empty()) c.postgres.sink_mode = f.pg_sink;
  if (f.pg_source) c.postgres.source_enabled = true;
  if (f.pg_poll_ms >= 0) c.postgres.poll_interval_ms = static_cast<int>(f.pg_poll_ms);
  if (!f.search_backend.empty()) c.search_backend = f.search_backend;
  if (!f.qdrant_url.empty()) c.qdrant.url = f.qdrant_url;
  if (!f.ingest_mode.empty()) c.ingest.mode = f.ingest_mode;
  if (!f.events_bus.empty()) c.events.bus = f.events_bus;
  if (!f.redis_url.empty()) c.events.redis_url = f.redis_url;
  for (const char* source : kSourceNames) {
    std::string key = std::string("EMBEDSTREAM_") + source + "_SINKS";
    for (auto& ch : key) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (const char* v = Env(key.c_str())) c.source_sinks[source] = SplitComma(v);
  }
  for (const auto& spec : f.sinks) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(errc::invalid_argument,
                   "--sinks '" + spec + "': write SOURCE=SINK[,SINK...], e.g. http=store,qdrant");
    }
    const std::string source = spec.substr(0, eq);
    c.source_sinks[source] = SplitComma(spec.substr(eq + 1));
    if (source == "postgres") c.postgres.source_enabled = true;
  }

  if (Status st = ValidateServeConfig(c); !st) return st.error();
  return c;
}

std::string ServeConfigJson(const ServeConfig& c) {
  JsonWriter w;
  w.BeginObject();
  w.Key("kafka").BeginObject();
  w.Key("bootstrap_servers").String(MaskUrlUserinfo(c.kafka.bootstrap_servers));
  w.Key("group_id").String(c.kafka.group_id);
  w.Key("input_topics").BeginArray();
  for (const auto& t : c.kafka.input_topics) w.String(t);
  w.EndArray();
  w.Key("output_topic").String(c.kafka.output_topic);
  w.Key("dlq_topic").String(c.kafka.DlqTopic());
  w.Key("auto_offset_reset").String(c.kafka.auto_offset_reset);
  w.Key("properties").BeginObject();
  for (const auto& [k, v] : c.kafka.properties) {
    w.Key(k).String(LooksSecret(k) || IsSensitiveKafkaProperty(k) ? "***" : MaskUrlUserinfo(v));
  }
  w.EndObject();
  w.EndObject();
  w.Key("batch").BeginObject();
  w.Key("max_tokens").Uint(c.batch_max_tokens);
  w.Key("max_wait_ms").Int(c.batch_max_wait_ms);
  w.Key("linger_ms").Int(c.batch_linger_ms);
  w.EndObject();
  w.Key("pipeline").BeginObject();
  w.Key("max_inflight").Uint(c.max_inflight);
  w.Key("max_inflight_bytes").Uint(c.max_inflight_bytes);
  w.Key("max_record_bytes").Uint(c.max_record_bytes);
  w.Key("retry_base_ms").Int(c.retry_base_ms);
  w.Key("retry_max_ms").Int(c.retry_max_ms);
  w.Key("retry_attempts").Int(c.retry_attempts);
  w.Key("breaker").BeginObject();
  w.Key("failure_threshold").Int(c.breaker.failure_threshold);
  w.Key("failure_rate").Double(c.breaker.failure_rate_threshold);
  w.Key("open_ms").Int(static_cast<int>(c.breaker.open_duration.count()));
  w.Key("open_max_ms").Int(static_cast<int>(c.breaker.open_duration_max.count()));
  w.EndObject();
  w.EndObject();
  w.Key("http").BeginObject();
  w.Key("host").String(c.http_host);
  w.Key("port").Int(c.http_port);
  w.Key("max_body_bytes").Uint(c.http_max_body_bytes);
  w.Key("max_document_bytes").Uint(c.http_max_document_bytes);
  w.Key("max_connections").Uint(c.http_max_connections);
  w.Key("write_timeout_ms").Int(c.http_write_timeout_ms);
  w.Key("max_response_bytes").Uint(c.http_max_response_bytes);
  w.Key("cors_origins").BeginArray();
  for (const auto& origin : c.http_cors_origins) w.String(MaskUrlUserinfo(origin));
  w.EndArray();
  w.EndObject();
  w.Key("auth").BeginObject();
  w.Key("token").String(c.auth_token.empty() ? "" : "***");
  w.Key("read_token").String(c.auth_read_token.empty() ? "" : "***");
  w.Key("public_metrics").Bool(c.auth_public_metrics);
  w.EndObject();
  w.Key("store").BeginObject();
  w.Key("enabled").Bool(c.store_enabled);
  w.Key("dir").String(MaskUrlUserinfo(c.store_dir));
  w.Key("sync").String(c.store_sync_full ? "full" : "normal");
  w.Key("max_queue").Uint(c.store_max_queue);
  w.Key("max_queue_bytes").Uint(c.store_max_queue_bytes);
  w.EndObject();
  w.Key("ingest").BeginObject();
  w.Key("mode").String(c.ingest.mode);
  w.Key("topic").String(c.ingest.topic);
  w.Key("timeout_ms").Int(c.ingest.timeout_ms);
  w.EndObject();
  w.Key("events").BeginObject();
  w.Key("bus").String(c.events.bus);
  w.Key("topic").String(c.events.topic);
  w.Key("redis_url").String(MaskUrlUserinfo(c.events.redis_url));
  w.Key("redis_prefix").String(c.events.redis_prefix);
  w.EndObject();
  w.Key("sse").BeginObject();
  w.Key("ring").Uint(c.sse_ring);
  w.Key("heartbeat_ms").Int(c.sse_heartbeat_ms);
  w.Key("max_client_bytes").Uint(c.sse_max_client_bytes);
  w.Key("max_total_bytes").Uint(c.sse_max_total_bytes);
  w.EndObject();
  const PostgresSettings& pg = c.postgres;
  w.Key("postgres").BeginObject();
  w.Key("host").String(MaskUrlUserinfo(pg.connection.host));
  w.Key("port").Int(pg.connection.port);
  w.Key("database").String(pg.connection.dbname);
  w.Key("user").String(pg.connection.user);
  w.Key("password").String("***");
  w.Key("text_table").String(pg.text_table);
  w.Key("embeddings_table").String(pg.embeddings_table);
  w.Key("hnsw_m").Int(pg.hnsw_m);
  w.Key("hnsw_ef_construction").Int(pg.hnsw_ef_construction);
  w.EndObject();
  w.Key("sinks").BeginObject().Key("postgres").BeginObject();
  w.Key("mode").String(pg.sink_mode);
  w.EndObject();
  w.Key("qdrant").BeginObject();
  w.Key("url").String(MaskUrlUserinfo(c.qdrant.url));
  w.Key("collection").String(c.qdrant.collection);
  w.Key("api_key").String(c.qdrant.api_key.empty() ? "" : "***");
  w.Key("batch_size").Uint(c.qdrant.batch_size);
  w.Key("timeout_ms").Int(c.qdrant.timeout_ms);
  w.EndObject();
  w.Key("jsonl").BeginObject().Key("path").String(c.jsonl_path).EndObject();
  w.EndObject();
  w.Key("sources").BeginObject();
  for (const auto& source : c.Sources()) {
    if (source == "postgres") continue;
    w.Key(source).BeginObject().Key("sinks").BeginArray();
    for (const auto& sink : c.SinksOf(source)) w.String(sink);
    w.EndArray().EndObject();
  }
  w.Key("postgres").BeginObject();
  w.Key("sinks").BeginArray();
  for (const auto& sink : c.SinksOf("postgres")) w.String(sink);
  w.EndArray();
  w.Key("enabled").Bool(pg.source_enabled);
  w.Key("id_column").String(pg.id_column);
  w.Key("text_column").String(pg.text_column);
  w.Key("poll_interval_ms").Int(pg.poll_interval_ms);
  w.EndObject().EndObject();
  w.Key("search").BeginObject().Key("backend").String(c.search_backend).EndObject();
  auto chunking = [&w](const pipeline::ChunkingOptions& o) {
    w.BeginObject().Key("max_tokens").Uint(o.max_tokens);
    w.Key("overlap_tokens").Uint(o.overlap_tokens);
    w.Key("split").String(pipeline::SplitName(o.split));
    w.Key("on_overflow").String(pipeline::OverflowName(o.on_overflow)).EndObject();
  };
  w.Key("chunking");
  chunking(c.chunking);
  for (const auto& [source, o] : c.source_chunking) {
    w.Key("chunking." + source);
    chunking(o);
  }
  w.EndObject();
  return w.Take();
}

std::string MaskUrlUserinfo(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (;;) {
    const size_t scheme_end = s.find("://", pos);
    if (scheme_end == std::string_view::npos) break;
    const size_t authority = scheme_end + 3;
    size_t end = s.find_first_of("/?#,; \t", authority);
    if (end == std::string_view::npos) end = s.size();
    const size_t at = s.rfind('@', end == 0 ? 0 : end - 1);
    out.append(s.substr(pos, authority - pos));
    if (at != std::string_view::npos && at >= authority && at < end) {
      out += "***";
      out.append(s.substr(at, end - at));
    } else {
      out.append(s.substr(authority, end - authority));
    }
    pos = end;
  }
  out.append(s.substr(pos));
  return out;
}

bool IsSensitiveKafkaProperty(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), ::tolower);
  if (k.starts_with("sasl.") || k.starts_with("sasl_")) return true;  // credentials, JAAS, OIDC
  if (k.starts_with("ssl.") || k.starts_with("ssl_")) {
    for (const char* word : {"key", "password", "pem", "keystore", "secret"}) {
      if (k.find(word) != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace embedstream::app
