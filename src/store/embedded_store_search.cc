#include "store/embedded_store.h"

#include <limits>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "store/internal/store_impl.h"

namespace embedstream::store {
namespace internal {

struct CompiledFilter {
  std::vector<std::pair<std::vector<std::string>, nlohmann::json>> equals;
  bool group_by_parent = false;

  bool Matches(const std::string& metadata_json) const {
    if (equals.empty()) return true;
    auto doc = nlohmann::json::parse(metadata_json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return false;
    for (const auto& [path, want] : equals) {
      const nlohmann::json* cur = &doc;
      for (const auto& part : path) {
        if (!cur->is_object()) return false;
        auto it = cur->find(part);
        if (it == cur->end()) return false;
        cur = &*it;
      }
      if (*cur != want) return false;
    }
    return true;
  }
};

}  // namespace internal

using internal::CompiledFilter;
using internal::Normalised;
using internal::ReadMessage;

namespace {

constexpr size_t kFilterOverfetch = 10;

Result<CompiledFilter> CompileFilter(const Filter& filter) {
  CompiledFilter out;
  for (const auto& [field, literal] : filter.equals) {
    std::string_view rest = field;
    if (rest.starts_with("metadata.")) rest.remove_prefix(9);
    std::vector<std::string> path;
    size_t start = 0;
    while (start <= rest.size()) {
      size_t dot = rest.find('.', start);
      if (dot == std::string_view::npos) dot = rest.size();
      path.emplace_back(rest.substr(start, dot - start));
      if (path.back().empty()) return Error(errc::invalid_argument, "bad filter field: " + field);
      start = dot + 1;
    }
    auto value = nlohmann::json::parse(literal, nullptr, false);
    if (value.is_discarded()) {
      return Error(errc::invalid_argument,
                   "filter value for " + field + " is not JSON: " + literal);
    }
    out.equals.emplace_back(std::move(path), std::move(value));
  }
  out.group_by_parent = filter.group_by_parent;
  return out;
}

}  // namespace

Result<EmbeddedStore::SearchPage> EmbeddedStore::Impl::Hydrate(
    const std::vector<internal::ScoredLabel>& cands, size_t k, const CompiledFilter& filter,
    size_t skip, size_t max_bytes, size_t* matched) {
  SearchPage page;
  size_t passed = 0, bytes = 0;
  const bool group = filter.group_by_parent;
  std::unordered_set<std::string> seen;  // documents with a hit (group_by parent)
  std::lock_guard lock(read_mu);
  for (const auto& [score, label] : cands) {
    if (passed >= k) break;
    if (bytes > max_bytes) {
      page.cut = true;
      break;
    }
    get_by_row.Reset();
    get_by_row.BindInt(1, label);
    auto row = get_by_row.Step();
    if (!row) return row.error();
    if (!*row) continue;
    Message m = ReadMessage(get_by_row);
    if (m.status != MessageStatus::embedded || !filter.Matches(m.metadata_json)) continue;
    if (group && !seen.insert(m.parent_id.empty() ? m.id : m.parent_id).second) continue;
    if (passed++ < skip) continue;
    bytes += m.id.size() + m.text.size() + m.metadata_json.size();
    page.hits.push_back({std::move(m.id), score, std::move(m.text), std::move(m.metadata_json),
                         std::move(m.parent_id), m.chunk_index, m.chunk_count, m.char_start,
                         m.char_end});
  }
  get_by_row.Reset();
  if (matched != nullptr) *matched = passed;
  return page;
}

Result<std::vector<SearchHit>> EmbeddedStore::Search(const std::vector<float>& query, size_t k,
                                                     const Filter& filter) {
  auto page = SearchPaged(query, k, filter, 0, SIZE_MAX);
  if (!page) return page.error();
  return std::move(page->hits);
}

Result<EmbeddedStore::SearchPage> EmbeddedStore::SearchPaged(const std::vector<float>& query,
                                                             size_t k, const Filter& filter,
                                                             size_t skip, size_t max_bytes) {
  auto& d = *impl_;
  if (query.size() != d.options.dim) {
    return Error(errc::invalid_argument, "query has " + std::to_string(query.size()) +
                                             " dims, store has " + std::to_string(d.options.dim));
  }
  const auto q = Normalised(query);
  if (q.empty()) return Error(errc::invalid_argument, "query vector is zero or not finite");
  auto compiled = CompileFilter(filter);
  if (!compiled) return compiled.error();
  if (k == 0 || skip >= k) return SearchPage{};
  const bool exact = d.index->live_count() < d.options.exact_search_below;
  if (filter.empty() && filter.group_by_parent) {
    // Over-fetch chunks and keep the best per document; too few documents
    // among them: all candidates below.
    size_t matched = 0;
    auto cands = exact ? d.index->SearchExact(q.data(), k * kFilterOverfetch)
                       : d.index->SearchHnsw(q.data(), k * kFilterOverfetch);
    auto page = d.Hydrate(cands, k, *compiled, skip, max_bytes, &matched);
    if (!page || page->cut || matched >= k || cands.size() < k * kFilterOverfetch) return page;
  } else if (filter.empty()) {
    auto cands = exact ? d.index->SearchExact(q.data(), k) : d.index->SearchHnsw(q.data(), k);
    return d.Hydrate(cands, k, *compiled, skip, max_bytes);
  }
  if (!exact) {
    // Over-fetch from HNSW and filter; too few survivors: exact scan below.
    size_t matched = 0;
    auto page = d.Hydrate(d.index->SearchHnsw(q.data(), k * kFilterOverfetch), k, *compiled, skip,
                          max_bytes, &matched);
    if (!page || page->cut || matched >= k) return page;
  }
  return d.Hydrate(d.index->SearchExact(q.data(), std::numeric_limits<size_t>::max()), k, *compiled,
                   skip, max_bytes);
}

}  // namespace embedstream::store
