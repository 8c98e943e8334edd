#pragma once
// The dashboard page served at GET / by `embedstream serve`: one
// self-contained HTML file (src/api/dashboard/index.html) compiled into the
// binary at build time (embed_text.cmake), so the binary needs no
// files beside it and works offline.

#include <string_view>

namespace embedstream::server {
class HttpServer;
}  // namespace embedstream::server

namespace embedstream::api {

// The page, byte for byte the file src/api/dashboard/index.html.
std::string_view DashboardHtml();

// Registers GET / (text/html) on `http`. Before http.Start().
void RegisterDashboard(server::HttpServer& http);

}  // namespace embedstream::api
