#include "server/redis_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace embedstream::server {

// gtest prints replies with this in failure messages.
void PrintTo(const RedisReply& reply, std::ostream* os) { *os << reply.ToString(); }

namespace {

using namespace std::chrono_literals;
using Type = RedisReply::Type;

RedisReply Str(std::string s) {
  RedisReply r;
  r.type = Type::kString;
  r.str = std::move(s);
  return r;
}
RedisReply Int(int64_t v) {
  RedisReply r;
  r.type = Type::kInteger;
  r.integer = v;
  return r;
}
RedisReply Arr(std::vector<RedisReply> elements) {
  RedisReply r;
  r.type = Type::kArray;
  r.elements = std::move(elements);
  return r;
}

// Parses `in` as exactly one whole reply.
RedisReply ParseWhole(std::string_view in) {
  RedisReply reply;
  auto n = ParseRedisReply(in, reply);
  EXPECT_TRUE(n.ok()) << n.error().ToString();
  if (n.ok()) {
    EXPECT_EQ(*n, in.size()) << "'" << in << "'";
  }
  return reply;
}

// --- the reply parser -------------------------------------------------------

TEST(RedisReplyParser, ParsesEachType) {
  RedisReply r = ParseWhole("+OK\r\n");
  EXPECT_EQ(r.type, Type::kStatus);
  EXPECT_EQ(r.str, "OK");

  r = ParseWhole("-ERR unknown command 'FOO'\r\n");
  EXPECT_EQ(r.type, Type::kError);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.str, "ERR unknown command 'FOO'");

  r = ParseWhole(":1000\r\n");
  EXPECT_EQ(r.type, Type::kInteger);
  EXPECT_EQ(r.integer, 1000);
  EXPECT_EQ(ParseWhole(":-42\r\n").integer, -42);
  EXPECT_EQ(ParseWhole(":9223372036854775807\r\n").integer, INT64_MAX);
  EXPECT_EQ(ParseWhole(":-9223372036854775808\r\n").integer, INT64_MIN);

  r = ParseWhole("$5\r\nhello\r\n");
  EXPECT_EQ(r.type, Type::kString);
  EXPECT_EQ(r.str, "hello");

  // Bulk strings are binary: CR, LF and NUL inside are data.
  r = ParseWhole(std::string_view("$6\r\na\r\n\0b\n\r\n", 12));
  EXPECT_EQ(r.str, std::string_view("a\r\n\0b\n", 6));

  r = ParseWhole("$0\r\n\r\n");
  EXPECT_EQ(r.type, Type::kString);
  EXPECT_EQ(r.str, "");

  r = ParseWhole("+\r\n");  // an empty status
  EXPECT_EQ(r.type, Type::kStatus);
  EXPECT_EQ(r.str, "");

  r = ParseWhole("*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n");
  EXPECT_EQ(r.type, Type::kArray);
  ASSERT_EQ(r.elements.size(), 3u);
  EXPECT_EQ(r.elements[0], Int(1));
  EXPECT_EQ(r.elements[1], Str("foo"));
  EXPECT_EQ(r.elements[2].type, Type::kStatus);

  r = ParseWhole("*0\r\n");
  EXPECT_EQ(r.type, Type::kArray);
  EXPECT_TRUE(r.elements.empty());
}

TEST(RedisReplyParser, NilBulkAndNilArrayAreNil) {
  RedisReply r = ParseWhole("$-1\r\n");
  EXPECT_EQ(r.type, Type::kNil);
  EXPECT_TRUE(r.is_nil());
  r = ParseWhole("*-1\r\n");
  EXPECT_TRUE(r.is_nil());
  r = ParseWhole("*2\r\n$-1\r\n*-1\r\n");
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_TRUE(r.elements[0].is_nil());
  EXPECT_TRUE(r.elements[1].is_nil());
}

TEST(RedisReplyParser, ParsesNestedArrays) {
  // The shape of XRANGE: [[id, [field, value, ...]], ...].
  const RedisReply r = ParseWhole(
      "*2\r\n"
      "*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
      "*2\r\n$3\r\n2-0\r\n*0\r\n");
  const RedisReply want = Arr({Arr({Str("1-0"), Arr({Str("f"), Str("v")})}),  //
                               Arr({Str("2-0"), Arr({})})});
  EXPECT_EQ(r, want);
  EXPECT_EQ(r.ToString(), R"([["1-0", ["f", "v"]], ["2-0", []]])");
}

