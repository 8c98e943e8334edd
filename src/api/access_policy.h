#pragma once
// AccessPolicy: who may call what on `embedstream serve`, checked before any
// route runs (server::ServerOptions::filter), so no route can forget it.
//
// With auth.token set, every request but GET /health and GET /ready (and
// GET /metrics with auth.public_metrics) needs a credential, unknown paths
// included (401, WWW-Authenticate: Bearer):
//   - "Authorization: Bearer <token>", or for GET only "?access_token=<token>"
//     (EventSource and a browser's address bar cannot send headers);
//   - auth.token allows everything; auth.read_token (optional) allows the
//     reads: every GET and POST /embeddings/search (a write is 403).
// Without auth.token everything is open (serve logs a warning when it then
// listens beyond loopback).
//
// Browsers:
//   - a POST must say Content-Type: application/json (parameters allowed),
//     else 415: a page on another site cannot send one without a CORS
//     preflight, which it only passes when its origin is allowed;
//   - CORS is off by default. http.cors_origins lists origins
//     ("https://app.example.com", or "*" for any) that get
//     Access-Control-Allow-Origin on their responses and a 204 to their
//     preflights; a preflight from another origin is a 403.
//
// Order: CORS preflight, public routes, credentials, content type.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.h"

namespace embedstream::api {

struct AccessOptions {
  std::string token = {};       // auth.token; empty: no credential needed anywhere
  std::string read_token = {};  // auth.read_token; needs token
  bool public_metrics = false;
  std::vector<std::string> cors_origins = {};
};

class AccessPolicy {
 public:
  explicit AccessPolicy(AccessOptions options) : options_(std::move(options)) {}

  // The answer that replaces routing, or nullopt to route the request (with
  // any CORS headers appended to `extra`). Thread-safe (const).
  std::optional<server::HttpResponse> Check(const server::HttpRequest& request,
                                            server::HeaderList& extra) const;

  bool open() const { return options_.token.empty(); }

 private:
  enum class Grant { kNone, kRead, kAll };
  Grant Credential(const server::HttpRequest& request) const;
  bool OriginAllowed(std::string_view origin) const;

  AccessOptions options_;
};

// Compares without an early exit on the first differing byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace embedstream::api
