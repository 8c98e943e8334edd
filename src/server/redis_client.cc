#include "server/redis_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <utility>

namespace embedstream::server {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Reads from the socket at least this much at a time (more when a large reply
// is arriving, so a long reply is parsed O(log n) times rather than once per
// 64 KiB).
constexpr size_t kReadChunkMinBytes = size_t{64} << 10;
// A number line (":", "$", "*") holds at most "-9223372036854775808".
constexpr size_t kNumberLineMaxBytes = 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Millis(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

std::string HostPort(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// "connection refused" style text for errno.
std::string ErrnoText(int err) { return std::strerror(err); }

// Decodes one RESP2 reply; see ParseRedisReply. Each step returns kOk (the
// position advanced), kNeedMore (the input ends inside the reply) or kBad
// (error_ says why).
class ReplyParser {
 public:
  enum class Step { kOk, kNeedMore, kBad };

  ReplyParser(std::string_view in, size_t max_bulk_bytes)
      : in_(in), max_bulk_bytes_(max_bulk_bytes) {}

  Step Parse(RedisReply& out, int depth) {
    if (pos_ >= in_.size()) return Step::kNeedMore;
    const size_t start = pos_;
    const char type = in_[pos_++];
    switch (type) {
      case '+':
      case '-': {
        std::string_view line;
        if (const Step s = Line(line); s != Step::kOk) return s;
        out.type = type == '+' ? RedisReply::Type::kStatus : RedisReply::Type::kError;
        out.str.assign(line);
        return Step::kOk;
      }
      case ':': {
        int64_t value = 0;
        if (const Step s = Number(value); s != Step::kOk) return s;
        out.type = RedisReply::Type::kInteger;
        out.integer = value;
        return Step::kOk;
      }
      case '$':
        return Bulk(out, start);
      case '*':
        return Array(out, start, depth);
      default:
        return Bad(start, "unknown reply type byte 0x" + Hex(type));
    }
  }

  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

 private:
  static std::string Hex(char c) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return {kDigits[u >> 4], kDigits[u & 0xf]};
  }

  Step Bad(size_t at, std::string why) {
    error_ = "malformed RESP2 reply at byte " + std::to_string(at) + ": " + std::move(why);
    return Step::kBad;
  }

  // A simple-string line up to CRLF (no CR or LF inside).
  Step Line(std::string_view& line) {
    const size_t start = pos_;
    const size_t end = in_.find_first_of("\r\n", pos_);
    if (end == std::string_view::npos) {
      if (in_.size() - start > max_bulk_bytes_) return Bad(start, "line longer than the limit");
      return Step::kNeedMore;
    }
    if (end - start > max_bulk_bytes_) return Bad(start, "line longer than the limit");
    if (in_[end] == '\n') return Bad(end, "LF without CR");
    if (end + 1 >= in_.size()) return Step::kNeedMore;
    if (in_[end + 1] != '\n') return Bad(end, "CR not followed by LF");
    line = in_.substr(start, end - start);
    pos_ = end + 2;
    return Step::kOk;
  }

  // A decimal int64 up to CRLF: an optional '-' then digits. Bad bytes are
  // refused as soon as they arrive, before the CRLF.
  Step Number(int64_t& value) {
    const size_t start = pos_;
    size_t i = start;
    for (; i < in_.size() && in_[i] != '\r'; ++i) {
      const char c = in_[i];
      const bool ok = (c >= '0' && c <= '9') || (c == '-' && i == start);
      if (!ok) return Bad(i, "expected a decimal number, got byte 0x" + Hex(c));
      if (i - start >= kNumberLineMaxBytes) return Bad(start, "number too long");
    }
    if (i >= in_.size() || i + 1 >= in_.size()) return Step::kNeedMore;
    if (in_[i + 1] != '\n') return Bad(i, "CR not followed by LF");
    const char* first = in_.data() + start;
    const char* last = in_.data() + i;
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (first == last || ec != std::errc() || ptr != last) {
      return Bad(start, "'" + std::string(first, last) + "' is not a 64-bit integer");
    }
    pos_ = i + 2;
    return Step::kOk;
  }

  Step Bulk(RedisReply& out, size_t start) {
    int64_t length = 0;
    if (const Step s = Number(length); s != Step::kOk) return s;
    if (length == -1) {
      out.type = RedisReply::Type::kNil;
      return Step::kOk;
    }
    if (length < 0) return Bad(start, "negative bulk length " + std::to_string(length));
    if (static_cast<uint64_t>(length) > max_bulk_bytes_) {
      return Bad(start, "bulk length " + std::to_string(length) + " over the limit of " +
                            std::to_string(max_bulk_bytes_) + " bytes");
    }
    const auto size = static_cast<size_t>(length);
    const size_t available = in_.size() - pos_;
    if (available > size && in_[pos_ + size] != '\r') {
      return Bad(pos_ + size, "bulk string not followed by CRLF");
    }
    if (available < size + 2) return Step::kNeedMore;
    if (in_[pos_ + size + 1] != '\n') return Bad(pos_ + size, "bulk string not followed by CRLF");
    out.type = RedisReply::Type::kString;
    out.str.assign(in_.substr(pos_, size));
    pos_ += size + 2;
    return Step::kOk;
  }

  Step Array(RedisReply& out, size_t start, int depth) {
    if (depth >= kRedisReplyDepthMax) {
      return Bad(start, "arrays nested deeper than " + std::to_string(kRedisReplyDepthMax));
    }
    int64_t count = 0;
    if (const Step s = Number(count); s != Step::kOk) return s;
    if (count == -1) {
      out.type = RedisReply::Type::kNil;
      return Step::kOk;
    }
    if (count < 0) return Bad(start, "negative array length " + std::to_string(count));
    if (count > kRedisArrayElementsMax) {
      return Bad(start, "array of " + std::to_string(count) + " elements, over the limit of " +
                            std::to_string(kRedisArrayElementsMax));
    }
    out.type = RedisReply::Type::kArray;
    out.elements.clear();
    // Each element takes at least 3 bytes ("+\r\n"): reserve no more than the
    // input can hold, whatever the declared count.
    out.elements.reserve(std::min(static_cast<size_t>(count), (in_.size() - pos_) / 3));
    for (int64_t i = 0; i < count; ++i) {
      RedisReply& element = out.elements.emplace_back();
      if (const Step s = Parse(element, depth + 1); s != Step::kOk) return s;
    }
    return Step::kOk;
  }

  std::string_view in_;
  size_t max_bulk_bytes_;
  size_t pos_ = 0;
  std::string error_;
};

void AppendReplyText(const RedisReply& reply, std::string& out) {
  constexpr size_t kShownBytesMax = 64;
  auto quoted = [&out](std::string_view s) {
    out += '"';
    out.append(s.substr(0, kShownBytesMax));
    if (s.size() > kShownBytesMax) out += "...";
    out += '"';
  };
  switch (reply.type) {
    case RedisReply::Type::kNil:
      out += "(nil)";
      break;
    case RedisReply::Type::kStatus:
      out.append(std::string_view(reply.str).substr(0, kShownBytesMax));
      break;
    case RedisReply::Type::kError:
      out += "(error) ";
      out.append(std::string_view(reply.str).substr(0, kShownBytesMax));
      break;
    case RedisReply::Type::kInteger:
      out += "(integer) " + std::to_string(reply.integer);
      break;
    case RedisReply::Type::kString:
      quoted(reply.str);
      break;
    case RedisReply::Type::kArray:
      out += '[';
      for (size_t i = 0; i < reply.elements.size(); ++i) {
        if (i > 0) out += ", ";
        AppendReplyText(reply.elements[i], out);
      }
      out += ']';
      break;
  }
}

// Percent-decodes a URL's user or password; false on a bad escape.
bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex(in[i + 1]);
    const int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// The URL with the password replaced by "***", for error messages.
std::string MaskPassword(std::string_view url) {
  const size_t sep = url.find("://");
  const size_t authority_begin = sep == std::string_view::npos ? 0 : sep + 3;
  const size_t authority_end = url.find_first_of("/?#", authority_begin);
  const std::string_view authority = url.substr(
      authority_begin, authority_end == std::string_view::npos ? std::string_view::npos
                                                               : authority_end - authority_begin);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, authority_begin + colon + 1));
  out += "***";
  out.append(url.substr(authority_begin + at));
  return out;
}

}  // namespace

