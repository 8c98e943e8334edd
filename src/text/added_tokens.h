#pragma once
// AddedTokenMatcher: finds Hugging Face "added tokens" ([CLS], [SEP], [MASK],
// ...) written literally in the raw input. HF extracts them before normalizing,
// leftmost match first and the longest at that position, and gives each its id;
// the text between matches is normalized and pre-tokenized on its own. So the
// text "a [MASK] b" encodes [MASK] as id 103, not as "[", "mask", "]".
//
// Only the HF flavour BERT tokenizers use is implemented: tokens matched on the
// raw text (normalized = false) without single_word/lstrip/rstrip.
//
// Immutable after construction; FindNext is const and thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace embedstream::text {

struct AddedToken {
  std::string content;
  int32_t id = 0;
};

struct AddedTokenMatch {
  size_t begin = 0;  // byte offsets into the searched text
  size_t end = 0;
  int32_t id = 0;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // Empty contents are ignored; for a duplicate content the first id wins.
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // The leftmost-longest match starting at or after `from`; false if none.
  bool FindNext(std::string_view text, size_t from, AddedTokenMatch& match) const;

  bool empty() const { return tokens_.empty(); }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;  // longest content first
  std::array<bool, 256> first_byte_{};
  int only_first_byte_ = -1;  // the first byte every token shares, else -1
};

}  // namespace embedstream::text
