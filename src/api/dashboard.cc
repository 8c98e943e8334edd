#include "api/dashboard.h"

#include <string>

#include "server/http_server.h"
#include "server/http_types.h"

namespace embedstream::api {

void RegisterDashboard(server::HttpServer& http) {
  http.Route("GET", "/", [](const server::HttpRequest&) {
    server::HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(DashboardHtml());
    // The page is inline only and talks to this origin only: the policy keeps
    // it that way (an accidental external URL fails loudly in the browser).
    r.headers = {
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
         "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-cache"},
    };
    return r;
  });
}

}  // namespace embedstream::api