TEST(RedisReplyParser, ConsumesOneReplyAtATime) {
  const std::string in = "+OK\r\n:7\r\n$2\r\nhi\r\nextra";
  RedisReply r;
  auto n = ParseRedisReply(in, r);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  n = ParseRedisReply(std::string_view(in).substr(5), r);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(r, Int(7));
  n = ParseRedisReply(std::string_view(in).substr(9), r);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 8u);
  EXPECT_EQ(r, Str("hi"));
  n = ParseRedisReply(std::string_view(in).substr(17), r);
  EXPECT_FALSE(n.ok());  // 'e' is no type byte
}

// Every split point of a buffer of several replies: the prefix yields the
// replies it holds whole, then 0 (never an error), and `out` is untouched by
// the incomplete one.
TEST(RedisReplyParser, PartialInputNeedsMoreAtEverySplitPoint) {
  const std::string in =
      "+OK\r\n-ERR wrong\r\n:-123\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n$3\r\nabc\r\n*1\r\n+x\r\n$-1\r\n"
      "*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$10\r\n0123456789\r\n";
  // Reference: the replies and where each ends.
  std::vector<RedisReply> replies;
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < in.size();) {
    RedisReply r;
    auto n = ParseRedisReply(std::string_view(in).substr(pos), r);
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    ASSERT_GT(*n, 0u);
    pos += *n;
    replies.push_back(std::move(r));
    ends.push_back(pos);
  }
  ASSERT_EQ(replies.size(), 10u);
  EXPECT_EQ(ends.back(), in.size());

  for (size_t split = 0; split <= in.size(); ++split) {
    const std::string_view prefix = std::string_view(in).substr(0, split);
    size_t pos = 0;
    size_t count = 0;
    for (;;) {
      RedisReply r;
      r.type = Type::kStatus;
      r.str = "untouched";
      auto n = ParseRedisReply(prefix.substr(pos), r);
      ASSERT_TRUE(n.ok()) << "split " << split << ": " << n.error().ToString();
      if (*n == 0) {
        EXPECT_EQ(r.str, "untouched") << "split " << split;
        break;
      }
      ASSERT_LT(count, replies.size());
      EXPECT_EQ(r, replies[count]) << "split " << split;
      pos += *n;
      EXPECT_EQ(pos, ends[count]) << "split " << split;
      ++count;
    }
    // Exactly the replies that end at or before the split.
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= split) ++whole;
    EXPECT_EQ(count, whole) << "split " << split;
  }
}

TEST(RedisReplyParser, NeverReadsPastTheView) {
  // The bytes after the view would complete the reply; the parser must not see them.
  const std::string buffer = "$3\r\nabc\r\n";
  RedisReply r;
  for (size_t len = 0; len < buffer.size(); ++len) {
    auto n = ParseRedisReply(std::string_view(buffer.data(), len), r);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0u) << len;
  }
}

TEST(RedisReplyParser, RefusesMalformedInput) {
  const std::vector<std::string_view> bad = {
      "?\r\n",                          // unknown type byte
      "x",                              // ... even alone
      "_\r\n",                          // RESP3 null
      "%1\r\n",                         // RESP3 map
      "#t\r\n",                         // RESP3 boolean
      ",1.5\r\n",                       // RESP3 double
      "$-2\r\n",                        // negative lengths other than -1
      "$-100\r\n",                      //
      "*-2\r\n",                        //
      "*-9223372036854775808\r\n",      //
      "$3\r\nabcd\r\n",                 // bulk longer than declared
      "$3\r\nab\r\n\r\n",               // ... shorter
      "$3\r\nabc\r\r",                  // CR then no LF after the bulk
      "$3\r\nabc\n\n",                  // LF without CR
      "+OK\n",                          // missing CR
      "+OK\rX\n",                       // CR not followed by LF
      "-ERR\n",                         //
      ":\r\n",                          // empty number
      ":-\r\n",                         // sign alone
      ":+1\r\n",                        // plus sign
      ": 1\r\n",                        // space
      ":1 \r\n",                        //
      ":12a\r\n",                       // not a digit
      ":1-2\r\n",                       // sign inside
      ":1\n",                           // missing CR
      ":1\rx",                          // CR not followed by LF
      ":9223372036854775808\r\n",       // past INT64_MAX
      ":000000000000000000000001\r\n",  // longer than any int64
      "$abc\r\n",                       // length not a number
      "*1\r\n!\r\n",                    // a bad element
      "*2\r\n:1\r\n:x\r\n",             //
  };
  for (const std::string_view in : bad) {
    RedisReply r;
    auto n = ParseRedisReply(in, r);
    EXPECT_FALSE(n.ok()) << "'" << in << "' parsed, consuming " << (n.ok() ? *n : 0);
    if (!n.ok()) {
      EXPECT_EQ(n.error().code, errc::invalid_argument) << in;
      EXPECT_NE(n.error().message.find("RESP2"), std::string::npos) << n.error().message;
    }
  }
}

