#pragma once
// GET /openapi.json of `embedstream serve`: docs/openapi.yaml, the HTTP API as
// an OpenAPI 3.1 document, compiled into the binary at build time
// (embed_text.cmake writes openapi_yaml.cc from it) and converted to JSON once, on the first
// request, with yaml-cpp.
//
// Access: the route is an ordinary GET, so the access policy treats it like
// the other reads (open without auth.token; else either token, as a header or
// ?access_token=).

#include <string>
#include <string_view>

#include "core/result.h"

namespace embedstream::server {
class HttpServer;
}  // namespace embedstream::server

namespace embedstream::api {

// The document, byte for byte docs/openapi.yaml.
std::string_view OpenApiYaml();

// YAML -> compact JSON, keys in document order. Plain scalars are resolved as
// YAML 1.2's core schema does (null, true/false, integers, floats; anything
// else a string); quoted and block scalars are strings; mapping keys are
// strings. An error (invalid_argument) for invalid YAML, a non-scalar key, or
// a value JSON cannot hold (.inf, .nan).
Result<std::string> YamlToJson(std::string_view yaml);

// OpenApiYaml() as JSON, converted on the first call (thread-safe).
const Result<std::string>& OpenApiJson();

// Registers GET /openapi.json (application/json) on `http`. Before
// http.Start().
void RegisterOpenApi(server::HttpServer& http);

}  // namespace embedstream::api
