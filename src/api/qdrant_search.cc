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
        auto u32 = [&](const char* key, uint32_t& field) {
          auto it = payload.find(key);
          if (it != payload.end() && it->is_number_unsigned()) field = it->get<uint32_t>();
        };
        u32("chunk_index", hit.chunk_index);
        u32("chunk_count", hit.chunk_count);
        u32("char_start", hit.char_start);
        u32("char_end", hit.char_end);
        auto parent = payload.find("parent_id");
        if (hit.chunk_count > 1 && parent != payload.end() && parent->is_string()) {
          hit.parent_id = parent->get<std::string>();
        }
      }
      hit.metadata_json = std::move(h.payload_json);
      out.push_back(std::move(hit));
    }
    return out;
  };
}

}  // namespace embedstream::api
