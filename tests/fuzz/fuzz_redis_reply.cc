// Redis replies off the socket: server::ParseRedisReply (src/server/
// redis_client.h) called over the input again and again, as RedisConnection
// reads a pipelined stream, until it is used up, refused or cut short.
// Invariants: an error is invalid_argument with a message and stops the
// stream; a reply consumes 1..rest bytes, keeps the limits (depth <= 64,
// bulk <= the limit, status and error lines without CR or LF), every strict
// prefix of it parses as "need more" (0), and its canonical re-encoding parses
// back to the same reply; a smaller max_bulk_bytes never changes a result,
// it only refuses more. And AppendRedisCommand's encoding of the input cut at
// NUL bytes parses back as the array of those arguments.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "server/redis_client.h"

using namespace embedstream;
using server::ParseRedisReply;
using server::RedisReply;

namespace {

constexpr size_t kSmallBulkBytesMax = 8;

void CheckReply(const RedisReply& reply, int depth, size_t max_bulk_bytes) {
  FUZZ_CHECK(depth <= server::kRedisReplyDepthMax);
  switch (reply.type) {
    case RedisReply::Type::kNil:
    case RedisReply::Type::kInteger:
      FUZZ_CHECK(reply.str.empty() && reply.elements.empty());
      break;
    case RedisReply::Type::kStatus:
    case RedisReply::Type::kError:
      FUZZ_CHECK(reply.str.find_first_of("\r\n") == std::string::npos);
      [[fallthrough]];
    case RedisReply::Type::kString:
      FUZZ_CHECK(reply.str.size() <= max_bulk_bytes);
      FUZZ_CHECK(reply.elements.empty() && reply.integer == 0);
      break;
    case RedisReply::Type::kArray:
      FUZZ_CHECK(reply.str.empty() && reply.integer == 0);
      FUZZ_CHECK(reply.elements.size() <= static_cast<size_t>(server::kRedisArrayElementsMax));
      for (const RedisReply& e : reply.elements) CheckReply(e, depth + 1, max_bulk_bytes);
      break;
  }
}

// The canonical RESP2 bytes of a reply (a nil as a nil bulk string).
void Encode(const RedisReply& reply, std::string& out) {
  switch (reply.type) {
    case RedisReply::Type::kNil:
      out += "$-1\r\n";
      break;
    case RedisReply::Type::kStatus:
      out += '+';
      out += reply.str;
      out += "\r\n";
      break;
    case RedisReply::Type::kError:
      out += '-';
      out += reply.str;
      out += "\r\n";
      break;
    case RedisReply::Type::kInteger:
      out += ':';
      out += std::to_string(reply.integer);
      out += "\r\n";
      break;
    case RedisReply::Type::kString:
      out += '$';
      out += std::to_string(reply.str.size());
      out += "\r\n";
      out += reply.str;
      out += "\r\n";
      break;
    case RedisReply::Type::kArray:
      out += '*';
      out += std::to_string(reply.elements.size());
      out += "\r\n";
      for (const RedisReply& e : reply.elements) Encode(e, out);
      break;
  }
}

bool NeedsMore(std::string_view in) {
  RedisReply ignored;
  const auto n = ParseRedisReply(in, ignored);
  return n.ok() && *n == 0;
}

// The input cut at NUL bytes, as a command: encode, parse back.
void CheckCommandRoundTrip(std::string_view text) {
  std::vector<std::string_view> args;
  for (size_t pos = 0;;) {
    const size_t nul = text.find('\0', pos);
    args.push_back(text.substr(pos, nul == std::string_view::npos ? nul : nul - pos));
    if (nul == std::string_view::npos) break;
    pos = nul + 1;
  }
  std::string encoded;
  server::AppendRedisCommand(encoded, std::span<const std::string_view>(args));
  RedisReply parsed;
  const auto n = ParseRedisReply(encoded, parsed);
  FUZZ_CHECK(n.ok() && *n == encoded.size());
  FUZZ_CHECK(parsed.type == RedisReply::Type::kArray && parsed.elements.size() == args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    FUZZ_CHECK(parsed.elements[i].type == RedisReply::Type::kString);
    FUZZ_CHECK(parsed.elements[i].str == args[i]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsText(data, size);
  std::string_view rest = text;
  while (!rest.empty()) {
    RedisReply reply;
    const auto n = ParseRedisReply(rest, reply);
    RedisReply small;
    const auto small_n = ParseRedisReply(rest, small, kSmallBulkBytesMax);
    if (!n.ok()) {
      FUZZ_CHECK(n.error().code == errc::invalid_argument);
      FUZZ_CHECK(!n.error().message.empty());
      FUZZ_CHECK(!small_n.ok());  // a smaller limit refuses at least as much
      break;
    }
    if (small_n.ok()) {
      FUZZ_CHECK(*small_n == *n);
      if (*n > 0) FUZZ_CHECK(small == reply);
    } else {
      FUZZ_CHECK(small_n.error().code == errc::invalid_argument);
    }
    if (*n == 0) break;
    FUZZ_CHECK(*n <= rest.size());
    CheckReply(reply, 0, size_t{512} << 20);
    if (small_n.ok()) CheckReply(small, 0, kSmallBulkBytesMax);

    // Strict prefixes wait for more (the whole reply only ends at its last byte).
    const std::string_view whole = rest.substr(0, *n);
    FUZZ_CHECK(NeedsMore(whole.substr(0, *n - 1)));
    FUZZ_CHECK(NeedsMore(whole.substr(0, *n / 2)));

    // The canonical bytes parse back to the same reply.
    std::string encoded;
    Encode(reply, encoded);
    RedisReply again;
    const auto again_n = ParseRedisReply(encoded, again);
    FUZZ_CHECK(again_n.ok() && *again_n == encoded.size());
    FUZZ_CHECK(again == reply);

    rest.remove_prefix(*n);
  }
  if (size <= 4096) CheckCommandRoundTrip(text);
  return 0;
}