TEST(RedisReplyParser, RefusesBadBytesBeforeTheLineEnds) {
  // Not worth waiting for a CRLF that cannot make these valid.
  for (const std::string_view in : {":12x", "$1a", "*--", ":00000000000000000000000"}) {
    RedisReply r;
    EXPECT_FALSE(ParseRedisReply(in, r).ok()) << in;
  }
  // A bulk whose byte after the data is not CR, before the LF arrives.
  RedisReply r;
  EXPECT_FALSE(ParseRedisReply("$3\r\nabcX", r).ok());
}

std::string Nested(int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) out += "*1\r\n";
  out += ":1\r\n";
  return out;
}

TEST(RedisReplyParser, NestingIsLimitedTo64Arrays) {
  RedisReply r = ParseWhole(Nested(kRedisReplyDepthMax));
  for (int i = 0; i < kRedisReplyDepthMax; ++i) {
    ASSERT_EQ(r.type, Type::kArray);
    ASSERT_EQ(r.elements.size(), 1u);
    RedisReply inner = std::move(r.elements[0]);
    r = std::move(inner);
  }
  EXPECT_EQ(r, Int(1));

  auto n = ParseRedisReply(Nested(kRedisReplyDepthMax + 1), r);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, errc::invalid_argument);
  EXPECT_NE(n.error().message.find("nested deeper than 64"), std::string::npos);
  // Far too deep, and cut short: still an error, not a wait.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "*1\r\n";
  EXPECT_FALSE(ParseRedisReply(deep, r).ok());
}

TEST(RedisReplyParser, RefusesLengthsOverTheLimits) {
  RedisReply r;
  // Default limit: 512 MiB per bulk string.
  auto n = ParseRedisReply("$536870912\r\n", r);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);  // exactly the limit: waits for the data
  n = ParseRedisReply("$536870913\r\n", r);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("over the limit"), std::string::npos);
  EXPECT_FALSE(ParseRedisReply("$9223372036854775807\r\n", r).ok());

  // A smaller limit.
  EXPECT_TRUE(ParseRedisReply("$4\r\nabcd\r\n", r, 4).ok());
  EXPECT_EQ(r, Str("abcd"));
  EXPECT_FALSE(ParseRedisReply("$5\r\nabcde\r\n", r, 4).ok());
  EXPECT_FALSE(ParseRedisReply("*1\r\n$5\r\nabcde\r\n", r, 4).ok());
  // Status and error lines count against it too (a line that never ends).
  EXPECT_FALSE(ParseRedisReply("+abcdefgh", r, 4).ok());
  EXPECT_FALSE(ParseRedisReply("-abcde\r\n", r, 4).ok());
  n = ParseRedisReply("+abc", r, 4);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);

  // Arrays: 16 Mi elements. Declaring that many allocates nothing up front.
  n = ParseRedisReply("*16777216\r\n:1\r\n", r);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  n = ParseRedisReply("*16777217\r\n", r);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("over the limit"), std::string::npos);
}

TEST(RedisReplyParser, ToStringIsShortAndReadable) {
  EXPECT_EQ(ParseWhole("$-1\r\n").ToString(), "(nil)");
  EXPECT_EQ(ParseWhole("+OK\r\n").ToString(), "OK");
  EXPECT_EQ(ParseWhole("-ERR no\r\n").ToString(), "(error) ERR no");
  EXPECT_EQ(ParseWhole(":3\r\n").ToString(), "(integer) 3");
  EXPECT_EQ(ParseWhole("*2\r\n$1\r\na\r\n:1\r\n").ToString(), R"(["a", (integer) 1])");
  EXPECT_EQ(Str(std::string(100, 'x')).ToString(), "\"" + std::string(64, 'x') + "...\"");
}

// --- the command encoder ----------------------------------------------------

TEST(RedisCommandEncoder, EncodesAnArrayOfBulkStrings) {
  std::string out = "keep";
  const std::vector<std::string_view> set = {"SET", "key", "value"};
  AppendRedisCommand(out, set);
  EXPECT_EQ(out, "keep*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");

  out.clear();
  const std::string binary("a\r\n\0b", 5);
  const std::vector<std::string_view> args = {"ECHO", binary, ""};
  AppendRedisCommand(out, args);
  EXPECT_EQ(out, std::string("*3\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n", 31));

  // What the encoder writes, the parser reads back (a command is a reply-shaped array).
  const RedisReply parsed = ParseWhole(out);
  EXPECT_EQ(parsed, Arr({Str("ECHO"), Str(binary), Str("")}));

  out.clear();
  AppendRedisCommand(out, {});
  EXPECT_EQ(out, "*0\r\n");
}

// --- URLs --------------------------------------------------------------------

