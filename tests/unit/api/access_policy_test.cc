#include "api/access_policy.h"

#include <gtest/gtest.h>

namespace embedstream::api {
namespace {

using server::HeaderList;
using server::HttpRequest;

HttpRequest Req(std::string method, std::string path,
                std::map<std::string, std::string> headers = {},
                std::map<std::string, std::string> query = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  r.headers = std::move(headers);
  r.query = std::move(query);
  if (r.method == "POST" && !r.headers.count("content-type")) {
    r.headers["content-type"] = "application/json";
  }
  return r;
}

int StatusOf(const AccessPolicy& p, const HttpRequest& r) {
  HeaderList extra;
  auto answer = p.Check(r, extra);
  return answer ? answer->status : 0;  // 0: routed
}

TEST(AccessPolicy, WithoutATokenEverythingIsRoutedButPostsMustBeJson) {
  AccessPolicy p({});
  EXPECT_TRUE(p.open());
  EXPECT_EQ(StatusOf(p, Req("GET", "/messages")), 0);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages")), 0);
  EXPECT_EQ(
      StatusOf(p, Req("POST", "/messages", {{"content-type", "Application/JSON; charset=utf-8"}})),
      0);
  // What a form or fetch(text/plain) on another site can send without a preflight.
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", "application/jsonx", ""}) {
    EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {{"content-type", type}})), 415) << type;
  }
}

TEST(AccessPolicy, TheTokenGuardsEveryRouteButHealthAndReady) {
  AccessPolicy p({.token = "t0k"});
  for (const char* path : {"/messages", "/messages/x", "/status", "/stats", "/metrics", "/config",
                           "/events", "/", "/nope"}) {
    EXPECT_EQ(StatusOf(p, Req("GET", path)), 401) << path;
    EXPECT_EQ(StatusOf(p, Req("GET", path, {{"authorization", "Bearer t0k"}})), 0) << path;
  }
  EXPECT_EQ(StatusOf(p, Req("GET", "/health")), 0);
  EXPECT_EQ(StatusOf(p, Req("GET", "/ready")), 0);
  EXPECT_EQ(StatusOf(p, Req("POST", "/health")), 401);  // only GET is public
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages")), 401);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {{"authorization", "Bearer t0kX"}})), 401);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {{"authorization", "Basic t0k"}})), 401);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {{"authorization", "bearer t0k"}})), 0);
  // ?access_token= on GET only (EventSource, the dashboard's address).
  EXPECT_EQ(StatusOf(p, Req("GET", "/events", {}, {{"access_token", "t0k"}})), 0);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {}, {{"access_token", "t0k"}})), 401);
  // 401 comes before 415 and says how to authenticate.
  HeaderList extra;
  auto r = p.Check(Req("POST", "/messages", {{"content-type", "text/plain"}}), extra);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].first, "WWW-Authenticate");
}

TEST(AccessPolicy, TheReadTokenReadsAndSearchesButCannotWrite) {
  AccessPolicy p({.token = "w", .read_token = "r"});
  const std::map<std::string, std::string> read = {{"authorization", "Bearer r"}};
  EXPECT_EQ(StatusOf(p, Req("GET", "/messages", read)), 0);
  EXPECT_EQ(StatusOf(p, Req("GET", "/events", {}, {{"access_token", "r"}})), 0);
  EXPECT_EQ(StatusOf(p, Req("POST", "/embeddings/search", read)), 0);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", read)), 403);
  EXPECT_EQ(StatusOf(p, Req("POST", "/messages", {{"authorization", "Bearer w"}})), 0);
}

TEST(AccessPolicy, PublicMetricsOpensOnlyMetrics) {
  AccessPolicy p({.token = "t", .public_metrics = true});
  EXPECT_EQ(StatusOf(p, Req("GET", "/metrics")), 0);
  EXPECT_EQ(StatusOf(p, Req("GET", "/stats")), 401);
}

TEST(AccessPolicy, CorsIsOffByDefaultAndFollowsTheAllowlist) {
  const auto preflight = [](const char* origin) {
    return Req("OPTIONS", "/messages",
               {{"origin", origin}, {"access-control-request-method", "POST"}});
  };
  AccessPolicy off({});
  EXPECT_EQ(StatusOf(off, preflight("https://evil.example")), 403);
  HeaderList extra;
  EXPECT_FALSE(off.Check(Req("GET", "/messages", {{"origin", "https://evil.example"}}), extra));
  EXPECT_TRUE(extra.empty());  // no Access-Control-Allow-Origin: the browser hides the answer

  AccessPolicy on({.token = "t", .cors_origins = {"https://app.example.com"}});
  HeaderList pre;
  auto r = on.Check(preflight("https://app.example.com"), pre);  // no credential on a preflight
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(StatusOf(on, preflight("https://evil.example")), 403);
  HeaderList allowed;
  EXPECT_FALSE(on.Check(Req("GET", "/messages",
                            {{"origin", "https://app.example.com"}, {"authorization", "Bearer t"}}),
                        allowed));
  ASSERT_EQ(allowed.size(), 2u);
  EXPECT_EQ(allowed[0].second, "https://app.example.com");
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace embedstream::api
