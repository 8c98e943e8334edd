#pragma once
// UTF-8 decoding that never fails and encoding. Header-only: these sit in the
// tokenizer's inner loops.
//
// Invalid input rule: every byte that is not part of a well-formed UTF-8 sequence
// (Unicode Table 3-7) decodes to one U+FFFD and consumes exactly that byte. So a
// lone continuation byte, each byte of a truncated sequence, each byte of an
// overlong form (C0/C1, E0 80..9F, F0 80..8F), each byte of an encoded surrogate
// (ED A0..BF) and any F5..FF byte all become U+FFFD, which BertNormalizer's
// clean_text then drops.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace embedstream::text {

inline constexpr char32_t kReplacementChar = 0xFFFD;

struct DecodedChar {
  char32_t cp;
  uint32_t size;  // bytes consumed, 1..4
};

// Decodes the code point starting at s[pos] (pos < s.size()).
inline DecodedChar DecodeUtf8(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t left = s.size() - pos;
  const unsigned b0 = p[0];
  if (b0 < 0x80) return {b0, 1};
  auto cont = [](unsigned b) { return (b & 0xC0u) == 0x80u; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left >= 2 && cont(p[1])) return {((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left >= 3) {
      const unsigned b1 = p[1];
      const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;  // E0: no overlongs
      const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;  // ED: no surrogates
      if (b1 >= lo && b1 <= hi && cont(p[2])) {
        return {((b0 & 0x0Fu) << 12) | ((b1 & 0x3Fu) << 6) | (p[2] & 0x3Fu), 3};
      }
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left >= 4) {
      const unsigned b1 = p[1];
      const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;  // F0: no overlongs
      const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;  // F4: nothing past U+10FFFF
      if (b1 >= lo && b1 <= hi && cont(p[2]) && cont(p[3])) {
        return {
            ((b0 & 0x07u) << 18) | ((b1 & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu),
            4};
      }
    }
  }
  return {kReplacementChar, 1};
}

// Writes cp (a valid scalar value) as UTF-8 into out[0..4); returns the length.
inline size_t EncodeUtf8(char32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

inline void AppendUtf8(char32_t cp, std::string& out) {
  char buf[4];
  out.append(buf, EncodeUtf8(cp, buf));
}

}  // namespace embedstream::text