TEST(RedisUrl, DefaultsAndHostPort) {
  auto o = ParseRedisUrl("redis://localhost");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->host, "localhost");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->connect_timeout, RedisOptions{}.connect_timeout);
  EXPECT_EQ(o->io_timeout, RedisOptions{}.io_timeout);

  o = ParseRedisUrl("  REDIS://10.0.0.5:6380/  ");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->host, "10.0.0.5");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 0);

  o = ParseRedisUrl("cache.internal:7000");  // no scheme
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 7000);

  o = ParseRedisUrl("redis://[::1]:6390/1");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 6390);
  EXPECT_EQ(o->db, 1);
}

TEST(RedisUrl, PasswordAndUser) {
  auto o = ParseRedisUrl("redis://:s3cret@localhost:6379");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->username, "");

  o = ParseRedisUrl("redis://alice:pw@redis.example.com/4");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->username, "alice");
  EXPECT_EQ(o->password, "pw");
  EXPECT_EQ(o->host, "redis.example.com");
  EXPECT_EQ(o->db, 4);

  // Percent-encoding, and a raw '@' or ':' in the password.
  o = ParseRedisUrl("redis://bob:p%40ss%3Aw%2Fd@h");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->password, "p@ss:w/d");
  o = ParseRedisUrl("redis://:a@b:c@h:1");
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->password, "a@b:c");
  EXPECT_EQ(o->host, "h");

  o = ParseRedisUrl("redis://:@h");  // empty password: no AUTH
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->password, "");
}

TEST(RedisUrl, Db) {
  auto o = ParseRedisUrl("redis://h/15");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->db, 15);
  for (const char* bad :
       {"redis://h/-1", "redis://h/x", "redis://h/1/2", "redis://h/1x", "redis://h/99999999999"}) {
    o = ParseRedisUrl(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_NE(o.error().message.find("db must be"), std::string::npos) << bad;
    }
  }
}

TEST(RedisUrl, RefusesBadPortsAndOtherMistakes) {
  for (const char* bad :
       {"", "redis://", "redis://:6379", "redis://h:", "redis://h:0", "redis://h:65536",
        "redis://h:63x", "redis://h:-1", "http://h:6379", "unix:///tmp/redis.sock",
        "redis://::1:6379", "redis://[::1", "redis://[::1]x", "redis://h/0?timeout=1",
        "redis://h#frag", "redis://alice@h", "redis://alice:@h", "redis://:p%4@h",
        "redis://:p%zz@h"}) {
    const auto o = ParseRedisUrl(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_EQ(o.error().code, errc::invalid_argument) << bad;
    }
  }
}

TEST(RedisUrl, RefusesRedissSayingTlsIsNotSupported) {
  const auto o = ParseRedisUrl("rediss://:secret-password@cache.example.com:6380");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, errc::invalid_argument);
  EXPECT_NE(o.error().message.find("TLS not supported"), std::string::npos);
  // Error messages never show a password.
  EXPECT_EQ(o.error().message.find("secret-password"), std::string::npos) << o.error().message;
  const auto p = ParseRedisUrl("redis://alice:secret-password@h:99999");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message.find("secret-password"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("alice:***@h:99999"), std::string::npos) << p.error().message;
}

// --- RedisConnection against a fake server ------------------------------------

// A fake Redis: a thread on 127.0.0.1 that accepts connections one after
// another, parses each command with ParseRedisReply and writes what `answer`
// returns (raw RESP; "" = no answer at all, nullopt = close the connection),
// in pieces of `piece_bytes` with a short pause between them when that is set.
class FakeRedis {
 public:
  using Command = std::vector<std::string>;
  using Answer = std::function<std::optional<std::string>(const Command&)>;

  // Answers with StandardAnswer.
  explicit FakeRedis(size_t piece_bytes = 0) : FakeRedis(nullptr, piece_bytes) {}
  explicit FakeRedis(Answer answer, size_t piece_bytes = 0)
      : answer_(std::move(answer)), piece_bytes_(piece_bytes) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeRedis() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  // PING, ECHO, SET/GET, INCR, AUTH/SELECT (OK), BLPOP (never answers),
  // QUIT (closes), GARBAGE (not RESP2), anything else an error reply.
  // Runs on the server thread only.
  std::optional<std::string> StandardAnswer(const Command& c) {
    const std::string& name = c.at(0);
    auto bulk = [](const std::string& s) {
      std::string out = "$";  // appended piece by piece: GCC 12's -Wrestrict misfires on a + chain
      out += std::to_string(s.size());
      out += "\r\n";
      out += s;
      out += "\r\n";
      return out;
    };
    if (name == "PING") return std::string("+PONG\r\n");
    if (name == "ECHO" && c.size() == 2) return bulk(c[1]);
    if (name == "SET" && c.size() == 3) {
      data_[c[1]] = c[2];
      return std::string("+OK\r\n");
    }
    if (name == "GET" && c.size() == 2) {
      const auto it = data_.find(c[1]);
      return it == data_.end() ? std::string("$-1\r\n") : bulk(it->second);
    }
    if (name == "INCR" && c.size() == 2) {
      const int64_t v = std::atoll(data_[c[1]].c_str()) + 1;
      data_[c[1]] = std::to_string(v);
      return ":" + std::to_string(v) + "\r\n";
    }
    if (name == "AUTH" || name == "SELECT") return std::string("+OK\r\n");
    if (name == "BLPOP") return std::string();
    if (name == "QUIT") return std::nullopt;
    if (name == "GARBAGE") return std::string("!3\r\nxyz\r\n");
    return "-ERR unknown command '" + name + "'\r\n";
  }

