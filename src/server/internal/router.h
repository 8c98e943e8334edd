#pragma once
// Router: (method, path pattern) -> handler, and the metrics probe of each
// route. Filled before the server starts, read-only (so lock-free) after.
//
// Patterns: an exact path ("/health") or a prefix ending in "/*"
// ("/messages/*" matches "/messages/<anything>", not "/messages"). Lookup
// tries the exact path, then prefixes longest first; the first pattern that
// has the method wins. A path some pattern matches but none with the method
// is a 405 with `allow` = their methods.

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"
#include "server/http_types.h"

namespace embedstream::server::internal {

// Requests and latency of one route (or of the unmatched/bad requests).
class RouteProbe {
 public:
  RouteProbe(MetricsRegistry& registry, const std::string& method, const std::string& route);
  void Record(int status, double seconds);

 private:
  std::array<Counter*, 4> responses_{};  // 2xx, 3xx, 4xx, 5xx
  Histogram* duration_ = nullptr;
};

struct Route {
  enum class Kind { kSync, kAsync, kStream };
  Kind kind = Kind::kSync;
  std::string method;
  std::string pattern;
  Handler handler;
  AsyncHandler async_handler;
  StreamHandler stream_handler;
  std::unique_ptr<RouteProbe> probe;
};

class Router {
 public:
  explicit Router(MetricsRegistry& registry);

  // Replaces an earlier route with the same method and pattern.
  void Add(std::unique_ptr<Route> route);

  struct Match {
    const Route* route = nullptr;  // null: 404 if allow is empty, else 405
    std::string allow;             // "GET, POST"
  };
  Match Find(std::string_view method, std::string_view path) const;

  RouteProbe& unmatched_probe() const { return *unmatched_probe_; }

 private:
  MetricsRegistry& registry_;
  // pattern -> method -> route
  std::map<std::string, std::map<std::string, std::unique_ptr<Route>>, std::less<>> exact_;
  // prefix without the '*' ("/messages/"), longest first
  std::vector<std::pair<std::string, std::map<std::string, std::unique_ptr<Route>>>> prefixes_;
  std::unique_ptr<RouteProbe> unmatched_probe_;
};

}  // namespace embedstream::server::internal
