#pragma once
// RedisConnection: a small blocking Redis client speaking RESP2 over one TCP
// connection (plain POSIX sockets, poll() for timeouts; no TLS), plus the
// protocol pieces it is built from: ParseRedisReply (a reply decoder that
// never reads past its input and refuses anything that is not RESP2) and
// AppendRedisCommand (the request encoder).
//
// Threads and ownership: a RedisConnection owns its socket and is used by one
// thread at a time (not thread-safe), except Interrupt, which any thread may
// call while another is blocked in Read or Command.
//
// Errors are values. A Redis error reply ("-ERR ...") is not an Error: it is
// a RedisReply of type kError. Transport failures, timeouts, a peer that
// closes, and bytes that are not RESP2 are Error(unavailable) and leave the
// connection broken (ok() false; every later call fails at once): reconnect.
//
// Example:
//   auto options = ParseRedisUrl("redis://:secret@localhost:6379/2");
//   if (!options) return options.error();
//   auto conn = RedisConnection::Connect(*options);
//   if (!conn) return conn.error();
//   auto reply = (*conn)->Command({"SET", "key", "value"});
//   if (!reply) return reply.error();          // transport: reconnect
//   if (reply->is_error()) ...                 // Redis said no: reply->str
//
//   // Pipelining: queue, then read the replies in order.
//   (*conn)->Send({"INCR", "a"});
//   (*conn)->Send({"INCR", "b"});
//   auto a = (*conn)->Read(options->io_timeout);
//   auto b = (*conn)->Read(options->io_timeout);

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace embedstream::server {

// One RESP2 reply.
struct RedisReply {
  enum class Type { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  std::string str;                   // kStatus, kError, kString
  int64_t integer = 0;               // kInteger
  std::vector<RedisReply> elements;  // kArray (a nil array is kNil)

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  // For logs and test failures: "\"value\"", "(nil)", "(error) ERR ...",
  // "(integer) 3", "OK", "[\"a\", (integer) 1]". Strings are cut at 64 bytes.
  std::string ToString() const;

  friend bool operator==(const RedisReply&, const RedisReply&) = default;
};

// The limits of ParseRedisReply besides max_bulk_bytes.
inline constexpr int kRedisReplyDepthMax = 64;                        // nested arrays
inline constexpr int64_t kRedisArrayElementsMax = int64_t{16} << 20;  // 16 Mi elements

// Parses one reply from the front of `in`. Returns the bytes consumed (> 0),
// 0 when `in` does not yet hold a whole reply (every strict prefix of a valid
// reply gives 0), or Error(invalid_argument) for bytes that are not RESP2:
// an unknown type byte (RESP3 types included), a length below -1, a number
// that is not a decimal int64, a line without CRLF, arrays nested deeper than
// kRedisReplyDepthMax, a bulk string (or status/error line) longer than
// `max_bulk_bytes` or an array of more than kRedisArrayElementsMax elements.
// Never reads past `in`; `out` is assigned only when a whole reply was parsed.
Result<size_t> ParseRedisReply(std::string_view in, RedisReply& out,
                               size_t max_bulk_bytes = size_t{512} << 20);

// Appends the RESP encoding of a command: an array of bulk strings.
// {"SET", "k", "v"} -> "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".
void AppendRedisCommand(std::string& out, std::span<const std::string_view> args);

struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string
      password;  // AUTH when set (AUTH <password>, or AUTH <user> <password> when username set)
  std::string username;
  int db = 0;  // SELECT when != 0
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds io_timeout{5000};  // per read/write; a blocking command passes its own
};

// redis://[[user]:password@]host[:port][/db], also "host[:port]" without a
// scheme. The scheme is case-insensitive, IPv6 hosts go in brackets
// ([::1]:6379), user and password may be percent-encoded. Refuses rediss://
// ("TLS not supported"), other schemes, a user without a password, queries
// and fragments, ports outside 1..65535 and a db that is not a number >= 0;
// all as Error(invalid_argument). Timeouts keep their defaults.
Result<RedisOptions> ParseRedisUrl(std::string_view url);

class RedisConnection {
 public:
  // Resolves the host (getaddrinfo, not bounded by connect_timeout), connects
  // over TCP with TCP_NODELAY within connect_timeout, then sends AUTH and
  // SELECT as configured. A refused AUTH or SELECT is Error(unavailable)
  // with Redis's message (never the password).
  static Result<std::unique_ptr<RedisConnection>> Connect(const RedisOptions& options);
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();  // closes the socket

  // One command, one reply, within io_timeout. A Redis error reply is a
  // RedisReply of type kError; transport failures and timeouts are
  // Error(unavailable) and break the connection. Calling it while pipelined
  // replies are still unread is Error(invalid_argument) (the connection stays
  // usable): Read those first.
  Result<RedisReply> Command(std::span<const std::string_view> args);
  Result<RedisReply> Command(std::initializer_list<std::string_view> args);

  // Pipelining: Send queues a command (nothing is written yet), Flush writes
  // everything queued (within io_timeout), Read flushes too and returns the
  // next reply. Replies come in the order the commands were sent. A blocking
  // command (XREAD BLOCK 5000, BLPOP) is a Send and a Read with a timeout above
  // the time it blocks.
  Status Send(std::span<const std::string_view> args);
  Status Send(std::initializer_list<std::string_view> args);
  Status Flush();
  Result<RedisReply> Read(std::chrono::milliseconds timeout);

  // False once a transport error, timeout, malformed reply or Interrupt broke it.
  bool ok() const;
  // Any thread: makes a blocked (or the next) Read / Command / Flush return
  // Error(unavailable) promptly, by shutdown(2) of the socket. Breaks the
  // connection for good.
  void Interrupt();

  const RedisOptions& options() const { return options_; }

 private:
  RedisConnection(int fd, RedisOptions options);
  // Fails when broken or interrupted, naming why.
  Status CheckUsable() const;
  // Marks the connection broken and returns Error(unavailable) with `what`.
  Error Broken(const std::string& what);
  // Waits until the socket is readable (POLLIN) or writable (POLLOUT) or the
  // deadline passes.
  Status WaitFor(short events, std::chrono::steady_clock::time_point deadline,
                 std::chrono::milliseconds timeout, const char* doing);
  Status FlushUntil(std::chrono::steady_clock::time_point deadline,
                    std::chrono::milliseconds timeout);
  std::string Where() const;  // "redis 127.0.0.1:6379"

  int fd_ = -1;
  RedisOptions options_;
  std::string write_buffer_;  // queued by Send, not yet written
  std::string read_buffer_;   // received, not yet parsed from read_offset_ on
  size_t read_offset_ = 0;
  size_t replies_pending_ = 0;  // sent commands whose replies are unread
  bool broken_ = false;
  std::string broken_reason_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace embedstream::server