  uint16_t port() const { return port_; }
  RedisOptions Options() const {
    RedisOptions o;
    o.port = port_;
    o.io_timeout = 5s;
    return o;
  }
  std::vector<Command> commands() const {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      ::close(fd);
    }
  }

  void Serve(int fd) {
    std::string buffer;
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char chunk[16384];
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
      for (;;) {
        RedisReply command;
        auto used = ParseRedisReply(buffer, command);
        if (!used.ok()) return;
        if (*used == 0) break;
        buffer.erase(0, *used);
        Command args;
        for (const RedisReply& e : command.elements) args.push_back(e.str);
        {
          std::lock_guard<std::mutex> lock(mu_);
          commands_.push_back(args);
        }
        const std::optional<std::string> reply = answer_ ? answer_(args) : StandardAnswer(args);
        if (!reply || !Write(fd, *reply)) return;
      }
    }
  }

  bool Write(int fd, std::string_view bytes) const {
    const size_t piece = piece_bytes_ == 0 ? bytes.size() : piece_bytes_;
    for (size_t pos = 0; pos < bytes.size();) {
      const ssize_t n =
          ::send(fd, bytes.data() + pos, std::min(piece, bytes.size() - pos), MSG_NOSIGNAL);
      if (n <= 0) return false;
      pos += static_cast<size_t>(n);
      if (piece_bytes_ > 0) std::this_thread::sleep_for(100us);
    }
    return true;
  }

  Answer answer_;
  std::map<std::string, std::string> data_;  // StandardAnswer's keys
  size_t piece_bytes_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Command> commands_;
  std::thread thread_;
};

