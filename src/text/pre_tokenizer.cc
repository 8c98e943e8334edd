#include "text/pre_tokenizer.h"

#include <array>
#include <cstdint>

#include "text/hf_unicode.h"
#include "text/utf8.h"

namespace embedstream::text {
namespace {

enum class CharClass : uint8_t { kWord, kSpace, kPunct };

constexpr std::array<CharClass, 128> MakeAsciiClasses() {
  std::array<CharClass, 128> classes{};
  for (size_t c = 0; c < 128; ++c) {
    if (c == ' ' || (c >= '\t' && c <= '\r')) {
      classes[c] = CharClass::kSpace;
    } else if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126)) {
      classes[c] = CharClass::kPunct;
    }
  }
  return classes;
}
constexpr std::array<CharClass, 128> kAsciiClasses = MakeAsciiClasses();

struct ClassifiedChar {
  CharClass cls;
  uint32_t size;
};

inline ClassifiedChar Classify(std::string_view text, size_t pos) {
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b < 0x80) return {kAsciiClasses[b], 1};
  const DecodedChar d = DecodeUtf8(text, pos);
  if (HfIsWhitespace(d.cp)) return {CharClass::kSpace, d.size};
  if (HfIsPunctuation(d.cp)) return {CharClass::kPunct, d.size};
  return {CharClass::kWord, d.size};
}

}  // namespace

bool BertPreTokenizer::NextWord(std::string_view text, size_t& pos, PreTokenizedWord& word) {
  const size_t n = text.size();
  while (pos < n) {
    const ClassifiedChar c = Classify(text, pos);
    if (c.cls == CharClass::kSpace) {
      pos += c.size;
      continue;
    }
    if (c.cls == CharClass::kPunct) {
      word = {text.substr(pos, c.size), 1};
      pos += c.size;
      return true;
    }
    break;
  }
  if (pos >= n) return false;

  const size_t start = pos;
  size_t chars = 0;
  while (pos < n) {
    const auto b = static_cast<unsigned char>(text[pos]);
    if (b < 0x80) {  // fast path: no decoding
      if (kAsciiClasses[b] != CharClass::kWord) break;
      ++pos;
    } else {
      const ClassifiedChar c = Classify(text, pos);
      if (c.cls != CharClass::kWord) break;
      pos += c.size;
    }
    ++chars;
  }
  word = {text.substr(start, pos - start), chars};
  return true;
}

std::vector<std::string> BertPreTokenizer::Split(std::string_view text) {
  std::vector<std::string> words;
  size_t pos = 0;
  PreTokenizedWord word;
  while (NextWord(text, pos, word)) words.emplace_back(word.text);
  return words;
}

}  // namespace embedstream::text
