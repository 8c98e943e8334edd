#include "server/http_client.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace embedstream::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kUserAgent = "embedstream-cli/0.1";
constexpr const char* kServeHint = "; is `embedstream serve` running?";

beast::string_view Bsv(std::string_view s) { return {s.data(), s.size()}; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "connection refused" -> "Connection refused" (asio's messages are lower-case).
std::string Sentence(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string Millis(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

template <class Fields>
std::map<std::string, std::string> HeaderMap(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& f : fields) {
    auto [it, inserted] =
        out.emplace(Lower(std::string_view(f.name_string().data(), f.name_string().size())),
                    std::string(f.value()));
    if (!inserted) {
      it->second += ", ";
      it->second.append(f.value().data(), f.value().size());
    }
  }
  return out;
}

// The connection was closed or reset by the peer (possibly an idle
// keep-alive connection the server dropped).
bool IsClosedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

}  // namespace

std::string HttpUrl::ToString() const {
  std::string out = "http://" + HostHeader();
  out += base_path;
  return out;
}

std::string HttpUrl::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  const std::string original(url);
  auto bad = [&](const std::string& why) {
    return Error(errc::invalid_argument, "invalid URL '" + original + "': " + why);
  };
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.front())))
    url.remove_prefix(1);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.remove_suffix(1);
  if (url.empty()) return bad("empty; expected http://HOST:PORT");
  if (const auto sep = url.find("://"); sep != std::string_view::npos) {
    const std::string scheme = Lower(url.substr(0, sep));
    if (scheme == "https") {
      return Error(errc::unsupported,
                   "'" + original +
                       "': https is not supported; embedstream's client speaks plain HTTP only "
                       "(no TLS). Use http://HOST:PORT, or reach a TLS endpoint through a local "
                       "proxy or tunnel");
    }
    if (scheme != "http") return bad("scheme '" + scheme + "' is not supported; use http://");
    url.remove_prefix(sep + 3);
  }
  const auto authority_end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view{} : url.substr(authority_end);
  if (path.find_first_of("?#") != std::string_view::npos)
    return bad("a base URL takes no query or fragment");
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");

  HttpUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated '[' in the IPv6 host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':PORT' after the IPv6 host");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos)
        return bad("an IPv6 host must be in brackets, e.g. http://[::1]:5000");
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
      authority = authority.substr(0, colon);
    }
    out.host = std::string(authority);
  }
  if (out.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
    if (ec != std::errc() || ptr != end || port == 0 || port > 65535)
      return bad("port must be a number in 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

struct HttpClient::Impl {
  HttpUrl url;
  HttpClientOptions options;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> conn;  // the keep-alive connection of Request
  beast::flat_buffer conn_buffer;

  // Runs the io_context until the operations just started have completed.
  void RunIo() {
    ioc.restart();
    ioc.run();
  }

  std::string Target(std::string_view target) const {
    std::string out = url.base_path;
    if (target.empty() || target.front() != '/') out += '/';
    out += target;
    return out;
  }

  Result<beast::tcp_stream> Connect() {
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
    if (ec) {
      return Error(errc::unavailable, "cannot connect to " + url.ToString() +
                                          ": cannot resolve host '" + url.host +
                                          "': " + ec.message());
    }
    beast::tcp_stream stream(ioc);
    stream.expires_after(options.connect_timeout);
    stream.async_connect(endpoints,
                         [&ec](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
    RunIo();
    if (ec == beast::error::timeout) {
      return Error(errc::timeout, "cannot connect to " + url.ToString() + ": timed out after " +
                                      Millis(options.connect_timeout) + kServeHint);
    }
    if (ec) {
      return Error(errc::unavailable, "cannot connect to " + url.ToString() + ": " +
                                          Sentence(ec.message()) + kServeHint);
    }
    beast::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    return stream;
  }

  http::request<http::string_body> MakeRequest(std::string_view method, std::string_view target,
                                               std::string_view body,
                                               const HttpHeaders& headers) const {
    http::request<http::string_body> req;
    const http::verb verb = http::string_to_verb(Bsv(method));
    if (verb == http::verb::unknown) {
      req.method_string(Bsv(method));
    } else {
      req.method(verb);
    }
    req.target(Target(target));
    req.version(11);
    req.set(http::field::host, url.HostHeader());
    req.set(http::field::user_agent, kUserAgent);
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = std::string(body);
    if (!body.empty() || verb == http::verb::post || verb == http::verb::put ||
        verb == http::verb::patch) {
      req.prepare_payload();
    }
    return req;
  }

  Error ReadError(const beast::error_code& ec, std::string_view what) const {
    const std::string where = " (" + std::string(what) + " " + url.ToString() + ")";
    if (ec == beast::error::timeout) {
      return Error(errc::timeout, "no response within " + Millis(options.read_timeout) + where);
    }
    if (IsClosedByPeer(ec)) {
      return Error(errc::unavailable,
                   "the server closed the connection before a complete response" + where);
    }
    if (ec == http::error::body_limit) {
      return Error(errc::io_error, "response body over " + std::to_string(options.max_body_bytes) +
                                       " bytes" + where);
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      return Error(errc::io_error, "malformed HTTP response: " + ec.message() + where);
    }
    return Error(errc::unavailable, "connection error: " + Sentence(ec.message()) + where);
  }

  void CloseConn() {
    if (conn) {
      beast::error_code ignored;
      conn->socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn->close();
      conn.reset();
    }
    conn_buffer.clear();
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() {
  if (impl_) impl_->CloseConn();
}

Result<HttpClient> HttpClient::Create(std::string_view base_url, HttpClientOptions options) {
  auto url = ParseHttpUrl(base_url);
  if (!url) return url.error();
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(*url);
  impl->options = options;
  return HttpClient(std::move(impl));
}

const HttpUrl& HttpClient::url() const { return impl_->url; }

Result<HttpClientResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                               std::string_view body, const HttpHeaders& headers) {
  Impl& im = *impl_;
  auto req = im.MakeRequest(method, target, body, headers);
  req.keep_alive(true);
  const std::string what = std::string(method) + " " + im.Target(target);
  // Two tries: a reused keep-alive connection may have been closed by the
  // server while idle; then nothing was answered and the request is sent
  // again on a new connection.
  for (int attempt = 0;; ++attempt) {
    const bool reused = im.conn.has_value();
    if (!im.conn) {
      auto stream = im.Connect();
      if (!stream) return stream.error();
      im.conn.emplace(std::move(*stream));
      im.conn_buffer.clear();
    }
    beast::error_code ec;
    im.conn->expires_after(im.options.read_timeout);
    http::async_write(*im.conn, req, [&ec](const beast::error_code& e, size_t) { ec = e; });
    im.RunIo();
    http::response_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(im.options.max_body_bytes);
    if (!ec) {
      http::async_read_header(*im.conn, im.conn_buffer, parser,
                              [&ec](const beast::error_code& e, size_t) { ec = e; });
      im.RunIo();
    }
    // Beast 1.74 skips body_limit for a Content-Length body parsed in the same
    // call as its header, so the length is checked here.
    if (!ec && parser.content_length() && *parser.content_length() > im.options.max_body_bytes)
      ec = http::error::body_limit;
    if (!ec && !parser.is_done()) {
      http::async_read(*im.conn, im.conn_buffer, parser,
                       [&ec](const beast::error_code& e, size_t) { ec = e; });
      im.RunIo();
    }
    if (!ec) {
      auto res = parser.release();
      HttpClientResponse out;
      out.status = static_cast<int>(res.result_int());
      out.headers = HeaderMap(res.base());
      out.body = std::move(res.body());
      if (!res.keep_alive()) im.CloseConn();
      return out;
    }
    const bool stale = reused && attempt == 0 && IsClosedByPeer(ec) && !parser.got_some();
    im.CloseConn();
    if (!stale) return im.ReadError(ec, what);
  }
}

Result<HttpClientResponse> HttpClient::Stream(std::string_view target, const HttpHeaders& headers,
                                              const StreamCallback& on_data,
                                              std::chrono::milliseconds duration) {
  Impl& im = *impl_;
  const auto started = SteadyClock::now();
  const std::string what = "GET " + im.Target(target);
  auto connected = im.Connect();
  if (!connected) return connected.error();
  beast::tcp_stream stream = std::move(*connected);
  auto close = [&stream] {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  };

  auto req = im.MakeRequest("GET", target, {}, headers);
  if (req.find(http::field::accept) == req.end()) req.set(http::field::accept, "text/event-stream");
  req.set(http::field::cache_control, "no-cache");
  beast::error_code ec;
  stream.expires_after(im.options.read_timeout);
  http::async_write(stream, req, [&ec](const beast::error_code& e, size_t) { ec = e; });
  im.RunIo();
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) {
    http::async_read_header(stream, buffer, parser,
                            [&ec](const beast::error_code& e, size_t) { ec = e; });
    im.RunIo();
  }
  if (ec) {
    close();
    return im.ReadError(ec, what);
  }
  HttpClientResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.headers = HeaderMap(parser.get().base());
  const bool success = out.status >= 200 && out.status < 300;

  const auto deadline = duration.count() > 0 ? started + duration : SteadyClock::time_point::max();
  std::string chunk(16 * 1024, '\0');
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    parser.get().body().more = true;
    if (success) {
      const auto now = SteadyClock::now();
      auto expiry = deadline;
      if (im.options.stream_idle_timeout.count() > 0)
        expiry = std::min(expiry, now + im.options.stream_idle_timeout);
      if (expiry == SteadyClock::time_point::max()) {
        stream.expires_never();
      } else {
        stream.expires_at(expiry);
      }
    } else {
      stream.expires_after(im.options.read_timeout);
    }
    ec = {};
    http::async_read_some(stream, buffer, parser,
                          [&ec](const beast::error_code& e, size_t) { ec = e; });
    im.RunIo();
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = chunk.size() - parser.get().body().size;
    if (n > 0) {
      const std::string_view bytes(chunk.data(), n);
      if (success) {
        if (!on_data(bytes)) break;
      } else {
        if (out.body.size() + n > im.options.max_body_bytes) {
          close();
          return im.ReadError(http::error::body_limit, what);
        }
        out.body.append(bytes);
      }
    }
    if (!ec) continue;
    if (ec == beast::error::timeout && success) {
      if (SteadyClock::now() >= deadline) break;  // the caller's duration is over
      close();
      return Error(errc::timeout, "the stream was silent for " +
                                      Millis(im.options.stream_idle_timeout) + " (" + what + " " +
                                      im.url.ToString() + ")");
    }
    if (IsClosedByPeer(ec) && success) break;  // the server ended the stream
    close();
    return im.ReadError(ec, what);
  }
  close();
  return out;
}

}  // namespace embedstream::server