// A port nobody listens on: bind an ephemeral one and close it.
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(RedisConnection, CommandGetsItsReply) {
  FakeRedis fake;
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  RedisConnection& c = **conn;
  EXPECT_TRUE(c.ok());

  auto r = c.Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->type, Type::kStatus);
  EXPECT_EQ(r->str, "PONG");

  r = c.Command({"SET", "fake:k", std::string_view("v\r\n\0", 4)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "OK");
  r = c.Command({"GET", "fake:k"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Str(std::string("v\r\n\0", 4)));
  r = c.Command({"GET", "fake:missing"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_nil());
  r = c.Command({"INCR", "fake:n"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Int(1));

  // An error reply is a reply, and the connection stays usable.
  r = c.Command({"NOSUCH", "x"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(r->str, "ERR unknown command 'NOSUCH'");
  EXPECT_TRUE(c.ok());

  const std::vector<std::string_view> args = {"ECHO", "span"};
  r = c.Command(args);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Str("span"));
}

TEST(RedisConnection, ConnectSendsAuthThenSelect) {
  {
    FakeRedis fake;
    RedisOptions o = fake.Options();
    o.password = "pw";
    o.db = 3;
    auto conn = RedisConnection::Connect(o);
    ASSERT_TRUE(conn.ok()) << conn.error().ToString();
    const auto commands = fake.commands();
    ASSERT_EQ(commands.size(), 2u);
    EXPECT_EQ(commands[0], (FakeRedis::Command{"AUTH", "pw"}));
    EXPECT_EQ(commands[1], (FakeRedis::Command{"SELECT", "3"}));
  }
  {
    FakeRedis fake;
    RedisOptions o = fake.Options();
    o.username = "alice";
    o.password = "pw";
    auto conn = RedisConnection::Connect(o);
    ASSERT_TRUE(conn.ok()) << conn.error().ToString();
    const auto commands = fake.commands();
    ASSERT_EQ(commands.size(), 1u);
    EXPECT_EQ(commands[0], (FakeRedis::Command{"AUTH", "alice", "pw"}));
  }
  {
    FakeRedis fake;  // neither: nothing is sent
    auto conn = RedisConnection::Connect(fake.Options());
    ASSERT_TRUE(conn.ok());
    EXPECT_TRUE(fake.commands().empty());
  }
}

TEST(RedisConnection, RefusedAuthOrSelectFailsConnect) {
  FakeRedis fake([](const FakeRedis::Command& c) -> std::optional<std::string> {
    if (c[0] == "AUTH") {
      return c.back() == "right" ? "+OK\r\n" : "-WRONGPASS invalid username-password pair\r\n";
    }
    if (c[0] == "SELECT") return std::string("-ERR DB index is out of range\r\n");
    return std::string("+OK\r\n");
  });
  RedisOptions o = fake.Options();
  o.password = "not-this-one";
  auto conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, errc::unavailable);
  EXPECT_NE(conn.error().message.find("AUTH refused: WRONGPASS"), std::string::npos)
      << conn.error().message;
  EXPECT_EQ(conn.error().message.find("not-this-one"), std::string::npos);

  o.password = "right";
  o.db = 99;
  conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, errc::unavailable);
  EXPECT_NE(conn.error().message.find("SELECT 99 refused: ERR DB index"), std::string::npos)
      << conn.error().message;
}

TEST(RedisConnection, PipelinedRepliesComeInOrder) {
  FakeRedis fake(/*piece_bytes=*/7);  // replies trickle in
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  RedisConnection& c = **conn;
  constexpr int kCount = 60;
  std::vector<std::string> values;
  for (int i = 0; i < kCount; ++i) values.push_back("value-" + std::to_string(i));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(c.Send({"ECHO", values[static_cast<size_t>(i)]}).ok());
    if (i % 10 == 9) {
      ASSERT_TRUE(c.Send({"PING"}).ok());
    }
  }
  // Nothing is written before Flush (or Read).
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(fake.commands().empty());
  // Command refuses to run while replies are unread (it would get theirs).
  auto refused = c.Command({"PING"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, errc::invalid_argument);
  EXPECT_TRUE(c.ok());

  ASSERT_TRUE(c.Flush().ok());
  for (int i = 0; i < kCount; ++i) {
    auto r = c.Read(5s);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(*r, Str(values[static_cast<size_t>(i)]));
    if (i % 10 == 9) {
      r = c.Read(5s);
      ASSERT_TRUE(r.ok()) << r.error().ToString();
      EXPECT_EQ(r->str, "PONG");
    }
  }
  EXPECT_EQ(fake.commands().size(), size_t{kCount + kCount / 10});

  // Read flushes by itself; then Command works again.
  ASSERT_TRUE(c.Send({"INCR", "pipe:n"}).ok());
  ASSERT_TRUE(c.Send({"INCR", "pipe:n"}).ok());
  auto a = c.Read(5s);
  auto b = c.Read(5s);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, Int(1));
  EXPECT_EQ(*b, Int(2));
  auto r = c.Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->str, "PONG");
}

TEST(RedisConnection, LargeRepliesAndCommands) {
  FakeRedis fake;
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok());
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  auto r = (*conn)->Command({"ECHO", big});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->type, Type::kString);
  EXPECT_TRUE(r->str == big);
  r = (*conn)->Command({"PING"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "PONG");
}