std::string RedisReply::ToString() const {
  std::string out;
  AppendReplyText(*this, out);
  return out;
}

Result<size_t> ParseRedisReply(std::string_view in, RedisReply& out, size_t max_bulk_bytes) {
  ReplyParser parser(in, max_bulk_bytes);
  RedisReply reply;
  switch (parser.Parse(reply, 0)) {
    case ReplyParser::Step::kOk:
      out = std::move(reply);
      return parser.pos();
    case ReplyParser::Step::kNeedMore:
      return size_t{0};
    case ReplyParser::Step::kBad:
      break;
  }
  return Error(errc::invalid_argument, parser.error());
}

void AppendRedisCommand(std::string& out, std::span<const std::string_view> args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const std::string_view arg : args) {
    out += '$';
    out += std::to_string(arg.size());
    out += "\r\n";
    out.append(arg);
    out += "\r\n";
  }
}

Result<RedisOptions> ParseRedisUrl(std::string_view url) {
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.front())))
    url.remove_prefix(1);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.remove_suffix(1);
  const std::string shown = MaskPassword(url);
  auto bad = [&shown](const std::string& why) {
    return Error(errc::invalid_argument, "invalid Redis URL '" + shown + "': " + why);
  };
  if (url.empty()) return bad("empty; expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
  if (const size_t sep = url.find("://"); sep != std::string_view::npos) {
    const std::string scheme = Lower(url.substr(0, sep));
    if (scheme == "rediss") {
      return Error(errc::invalid_argument,
                   "Redis URL '" + shown +
                       "': TLS not supported (rediss://); embedstream's Redis client speaks "
                       "plain TCP only. Use redis://, or reach a TLS endpoint through a local "
                       "proxy or tunnel");
    }
    if (scheme != "redis") return bad("scheme '" + scheme + "' is not supported; use redis://");
    url.remove_prefix(sep + 3);
  }
  const size_t authority_end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view{} : url.substr(authority_end);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return bad("queries and fragments are not supported; put the db in the path (/DB)");
  }

  RedisOptions out;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view user_info = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const size_t colon = user_info.find(':');
    if (colon == std::string_view::npos) {
      return bad("a user name needs a password: redis://USER:PASSWORD@HOST (or :PASSWORD@HOST)");
    }
    if (!PercentDecode(user_info.substr(0, colon), out.username) ||
        !PercentDecode(user_info.substr(colon + 1), out.password)) {
      return bad("bad percent-encoding in the user or password");
    }
    if (out.password.empty() && !out.username.empty()) {
      return bad("a user name needs a password: redis://USER:PASSWORD@HOST (or :PASSWORD@HOST)");
    }
  }

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated '[' in the IPv6 host");
    out.host = std::string(authority.substr(1, close - 1));
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':PORT' after the IPv6 host");
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos) {
        return bad("an IPv6 host must be in brackets, e.g. redis://[::1]:6379");
      }
      port_text = authority.substr(colon + 1);
      has_port = true;
      authority = authority.substr(0, colon);
    }
    out.host = std::string(authority);
  }
  if (out.host.empty()) return bad("no host");
  if (has_port) {
    unsigned port = 0;
    const char* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
    if (port_text.empty() || ec != std::errc() || ptr != end || port == 0 || port > 65535) {
      return bad("port must be a number in 1..65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (!path.empty()) path.remove_prefix(1);  // the '/'
  if (!path.empty()) {
    int db = 0;
    const char* end = path.data() + path.size();
    const auto [ptr, ec] = std::from_chars(path.data(), end, db);
    if (ec != std::errc() || ptr != end || db < 0) return bad("db must be a number >= 0");
    out.db = db;
  }
  return out;
}

Result<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const RedisOptions& options) {
  const std::string where = "redis " + HostPort(options.host, options.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(options.port);
  if (const int rc = ::getaddrinfo(options.host.c_str(), port_text.c_str(), &hints, &found);
      rc != 0) {
    return Error(errc::unavailable, "cannot connect to " + where + ": cannot resolve host '" +
                                        options.host + "': " + ::gai_strerror(rc));
  }
  const auto deadline = SteadyClock::now() + options.connect_timeout;
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    const int candidate =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (candidate < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    int err = 0;
    if (::connect(candidate, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        err = ETIMEDOUT;
        for (;;) {
          const auto left =
              std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
          if (left.count() <= 0) break;
          pollfd p{candidate, POLLOUT, 0};
          const int ready =
              ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
          if (ready == 0 || (ready < 0 && errno == EINTR)) continue;  // the deadline decides
          if (ready < 0) {
            err = errno;
            break;
          }
          socklen_t len = sizeof(err);
          if (::getsockopt(candidate, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          break;
        }
      }
    }
    if (err == 0) {
      fd = candidate;
      break;
    }
    last_error =
        err == ETIMEDOUT ? "timed out after " + Millis(options.connect_timeout) : ErrnoText(err);
    ::close(candidate);
  }
  ::freeaddrinfo(found);
  if (fd < 0) return Error(errc::unavailable, "cannot connect to " + where + ": " + last_error);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  std::unique_ptr<RedisConnection> conn(new RedisConnection(fd, options));
  if (!options.password.empty()) {
    auto reply = options.username.empty()
                     ? conn->Command({"AUTH", options.password})
                     : conn->Command({"AUTH", options.username, options.password});
    if (!reply) return reply.error();
    if (reply->type != RedisReply::Type::kStatus) {
      return Error(errc::unavailable,
                   where + ": AUTH refused: " +
                       (reply->is_error() ? reply->str : "unexpected reply " + reply->ToString()));
    }
  }
  if (options.db != 0) {
    const std::string db = std::to_string(options.db);
    auto reply = conn->Command({"SELECT", db});
    if (!reply) return reply.error();
    if (reply->type != RedisReply::Type::kStatus) {
      return Error(errc::unavailable,
                   where + ": SELECT " + db + " refused: " +
                       (reply->is_error() ? reply->str : "unexpected reply " + reply->ToString()));
    }
  }
  return conn;
}

RedisConnection::RedisConnection(int fd, RedisOptions options)
    : fd_(fd), options_(std::move(options)) {}

RedisConnection::~RedisConnection() {
  if (fd_ >= 0) ::close(fd_);
}

std::string RedisConnection::Where() const {
  return "redis " + HostPort(options_.host, options_.port);
}

bool RedisConnection::ok() const { return !broken_ && !interrupted_.load(); }

void RedisConnection::Interrupt() {
  interrupted_.store(true);
  ::shutdown(fd_, SHUT_RDWR);
}

Status RedisConnection::CheckUsable() const {
  if (interrupted_.load()) return Error(errc::unavailable, Where() + ": connection interrupted");
  if (broken_) {
    return Error(errc::unavailable,
                 Where() + ": connection broken earlier (" + broken_reason_ + "); reconnect");
  }
  return Status::Ok();
}

Error RedisConnection::Broken(const std::string& what) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = what;
  }
  if (interrupted_.load()) return Error(errc::unavailable, Where() + ": connection interrupted");
  return Error(errc::unavailable, Where() + ": " + what);
}

Status RedisConnection::WaitFor(short events, SteadyClock::time_point deadline,
                                std::chrono::milliseconds timeout, const char* doing) {
  for (;;) {
    if (interrupted_.load()) return Broken("interrupted");
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      return Broken(std::string("timed out after ") + Millis(timeout) + " " + doing);
    }
    pollfd p{fd_, events, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Broken(std::string("poll failed ") + doing + ": " + ErrnoText(errno));
    }
    // Readable, writable, hung up or failed: recv/send tells which.
    if (ready > 0) return Status::Ok();
  }
}

Status RedisConnection::FlushUntil(SteadyClock::time_point deadline,
                                   std::chrono::milliseconds timeout) {
  size_t written = 0;
  while (written < write_buffer_.size()) {
    const ssize_t n = ::send(fd_, write_buffer_.data() + written, write_buffer_.size() - written,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (Status s = WaitFor(POLLOUT, deadline, timeout, "writing a command"); !s) return s;
      continue;
    }
    return Broken("write failed: " + ErrnoText(errno));
  }
  write_buffer_.clear();
  return Status::Ok();
}

Status RedisConnection::Send(std::span<const std::string_view> args) {
  if (Status s = CheckUsable(); !s) return s;
  // Redis answers nothing to an empty command, which would shift every reply after it.
  if (args.empty()) return Error(errc::invalid_argument, Where() + ": empty command");
  AppendRedisCommand(write_buffer_, args);
  ++replies_pending_;
  return Status::Ok();
}

Status RedisConnection::Send(std::initializer_list<std::string_view> args) {
  return Send(std::span<const std::string_view>(args.begin(), args.size()));
}

Status RedisConnection::Flush() {
  if (Status s = CheckUsable(); !s) return s;
  return FlushUntil(SteadyClock::now() + options_.io_timeout, options_.io_timeout);
}

Result<RedisReply> RedisConnection::Read(std::chrono::milliseconds timeout) {
  if (Status s = CheckUsable(); !s) return s.error();
  const auto deadline = SteadyClock::now() + timeout;
  if (!write_buffer_.empty()) {
    if (Status s = FlushUntil(deadline, timeout); !s) return s.error();
  }
  // The size of the unread bytes when they last parsed as incomplete: no
  // point in parsing them again before more arrive.
  size_t incomplete_size = 0;
  for (;;) {
    const std::string_view unread = std::string_view(read_buffer_).substr(read_offset_);
    if (unread.size() > incomplete_size) {
      RedisReply reply;
      auto parsed = ParseRedisReply(unread, reply);
      if (!parsed) return Broken(parsed.error().message);
      if (*parsed > 0) {
        read_offset_ += *parsed;
        if (read_offset_ == read_buffer_.size()) {
          read_buffer_.clear();
          read_offset_ = 0;
        } else if (read_offset_ >= read_buffer_.size() / 2) {
          read_buffer_.erase(0, read_offset_);
          read_offset_ = 0;
        }
        if (replies_pending_ > 0) --replies_pending_;
        return reply;
      }
      incomplete_size = unread.size();
    }
    if (Status s = WaitFor(POLLIN, deadline, timeout, "waiting for a reply"); !s) {
      return s.error();
    }
    // Take what has arrived, up to a chunk as large as the unread part.
    const size_t chunk = std::max(kReadChunkMinBytes, unread.size());
    size_t received = 0;
    while (received < chunk) {
      const size_t old_size = read_buffer_.size();
      read_buffer_.resize(old_size + (chunk - received));
      const ssize_t n = ::recv(fd_, read_buffer_.data() + old_size, chunk - received, MSG_DONTWAIT);
      read_buffer_.resize(old_size + static_cast<size_t>(std::max<ssize_t>(n, 0)));
      if (n > 0) {
        received += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        if (interrupted_.load()) return Broken("interrupted");
        return Broken("the server closed the connection");
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Broken("read failed: " + ErrnoText(errno));
    }
  }
}

Result<RedisReply> RedisConnection::Command(std::span<const std::string_view> args) {
  if (Status s = CheckUsable(); !s) return s.error();
  if (replies_pending_ > 0) {
    return Error(errc::invalid_argument, Where() + ": Command while " +
                                             std::to_string(replies_pending_) +
                                             " pipelined replies are unread; Read them first");
  }
  if (Status s = Send(args); !s) return s.error();
  return Read(options_.io_timeout);
}

Result<RedisReply> RedisConnection::Command(std::initializer_list<std::string_view> args) {
  return Command(std::span<const std::string_view>(args.begin(), args.size()));
}

}  // namespace embedstream::server
