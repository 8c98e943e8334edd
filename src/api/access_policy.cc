#include "api/access_policy.h"

#include <algorithm>

namespace embedstream::api {
namespace {

using server::HttpRequest;
using server::HttpResponse;
using server::JsonError;

std::string_view Header(const HttpRequest& request, const char* name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

// application/json, with or without parameters (charset=utf-8).
bool IsJsonContentType(std::string_view value) {
  const size_t semi = value.find(';');
  return IEquals(Trim(value.substr(0, semi)), "application/json");
}

bool IsPublic(const HttpRequest& request, bool public_metrics) {
  if (request.method != "GET") return false;
  return request.path == "/health" || request.path == "/ready" ||
         (public_metrics && request.path == "/metrics");
}

// Reads: GET anything, and the search (a POST only for its body).
bool IsRead(const HttpRequest& request) {
  return request.method == "GET" ||
         (request.method == "POST" && request.path == "/embeddings/search");
}

HttpResponse Unauthorized(const char* detail) {
  HttpResponse r = JsonError(401, "unauthorized", detail);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // the length is not the secret
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

bool AccessPolicy::OriginAllowed(std::string_view origin) const {
  for (const auto& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  return false;
}

AccessPolicy::Grant AccessPolicy::Credential(const HttpRequest& request) const {
  std::string_view presented;
  const std::string_view authorization = Header(request, "authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() &&
      IEquals(authorization.substr(0, kBearer.size()), kBearer)) {
    presented = Trim(authorization.substr(kBearer.size()));
  } else if (request.method == "GET") {
    if (auto it = request.query.find("access_token"); it != request.query.end()) {
      presented = it->second;
    }
  }
  if (presented.empty()) return Grant::kNone;
  if (ConstantTimeEquals(presented, options_.token)) return Grant::kAll;
  if (!options_.read_token.empty() && ConstantTimeEquals(presented, options_.read_token)) {
    return Grant::kRead;
  }
  return Grant::kNone;
}

std::optional<HttpResponse> AccessPolicy::Check(const HttpRequest& request,
                                                server::HeaderList& extra) const {
  const std::string_view origin = Header(request, "origin");
  const bool cors = !origin.empty() && OriginAllowed(origin);
  if (cors) {
    extra.emplace_back("Access-Control-Allow-Origin", std::string(origin));
    extra.emplace_back("Vary", "Origin");
  }
  if (request.method == "OPTIONS" && !origin.empty() &&
      !Header(request, "access-control-request-method").empty()) {
    if (!cors) {
      return JsonError(
          403, "cors_forbidden",
          "this origin is not in http.cors_origins; cross-origin requests are refused");
    }
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    r.headers.emplace_back("Access-Control-Allow-Headers",
                           "Authorization, Content-Type, Last-Event-ID");
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    return r;
  }

  if (!options_.token.empty() && !IsPublic(request, options_.public_metrics)) {
    switch (Credential(request)) {
      case Grant::kNone:
        return Header(request, "authorization").empty() && !request.query.count("access_token")
                   ? Unauthorized("this server needs Authorization: Bearer <auth.token>")
                   : Unauthorized("the token is not valid here");
      case Grant::kRead:
        if (!IsRead(request)) {
          return JsonError(403, "forbidden",
                           "auth.read_token allows reads only; writes need auth.token");
        }
        break;
      case Grant::kAll:
        break;
    }
  }

  const std::string_view type = Header(request, "content-type");
  if (request.method == "POST" && !IsJsonContentType(type)) {
    // POST /documents also takes text: text/markdown needs a CORS preflight
    // like JSON; text/plain does not, so a browser may send it only from an
    // allowed origin (or none: not a browser).
    const std::string_view base = Trim(type.substr(0, type.find(';')));
    const bool document =
        request.path == "/documents" && (IEquals(base, "text/markdown") ||
                                         (IEquals(base, "text/plain") && (origin.empty() || cors)));
    if (!document) {
      return JsonError(415, "unsupported_media_type",
                       request.path == "/documents"
                           ? "POST /documents takes Content-Type application/json, text/markdown "
                             "or text/plain (text/plain from a browser only from an allowed "
                             "origin)"
                           : "a POST body must be sent with Content-Type: application/json");
    }
  }
  return std::nullopt;
}

}  // namespace embedstream::api