TEST(RedisConnection, TimeoutIsUnavailableAndBreaksTheConnection) {
  FakeRedis fake;
  RedisOptions o = fake.Options();
  o.io_timeout = 150ms;
  auto conn = RedisConnection::Connect(o);
  ASSERT_TRUE(conn.ok());
  RedisConnection& c = **conn;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Command({"BLPOP", "list", "0"});  // the fake never answers
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("timed out after 150 ms"), std::string::npos)
      << r.error().message;
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 3s);
  EXPECT_FALSE(c.ok());
  // Broken for good: a late reply would answer the wrong command.
  r = c.Command({"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("broken"), std::string::npos) << r.error().message;
  EXPECT_FALSE(c.Send({"PING"}).ok());
  EXPECT_FALSE(c.Flush().ok());

  // Read's own timeout, for blocking commands.
  auto conn2 = RedisConnection::Connect(o);
  ASSERT_TRUE(conn2.ok());
  ASSERT_TRUE((*conn2)->Send({"BLPOP", "list", "1"}).ok());
  r = (*conn2)->Read(50ms);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out after 50 ms"), std::string::npos)
      << r.error().message;
}

TEST(RedisConnection, InterruptUnblocksARead) {
  FakeRedis fake;
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok());
  RedisConnection& c = **conn;
  ASSERT_TRUE(c.Send({"BLPOP", "list", "0"}).ok());
  std::thread interrupter([&c] {
    std::this_thread::sleep_for(100ms);
    c.Interrupt();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Read(30s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  interrupter.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("interrupted"), std::string::npos) << r.error().message;
  EXPECT_LT(waited, 5s);
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(c.Command({"PING"}).ok());

  // Interrupted before the call: fails at once.
  auto conn2 = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn2.ok());
  (*conn2)->Interrupt();
  r = (*conn2)->Command({"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
}

TEST(RedisConnection, PeerCloseAndMalformedRepliesAreUnavailable) {
  FakeRedis fake;
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok());
  auto r = (*conn)->Command({"QUIT"});  // the fake closes without answering
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("closed the connection"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE((*conn)->ok());

  conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok());
  r = (*conn)->Command({"GARBAGE"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("RESP2"), std::string::npos) << r.error().message;
  EXPECT_FALSE((*conn)->ok());
}

TEST(RedisConnection, ConnectFailuresAreUnavailable) {
  RedisOptions o;
  o.port = FreePort();
  auto conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, errc::unavailable);
  EXPECT_NE(conn.error().message.find("cannot connect to redis 127.0.0.1:"), std::string::npos)
      << conn.error().message;

  o.host = "no-such-host.invalid";
  conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, errc::unavailable);
  EXPECT_NE(conn.error().message.find("cannot resolve"), std::string::npos) << conn.error().message;
}

TEST(RedisConnection, EmptyCommandIsRefused) {
  FakeRedis fake;
  auto conn = RedisConnection::Connect(fake.Options());
  ASSERT_TRUE(conn.ok());
  const std::vector<std::string_view> none;
  EXPECT_EQ((*conn)->Send(none).error().code, errc::invalid_argument);
  auto r = (*conn)->Command(none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_TRUE((*conn)->ok());
  r = (*conn)->Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
}

// --- RedisConnection against a real redis-server ------------------------------

// The full path of `name` on PATH, or "" when it is not there.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::string_view rest(path);
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Starts redis-server (no persistence, loopback only) on a free port per
// test and kills it in TearDown. Skipped when redis-server is not on PATH.
class RedisServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = FindOnPath("redis-server");
    if (binary_.empty()) {
      GTEST_SKIP() << "redis-server is not on PATH: skipping the tests against a real Redis "
                      "(apt-get install redis-server to run them)";
    }
  }

  void TearDown() override {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
  }

  // Starts the server with `extra` arguments and waits until it answers.
  void StartServer(const std::vector<std::string>& extra = {}) {
    port_ = FreePort();
    std::vector<std::string> args = {
        binary_,     "--port", std::to_string(port_), "--save", "", "--appendonly", "no", "--bind",
        "127.0.0.1", "--dir",  ::testing::TempDir()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = ::posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0) << "cannot start " << binary_;

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      RedisOptions o = Options();
      o.connect_timeout = 500ms;
      if (auto conn = RedisConnection::Connect(o); conn.ok() && (*conn)->Command({"PING"}).ok()) {
        return;  // PONG, or NOAUTH under requirepass: it is up
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "redis-server exited at start (status " << status << ")";
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "redis-server did not answer on port " << port_ << " within 10 s";
      std::this_thread::sleep_for(20ms);
    }
  }

  RedisOptions Options() const {
    RedisOptions o;
    o.port = port_;
    return o;
  }

  std::string binary_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

TEST_F(RedisServerTest, StringsCountersStreamsAndScripts) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto conn = RedisConnection::Connect(Options());
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  RedisConnection& c = **conn;

  const std::string value("hello\r\nworld\0!", 14);
  auto r = c.Command({"SET", "greeting", value});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->type, Type::kStatus);
  EXPECT_EQ(r->str, "OK");
  r = c.Command({"GET", "greeting"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Str(value));
  r = c.Command({"GET", "missing"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_nil());

  r = c.Command({"INCR", "counter"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Int(1));
  r = c.Command({"INCRBY", "counter", "41"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Int(42));
  r = c.Command({"INCR", "greeting"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(r->str.rfind("ERR", 0), 0u) << r->str;
  EXPECT_TRUE(c.ok());

  const std::string vector_bytes("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // {1.0f, 2.0f}
  r = c.Command({"XADD", "events", "*", "text", "first", "vec", vector_bytes});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->type, Type::kString);
  const std::string id1 = r->str;
  EXPECT_NE(id1.find('-'), std::string::npos);
  r = c.Command({"XADD", "events", "*", "text", "second"});
  ASSERT_TRUE(r.ok());
  const std::string id2 = r->str;
  r = c.Command({"XRANGE", "events", "-", "+"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            Arr({Arr({Str(id1), Arr({Str("text"), Str("first"), Str("vec"), Str(vector_bytes)})}),
                 Arr({Str(id2), Arr({Str("text"), Str("second")})})}));
  r = c.Command({"XRANGE", "events", "-", "+", "COUNT", "1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->elements.size(), 1u);

  r = c.Command({"EVAL",
                 "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1, redis.call('GET', KEYS[1])}",
                 "1", "greeting", "arg", "41"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Arr({Str("greeting"), Str("arg"), Int(42), Str(value)}));
  r = c.Command({"EVAL", "return redis.error_reply('MYERR boom')", "0"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(r->str, "MYERR boom");
  r = c.Command({"EVAL", "return {1, {2, {3}}, false}", "0"});  // Lua false: a nil
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Arr({Int(1), Arr({Int(2), Arr({Int(3)})}), RedisReply{}}));

  // Pipelining.
  constexpr int kCount = 200;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kCount; ++i) {
    keys.push_back("k:" + std::to_string(i));
    values.push_back(std::string(static_cast<size_t>(i), 'v'));
  }
  for (int i = 0; i < kCount; ++i) {
    const auto n = static_cast<size_t>(i);
    ASSERT_TRUE(c.Send({"SET", keys[n], values[n]}).ok());
    ASSERT_TRUE(c.Send({"GET", keys[n]}).ok());
  }
  for (int i = 0; i < kCount; ++i) {
    auto set = c.Read(5s);
    auto get = c.Read(5s);
    ASSERT_TRUE(set.ok() && get.ok());
    EXPECT_EQ(set->str, "OK");
    EXPECT_EQ(*get, Str(values[static_cast<size_t>(i)]));
  }

  // A blocking read that times out on the server: a nil, within Read's timeout.
  ASSERT_TRUE(c.Send({"XREAD", "BLOCK", "100", "STREAMS", "events", "$"}).ok());
  r = c.Read(5s);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_TRUE(r->is_nil());

  // ... and one that an XADD from another connection wakes up.
  std::thread writer([this] {
    std::this_thread::sleep_for(100ms);
    auto other = RedisConnection::Connect(Options());
    if (other.ok()) (void)(*other)->Command({"XADD", "events", "*", "text", "third"});
  });
  ASSERT_TRUE(c.Send({"XREAD", "BLOCK", "5000", "STREAMS", "events", id2}).ok());
  r = c.Read(10s);
  writer.join();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->type, Type::kArray);
  ASSERT_EQ(r->elements.size(), 1u);
  const RedisReply& stream = r->elements[0];
  ASSERT_EQ(stream.elements.size(), 2u);
  EXPECT_EQ(stream.elements[0], Str("events"));
  ASSERT_EQ(stream.elements[1].elements.size(), 1u);
  EXPECT_EQ(stream.elements[1].elements[0].elements[1], Arr({Str("text"), Str("third")}));
}

TEST_F(RedisServerTest, RequirePassAndAuth) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--requirepass", "s3cret"}));

  // No password: connects, but commands are refused.
  auto conn = RedisConnection::Connect(Options());
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  auto r = (*conn)->Command({"PING"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(r->str.rfind("NOAUTH", 0), 0u) << r->str;

  // A wrong password fails Connect, without showing it.
  RedisOptions o = Options();
  o.password = "wrong-password";
  conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, errc::unavailable);
  EXPECT_NE(conn.error().message.find("AUTH refused: WRONGPASS"), std::string::npos)
      << conn.error().message;
  EXPECT_EQ(conn.error().message.find("wrong-password"), std::string::npos);

  // The right one, alone and with the default user (AUTH user password).
  o.password = "s3cret";
  conn = RedisConnection::Connect(o);
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  r = (*conn)->Command({"PING"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "PONG");
  o.username = "default";
  conn = RedisConnection::Connect(o);
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  r = (*conn)->Command({"PING"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "PONG");

  // From a URL, with a db: SELECT puts the key in db 2 only.
  auto url = ParseRedisUrl("redis://:s3cret@127.0.0.1:" + std::to_string(port_) + "/2");
  ASSERT_TRUE(url.ok()) << url.error().ToString();
  auto db2 = RedisConnection::Connect(*url);
  ASSERT_TRUE(db2.ok()) << db2.error().ToString();
  ASSERT_TRUE((*db2)->Command({"SET", "where", "db2"}).ok());
  r = (*conn)->Command({"GET", "where"});  // db 0
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_nil());
  r = (*db2)->Command({"GET", "where"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Str("db2"));

  // A db the server does not have.
  o.db = 999;
  conn = RedisConnection::Connect(o);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.error().message.find("SELECT 999 refused"), std::string::npos)
      << conn.error().message;
}

TEST_F(RedisServerTest, InterruptUnblocksABlockingCommand) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto conn = RedisConnection::Connect(Options());
  ASSERT_TRUE(conn.ok());
  RedisConnection& c = **conn;
  ASSERT_TRUE(c.Send({"BLPOP", "never", "0"}).ok());
  std::thread interrupter([&c] {
    std::this_thread::sleep_for(100ms);
    c.Interrupt();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Read(30s);
  interrupter.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

}  // namespace
}  // namespace embedstream::server
