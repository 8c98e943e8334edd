#pragma once
// Readers for Hugging Face tokenizer files: tokenizer.json, or vocab.txt with
// tokenizer_config.json. They only parse and validate; BertTokenizer builds.
// Stateless; thread-safe.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "text/added_tokens.h"
#include "text/bert_tokenizer.h"

namespace embedstream::text {

// Everything a BertTokenizer is built from.
struct BertTokenizerSpec {
  BertTokenizerOptions options;          // normalizer flags, WordPiece settings, special tokens
  std::vector<std::string> vocab;        // the WordPiece vocab; vocab[i] has id i
  std::vector<AddedToken> added_tokens;  // matched in the raw input; ids past the vocab
                                         // must continue it without gaps
};

// Parses a tokenizer.json: BertNormalizer (or none), BertPreTokenizer, WordPiece,
// TemplateProcessing "[CLS] $A [SEP]" or BertProcessing, optional padding token.
// `origin` names the file in error messages.
Result<BertTokenizerSpec> ParseTokenizerJson(std::string_view json, const std::string& origin);

// vocab.txt: one token per line, id = line number ("\r\n" accepted).
std::vector<std::string> ParseVocabTxt(std::string_view text);

// Applies tokenizer_config.json (transformers' BertTokenizer settings) to `options`.
Status ApplyTokenizerConfigJson(std::string_view json, const std::string& origin,
                                BertTokenizerOptions& options);

// Reads <dir>/tokenizer.json if it exists, else <dir>/vocab.txt (+ optional
// tokenizer_config.json), and for vocab.txt derives the added tokens
// (unk, sep, pad, cls, mask) the way transformers does.
Result<BertTokenizerSpec> ReadTokenizerDir(const std::filesystem::path& dir);

// The added tokens transformers registers for a vocab-only BERT tokenizer: the
// special tokens of `options` found in `vocab` (later duplicates win).
std::vector<AddedToken> SpecialAddedTokens(const std::vector<std::string>& vocab,
                                           const BertTokenizerOptions& options);

}  // namespace embedstream::text
