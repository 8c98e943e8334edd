#include "server/internal/router.h"

#include <algorithm>
#include <set>

#include "core/check.h"

namespace embedstream::server::internal {

RouteProbe::RouteProbe(MetricsRegistry& registry, const std::string& method,
                       const std::string& route) {
  static constexpr std::array<const char*, 4> kClasses = {"2xx", "3xx", "4xx", "5xx"};
  for (size_t i = 0; i < kClasses.size(); ++i) {
    responses_[i] = &registry.GetCounter(
        "embedstream_http_requests_total", "HTTP requests answered, by route and status class.",
        {{"method", method}, {"route", route}, {"code", kClasses[i]}});
  }
  duration_ =
      &registry.GetHistogram("embedstream_http_request_duration_seconds",
                             "Time from a request's last byte read to its response being queued.",
                             LatencyBucketsSeconds(), {{"method", method}, {"route", route}});
}

void RouteProbe::Record(int status, double seconds) {
  const int index = std::clamp(status / 100 - 2, 0, 3);
  responses_[static_cast<size_t>(index)]->Inc();
  duration_->Observe(seconds);
}

Router::Router(MetricsRegistry& registry)
    : registry_(registry),
      unmatched_probe_(std::make_unique<RouteProbe>(registry, "any", "unmatched")) {}

void Router::Add(std::unique_ptr<Route> route) {
  ES_CHECK(route != nullptr && route->pattern.starts_with('/') && !route->method.empty());
  route->probe = std::make_unique<RouteProbe>(registry_, route->method, route->pattern);
  const std::string method = route->method;
  if (route->pattern.ends_with("/*")) {
    std::string prefix = route->pattern.substr(0, route->pattern.size() - 1);
    auto it = std::find_if(prefixes_.begin(), prefixes_.end(),
                           [&](const auto& entry) { return entry.first == prefix; });
    if (it == prefixes_.end()) {
      prefixes_.emplace_back(std::move(prefix), std::map<std::string, std::unique_ptr<Route>>());
      it = std::prev(prefixes_.end());
    }
    it->second[method] = std::move(route);
    std::stable_sort(prefixes_.begin(), prefixes_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  } else {
    const std::string pattern = route->pattern;
    exact_[pattern][method] = std::move(route);
  }
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  std::set<std::string> allowed;
  auto try_methods =
      [&](const std::map<std::string, std::unique_ptr<Route>>& by_method) -> const Route* {
    for (const auto& [m, route] : by_method) {
      if (m == method) return route.get();
      allowed.insert(m);
    }
    return nullptr;
  };
  if (auto it = exact_.find(path); it != exact_.end()) {
    if (const Route* route = try_methods(it->second)) return {route, {}};
  }
  for (const auto& [prefix, by_method] : prefixes_) {
    if (!path.starts_with(prefix)) continue;
    if (const Route* route = try_methods(by_method)) return {route, {}};
  }
  Match match;
  for (const auto& m : allowed) {
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += m;
  }
  return match;
}

}  // namespace embedstream::server::internal
