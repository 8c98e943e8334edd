#include "core/uuid.h"

#include <cstring>
#include <random>

namespace embedstream {
namespace {

// SHA-1 (FIPS 180-4), only for UUIDv5; not for anything security-related.
std::array<uint8_t, 20> Sha1(const uint8_t* data, size_t len) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  auto rol = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  std::string msg(reinterpret_cast<const char*>(data), len);
  const uint64_t bit_len = static_cast<uint64_t>(len) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bit_len >> (8 * i)) & 0xFF));
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const uint8_t*>(msg.data() + off + 4 * i);
      w[i] = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<uint8_t, 20> out;
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 4; ++k)
      out[static_cast<size_t>(4 * i + k)] = static_cast<uint8_t>(h[i] >> (24 - 8 * k));
  }
  return out;
}

}  // namespace

Uuid UuidV5(const Uuid& namespace_id, std::string_view name) {
  std::string buf(reinterpret_cast<const char*>(namespace_id.data()), namespace_id.size());
  buf.append(name);
  const auto digest = Sha1(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  Uuid u;
  std::memcpy(u.data(), digest.data(), 16);
  u[6] = static_cast<uint8_t>((u[6] & 0x0F) | 0x50);  // version 5
  u[8] = static_cast<uint8_t>((u[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

const Uuid& EmbedstreamNamespace() {
  // UUIDv5(URL namespace, "https://github.com/embedstream"), computed once.
  static const Uuid ns = [] {
    const Uuid url_ns = *ParseUuid("6ba7b811-9dad-11d1-80b4-00c04fd430c8");
    return UuidV5(url_ns, "https://github.com/embedstream");
  }();
  return ns;
}

Uuid RandomUuidV4() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Uuid u;
  for (size_t i = 0; i < 16; i += 8) {
    const uint64_t r = rng();
    for (size_t k = 0; k < 8; ++k) u[i + k] = static_cast<uint8_t>(r >> (8 * k));
  }
  u[6] = static_cast<uint8_t>((u[6] & 0x0F) | 0x40);  // version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

std::string FormatUuid(const Uuid& u) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[u[i] >> 4]);
    s.push_back(kHex[u[i] & 0xF]);
  }
  return s;
}

std::optional<Uuid> ParseUuid(std::string_view s) {
  if (s.size() != 36) return std::nullopt;
  Uuid u{};
  size_t byte = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(s[i]);
    const int lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

std::string StoredUuid(std::string_view id, bool* is_uuid) {
  auto u = ParseUuid(id);
  if (is_uuid != nullptr) *is_uuid = u.has_value();
  return FormatUuid(u ? *u : UuidV5(EmbedstreamNamespace(), id));
}

}  // namespace embedstream
