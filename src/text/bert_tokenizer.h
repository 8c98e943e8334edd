#pragma once
// BertTokenizer: Hugging Face `tokenizers`' BERT pipeline, id for id
// (BertNormalizer + BertPreTokenizer + WordPiece + [CLS] ... [SEP] with
// truncation), as sentence-transformers/all-MiniLM-L6-v2 uses it.
//
// Pipeline per call: added tokens written literally in the input ([CLS], [SEP],
// [PAD], [UNK], [MASK]) map to their ids (HF does this too, before normalizing);
// the text between them is normalized (normalizer.h), split into words
// (pre_tokenizer.h) and each word into wordpieces (wordpiece.h).
//
// Invalid UTF-8 never fails: each byte outside a well-formed sequence becomes
// U+FFFD, which clean_text drops (utf8.h has the exact rule).
//
// Owns the vocab and all tables; immutable after Load/FromVocab, so every const
// method is thread-safe. Encode* keep one reusable scratch buffer per thread.
//
// Example:
//   auto tok = BertTokenizer::Load("models/all-MiniLM-L6-v2");
//   if (!tok) return tok.error();
//   std::vector<int32_t> ids = tok->Encode("Hello, world!", 256);  // 101 7592 1010 2088 999 102

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "text/added_tokens.h"
#include "text/normalizer.h"
#include "text/wordpiece.h"

namespace embedstream::text {

struct BertTokenizerSpec;  // hf_tokenizer_files.h

// One word of an input as the tokenizer split it (a pre-tokenized word or an
// added token written literally): its bytes in the input, and its wordpieces
// in the ids EncodeWords gave.
struct TokenizedWord {
  uint32_t begin = 0;  // byte offsets into the input
  uint32_t end = 0;
  uint32_t first_piece = 0;
  uint32_t pieces = 0;
};

struct BertTokenizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // nullopt: follows lowercase (HF rule)
  bool lowercase = true;
  size_t max_input_chars_per_word = 100;
  std::string unk_token = "[UNK]", cls_token = "[CLS]", sep_token = "[SEP]", pad_token = "[PAD]";
  std::string continuing_subword_prefix = "##";
  // Added to the interface: HF also matches [MASK] in the input. Used when the
  // added tokens come from a vocab (FromVocab, vocab.txt); skipped when not in it.
  std::string mask_token = "[MASK]";
  // HF's split_special_tokens: true tokenizes "[CLS]" etc. in the input as plain
  // text instead of mapping it to the special id (HF's default is false).
  bool split_special_tokens = false;
};

class BertTokenizer {
 public:
  // Reads <dir>/tokenizer.json when present (normalizer, pre-tokenizer, wordpiece
  // settings, vocab, added and special tokens), else <dir>/vocab.txt (+ optional
  // tokenizer_config.json: do_lower_case, strip_accents, tokenize_chinese_chars,
  // *_token). Errors: not_found (no such files), io_error, corrupt (bad JSON,
  // wrong field types, duplicate/gapped ids), invalid_argument (empty vocab,
  // missing special tokens), unsupported (other normalizer/pre-tokenizer/model/
  // post-processor types, added tokens with normalized/lstrip/rstrip/single_word).
  static Result<BertTokenizer> Load(const std::filesystem::path& model_dir);
  // vocab[i] has id i; the added tokens are unk/cls/sep/pad (required) and mask
  // (if present) from `options`. For tests and tools.
  static Result<BertTokenizer> FromVocab(std::vector<std::string> vocab,
                                         BertTokenizerOptions options);

  // [CLS] wordpieces... [SEP], truncated so size() <= max_tokens (values below 2
  // count as 2). Thread-safe (const).
  std::vector<int32_t> Encode(std::string_view utf8, size_t max_tokens) const;
  // Same but appends into `out` (no allocation when it has capacity for
  // max_tokens more); returns the number appended.
  size_t EncodeInto(std::string_view utf8, size_t max_tokens, std::vector<int32_t>& out) const;
  // The wordpieces of the whole input (no specials, no truncation) into `ids`,
  // and per word where it is in the input (chunking: a span of whole words
  // tokenizes alone to exactly its pieces, so every chunk fits). Clears both.
  void EncodeWords(std::string_view utf8, std::vector<int32_t>& ids,
                   std::vector<TokenizedWord>& words) const;
  // Wordpieces without specials or truncation (debugging/tests).
  std::vector<std::string> Tokenize(std::string_view utf8) const;

  // Number of ids, added tokens included (HF get_vocab_size(with_added_tokens)).
  size_t vocab_size() const;
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t unk_id() const { return wordpiece_.unk_id(); }
  int32_t pad_id() const { return pad_id_; }
  const BertTokenizerOptions& options() const { return options_; }

  // The token string of an id; empty for ids outside [0, vocab_size()).
  std::string_view IdToToken(int32_t id) const;

 private:
  // Builds the vocab, WordPiece and added-token matcher and resolves the specials.
  static Result<BertTokenizer> Assemble(BertTokenizerSpec spec);
  BertTokenizer(BertTokenizerOptions options, WordPiece wordpiece,
                std::vector<std::string> extra_tokens, AddedTokenMatcher added_tokens,
                int32_t cls_id, int32_t sep_id, int32_t pad_id);

  // Appends at most `room` ids of `utf8` without specials; returns how many.
  size_t EncodePieces(std::string_view utf8, size_t room, std::vector<int32_t>& out) const;
  // Same for text free of added tokens.
  size_t EncodeText(std::string_view utf8, size_t room, std::vector<int32_t>& out) const;
  // EncodeWords for text free of added tokens at byte `base` of the input.
  void EncodeTextWords(std::string_view utf8, uint32_t base, std::vector<int32_t>& ids,
                       std::vector<TokenizedWord>& words) const;

  BertTokenizerOptions options_;
  BertNormalizer normalizer_;
  WordPiece wordpiece_;
  std::vector<std::string> extra_tokens_;  // added tokens with ids past the WordPiece vocab
  AddedTokenMatcher added_tokens_;
  int32_t cls_id_ = 0;
  int32_t sep_id_ = 0;
  int32_t pad_id_ = 0;
};

}  // namespace embedstream::text
