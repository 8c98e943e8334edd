#pragma once
// WordPiece: Hugging Face's WordPiece model. Each word becomes its greedy
// longest-match-first pieces, pieces after the first looked up with the
// continuing-subword prefix ("##"); a word with more than
// max_input_chars_per_word code points, or one the greedy match cannot cover
// completely, becomes a single unk token.
//
// Owns the Vocab. Immutable after Create; TokenizeWord is const, allocation-free
// (given capacity in `out`) and thread-safe.
//
// Example:
//   auto wp = WordPiece::Create(*Vocab::Build({"[UNK]", "un", "##aff", "##able"}),
//                               {.unk_token = "[UNK]"});
//   std::vector<int32_t> ids;
//   wp->TokenizeWord("unaffable", 9, SIZE_MAX, ids);   // {1, 2, 3}

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "text/vocab.h"

namespace embedstream::text {

struct WordPieceConfig {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

class WordPiece {
 public:
  // Errors: unk_token not in the vocab.
  static Result<WordPiece> Create(Vocab vocab, WordPieceConfig config);

  // Appends the ids of `word`'s pieces (`chars` = its code points) to `out`, at
  // most `room` of them, and returns how many pieces the word has (more than
  // `room` when it did not fit). `word` is non-empty valid UTF-8.
  size_t TokenizeWord(std::string_view word, size_t chars, size_t room,
                      std::vector<int32_t>& out) const;

  const Vocab& vocab() const { return vocab_; }
  const WordPieceConfig& config() const { return config_; }
  int32_t unk_id() const { return unk_id_; }

 private:
  // Id of the longest vocab piece word[start, end) (with the prefix unless
  // start == 0), searching ends from the longest possible down; sets *end.
  int32_t LongestPiece(std::string_view word, size_t start, size_t* end) const;

  Vocab vocab_;
  WordPieceConfig config_;
  int32_t unk_id_ = Vocab::kNotFound;
  uint64_t prefix_state_ = Vocab::kHashSeed;  // FNV state after the prefix
  size_t first_piece_bytes_max_ = 0;          // longest token
  size_t continuation_piece_bytes_max_ = 0;   // longest prefixed token, minus the prefix
};

}  // namespace embedstream::text
