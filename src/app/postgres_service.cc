#include "app/postgres_service.h"

#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "core/logging.h"
#include "core/metrics.h"

namespace embedstream::app {

Result<std::unique_ptr<sinks::PostgresSink>> OpenPostgresSink(const ServeConfig& config,
                                                              const model::SentenceEncoder& encoder,
                                                              bool for_writes) {
  const PostgresSettings& pg = config.postgres;
  sinks::PostgresSinkOptions o;
  o.host = pg.connection.host;
  o.port = pg.connection.port;
  o.dbname = pg.connection.dbname;
  o.user = pg.connection.user;
  o.password = pg.connection.password;
  o.connect_timeout_s = pg.connection.connect_timeout_s;
  o.require_uuid_ids = for_writes;
  o.text_table = pg.text_table;
  o.embeddings_table = pg.embeddings_table;
  o.id_column = pg.id_column;
  o.text_column = pg.text_column;
  o.hnsw_m = pg.hnsw_m;
  o.hnsw_ef_construction = pg.hnsw_ef_construction;
  o.dim = encoder.dim();
  o.model_name = encoder.info().model_name;
  return sinks::PostgresSink::Connect(o);
}

Result<std::string> FilterToContainment(const store::Filter& filter) {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [path, literal] : filter.equals) {
    std::string rest = path.rfind("metadata.", 0) == 0 ? path.substr(9) : path;
    nlohmann::json value = nlohmann::json::parse(literal, nullptr, false);
    if (value.is_discarded()) {
      return Error(errc::invalid_argument, "filter value of '" + path + "' is not JSON");
    }
    nlohmann::json* at = &doc;
    for (size_t start = 0;;) {
      const size_t dot = rest.find('.', start);
      const std::string key = rest.substr(start, dot == std::string::npos ? dot : dot - start);
      if (key.empty()) return Error(errc::invalid_argument, "empty key in filter '" + path + "'");
      if (dot == std::string::npos) {
        if (at->contains(key)) {
          return Error(errc::invalid_argument, "filter paths collide at '" + path + "'");
        }
        (*at)[key] = std::move(value);
        break;
      }
      nlohmann::json& next = (*at)[key];
      if (next.is_null()) next = nlohmann::json::object();
      if (!next.is_object()) {
        return Error(errc::invalid_argument, "filter paths collide at '" + path + "'");
      }
      at = &next;
      start = dot + 1;
    }
  }
  return doc.dump();
}

Result<std::unique_ptr<sources::PostgresSource>> OpenPostgresSource(
    const ServeConfig& config, const model::SentenceEncoder& encoder, bool reembed, bool finite) {
  const PostgresSettings& pg = config.postgres;
  sources::PostgresSourceOptions so;
  so.connection = pg.connection;
  so.schema.text_table = pg.text_table;
  so.schema.embeddings_table = pg.embeddings_table;
  so.schema.id_column = pg.id_column;
  so.schema.text_column = pg.text_column;
  so.schema.hnsw_m = pg.hnsw_m;
  so.schema.hnsw_ef_construction = pg.hnsw_ef_construction;
  so.schema.dim = encoder.dim();
  so.schema.model_name = encoder.info().model_name;
  so.poll_interval = std::chrono::milliseconds(pg.poll_interval_ms);
  so.retry_base = std::chrono::milliseconds(config.retry_base_ms);
  so.retry_max = std::chrono::milliseconds(config.retry_max_ms);
  so.reembed_other_models = reembed;
  so.finite = finite;
  return sources::PostgresSource::Connect(std::move(so));
}

Result<std::unique_ptr<PostgresSearch>> PostgresSearch::Open(
    const ServeConfig& config, const model::SentenceEncoder& encoder) {
  auto sink = OpenPostgresSink(config, encoder, /*for_writes=*/false);
  if (!sink) return sink.error();
  auto self = std::make_unique<PostgresSearch>();
  self->search_ = std::move(*sink);
  return self;
}

std::string PostgresSourceStatsJson(const sources::PostgresSource& source) {
  const sources::PostgresSourceStats& s = source.stats();
  JsonWriter w;
  w.BeginObject()
      .Key("embedded")
      .Uint(s.embedded.load())
      .Key("claimed")
      .Uint(s.claimed.load())
      .Key("batches")
      .Uint(s.batches.load())
      .Key("dead_letters")
      .Uint(s.dead_letters.load())
      .Key("deletes")
      .Uint(s.deletes.load())
      .Key("errors")
      .Uint(s.errors.load())
      .Key("reconnects")
      .Uint(s.reconnects.load())
      .Key("notifications")
      .Uint(s.notifications.load())
      .Key("polls")
      .Uint(s.polls.load())
      .Key("open_claims")
      .Int(s.open_claims.load())
      .Key("connected")
      .Bool(s.connected.load())
      .Key("listening")
      .Bool(s.listening.load())
      .Key("pending")
      .Int(s.pending.load())
      .Key("oldest_pending_age_s")
      .Double(s.oldest_pending_age_s.load())
      .EndObject();
  return w.Take();
}

api::SearchBackend PostgresSearch::backend() {
  if (search_ == nullptr) return {};
  return [this](const std::vector<float>& q, size_t k,
                const store::Filter& filter) -> Result<std::vector<store::SearchHit>> {
    std::string containment;
    if (!filter.empty()) {
      auto c = FilterToContainment(filter);
      if (!c) return c.error();
      containment = std::move(*c);
    }
    auto hits = search_->Search(q, k, containment);
    if (!hits) return hits.error();
    std::vector<store::SearchHit> out;
    out.reserve(hits->size());
    for (auto& h : *hits) {
      // The original id when the stored UUID was derived from it.
      store::SearchHit hit;
      hit.id = h.source_id.empty() ? std::move(h.id) : std::move(h.source_id);
      hit.score = h.score;
      hit.text = std::move(h.text);
      hit.metadata_json = std::move(h.metadata_json);
      hit.parent_id = std::move(h.parent_id);
      hit.chunk_index = h.chunk_index;
      hit.chunk_count = h.chunk_count;
      hit.char_start = h.char_start;
      hit.char_end = h.char_end;
      out.push_back(std::move(hit));
    }
    return out;
  };
}

void RegisterPostgresSourceMetrics(const sources::PostgresSource* source) {
  MetricsRegistry::Global().AddCollector([source](std::string& out) {
    const sources::PostgresSourceStats& s = source->stats();
    AppendScalarMetric(out, "embedstream_pg_source_rows_embedded_total",
                       "Rows of the PostgreSQL text table embedded by this process", "counter",
                       static_cast<double>(s.embedded.load()));
    AppendScalarMetric(out, "embedstream_pg_source_errors_total",
                       "Failed PostgreSQL source rounds (each retried)", "counter",
                       static_cast<double>(s.errors.load()));
    AppendScalarMetric(out, "embedstream_pg_source_pending_rows",
                       "Rows of the text table without a current embedding", "gauge",
                       static_cast<double>(s.pending.load()));
    AppendScalarMetric(out, "embedstream_pg_source_oldest_pending_age_seconds",
                       "Age of the oldest pending row (by created_at)", "gauge",
                       s.oldest_pending_age_s.load());
    AppendScalarMetric(out, "embedstream_pg_source_connected", "1 while connected", "gauge",
                       s.connected.load() ? 1.0 : 0.0);
  });
}

}  // namespace embedstream::app
