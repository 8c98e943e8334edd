#pragma once
// BertPreTokenizer: splits normalized text into words the way Hugging Face does:
// whitespace (Rust's char::is_whitespace) separates words and is dropped, and
// every punctuation char (ASCII 33-47, 58-64, 91-96, 123-126, or a P* category
// in HF's tables) becomes a word of its own.
//
// Stateless; thread-safe. Input is expected to be valid UTF-8 (the normalizer's
// output); invalid bytes are read as U+FFFD and stay inside their word.
//
// Example:
//   size_t pos = 0;
//   PreTokenizedWord w;
//   while (BertPreTokenizer::NextWord("hi, you!", pos, w)) Use(w.text);  // hi , you !

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace embedstream::text {

struct PreTokenizedWord {
  std::string_view text;
  size_t chars = 0;  // code points in text
};

class BertPreTokenizer {
 public:
  // Finds the first word at or after `pos`, stores it in `word` and moves `pos`
  // past it. Returns false when only whitespace is left.
  static bool NextWord(std::string_view text, size_t& pos, PreTokenizedWord& word);

  // All words, copied (tests and debugging).
  static std::vector<std::string> Split(std::string_view text);
};

}  // namespace embedstream::text
