#include "api/qdrant_search.h"

#include <nlohmann/json.hpp>

namespace embedstream::api {

SearchBackend QdrantSearchBackend(std::shared_ptr<sinks::QdrantSink> sink) {
  return [sink = std::move(sink)](
             const std::vector<float>& q, size_t k,
             const store::Filter& filter) -> Result<std::vector<store::SearchHit>> {
    auto qfilter = sinks::QdrantSink::FilterToQdrant(filter.equals);
    if (!qfilter) return qfilter.error();
    auto hits = sink->Search(q, k, *qfilter);
    if (!hits) return hits.error();
    std::vector<store::SearchHit> out;
    out.reserve(hits->size());
    for (auto& h : *hits) {
      store::SearchHit hit;
      hit.id = h.source_id.empty() ? std::move(h.id) : std::move(h.source_id);
      hit.score = h.score;
      auto payload = nlohmann::json::parse(h.payload_json, nullptr, false);
      if (payload.is_object()) {
        if (auto t = payload.find("text"); t != payload.end() && t->is_string()) {
          hit.text = t->get<std::string>();
        }
      }
      hit.metadata_json = std::move(h.payload_json);
      out.push_back(std::move(hit));
    }
    return out;
  };
}

}  // namespace embedstream::api
