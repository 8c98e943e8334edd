#include "server/internal/router.h"

#include <memory>

#include <gtest/gtest.h>

namespace embedstream::server::internal {
namespace {

std::unique_ptr<Route> MakeRoute(const std::string& method, const std::string& pattern) {
  auto route = std::make_unique<Route>();
  route->method = method;
  route->pattern = pattern;
  route->handler = [](const HttpRequest&) { return JsonOk("{}"); };
  return route;
}

TEST(Router, ExactBeforePrefixAndLongestPrefixFirst) {
  MetricsRegistry registry;
  Router router(registry);
  router.Add(MakeRoute("GET", "/messages"));
  router.Add(MakeRoute("POST", "/messages"));
  router.Add(MakeRoute("GET", "/messages/*"));
  router.Add(MakeRoute("GET", "/messages/special"));
  router.Add(MakeRoute("GET", "/*"));

  EXPECT_EQ(router.Find("GET", "/messages").route->pattern, "/messages");
  EXPECT_EQ(router.Find("POST", "/messages").route->pattern, "/messages");
  EXPECT_EQ(router.Find("GET", "/messages/abc").route->pattern, "/messages/*");
  EXPECT_EQ(router.Find("GET", "/messages/special").route->pattern, "/messages/special");
  EXPECT_EQ(router.Find("GET", "/other").route->pattern, "/*");
}

TEST(Router, UnknownPathIs404AndWrongMethodListsAllowed) {
  MetricsRegistry registry;
  Router router(registry);
  router.Add(MakeRoute("POST", "/messages"));
  router.Add(MakeRoute("GET", "/messages"));
  router.Add(MakeRoute("DELETE", "/messages/*"));

  const auto missing = router.Find("GET", "/nope");
  EXPECT_EQ(missing.route, nullptr);
  EXPECT_TRUE(missing.allow.empty());

  const auto wrong = router.Find("PUT", "/messages");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_EQ(wrong.allow, "GET, POST");

  // "/messages/*" does not match "/messages" itself.
  EXPECT_EQ(router.Find("DELETE", "/messages").allow, "GET, POST");
  EXPECT_EQ(router.Find("GET", "/messages/x").allow, "DELETE");
}

TEST(Router, FallsBackToAPrefixThatHasTheMethod) {
  MetricsRegistry registry;
  Router router(registry);
  router.Add(MakeRoute("GET", "/messages/special"));
  router.Add(MakeRoute("POST", "/messages/*"));
  EXPECT_EQ(router.Find("POST", "/messages/special").route->pattern, "/messages/*");
  EXPECT_EQ(router.Find("PUT", "/messages/special").allow, "GET, POST");
}

}  // namespace
}  // namespace embedstream::server::internal
