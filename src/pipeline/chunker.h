#pragma once
// Chunker: cuts a long text into chunks on the model's own tokenization, so
// every chunk fits the model exactly and nothing is silently truncated.
//
// Input: the text's wordpieces grouped by word (text::BertTokenizer::
// EncodeWords). Output: chunks of at most `budget` wordpieces ([CLS]/[SEP]
// not counted), each a run of whole words, so the text a chunk spans
// tokenizes alone to exactly its pieces (a sentence-transformers vector of
// the chunk's text equals the chunk's vector). Only a word with more pieces
// than a chunk holds is cut between its pieces; such a chunk spans the whole
// word's text.
//
//   split kSentence  sentences (a terminal . ! ? … 。！？, closing quotes or
//                    brackets after it, then whitespace; or a blank line) are
//                    never cut when they fit in a chunk; a sentence that does
//                    not fit is cut between words.
//   split kTokens    cut between words wherever the budget ends.
//   overlap          the next chunk starts with the last units (sentences or
//                    words) of the previous one, up to overlap pieces.
//
// Offsets: byte offsets into the text, and code point offsets (Python's
// str indices), so text[char_start:char_end] is the chunk's text.
// Pure functions; thread-safe.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "text/bert_tokenizer.h"

namespace embedstream::pipeline {

struct ChunkingOptions {
  enum class Split { kSentence, kTokens };
  enum class Overflow { kChunk, kTruncate, kReject };
  size_t max_tokens = 0;  // per chunk, [CLS]/[SEP] included; 0: the model's limit
  size_t overlap_tokens = 32;
  Split split = Split::kSentence;
  Overflow on_overflow = Overflow::kChunk;
};

const char* SplitName(ChunkingOptions::Split s);        // sentence | tokens
const char* OverflowName(ChunkingOptions::Overflow o);  // chunk | truncate | reject

struct ChunkSpan {
  uint32_t first_piece = 0;  // into the text's wordpieces
  uint32_t pieces = 0;
  uint32_t byte_begin = 0;
  uint32_t byte_end = 0;
  uint32_t char_begin = 0;  // code points
  uint32_t char_end = 0;
};

// Chunks of at most `budget` pieces (>= 1) covering every piece in order;
// consecutive chunks overlap by up to `overlap` pieces (less when a chunk
// would not progress). A text with no pieces gives no chunk.
std::vector<ChunkSpan> CutChunks(std::string_view text, std::span<const text::TokenizedWord> words,
                                 size_t budget, size_t overlap, ChunkingOptions::Split split);

// The first `budget` pieces as one chunk (on_overflow: truncate).
ChunkSpan TruncatedChunk(std::string_view text, std::span<const text::TokenizedWord> words,
                         size_t budget);

// Sets char_begin/char_end of each span from its byte offsets (spans in
// order of byte_begin).
void SetCharOffsets(std::string_view text, std::span<ChunkSpan> spans);

// What the options make of one text (the runtime's rule, and the count
// POST /documents answers with).
struct ChunkPlan {
  enum class Kind {
    kWhole,      // fits: one sequence, today's record
    kTruncated,  // on_overflow truncate: spans[0] is what is embedded
    kChunked,    // on_overflow chunk: spans.size() > 1 chunks
    kTooLong,    // on_overflow reject
  };
  Kind kind = Kind::kWhole;
  std::vector<ChunkSpan> spans;  // kTruncated, kChunked
  size_t max_tokens = 0;         // per sequence, specials included
  size_t tokens = 0;             // the whole text's, specials included
};
// `model_max_tokens`: the model's limit (used when options.max_tokens is 0;
// 512 when both are 0). `pieces`: how many wordpieces `words` hold.
ChunkPlan PlanChunks(std::string_view text, std::span<const text::TokenizedWord> words,
                     size_t pieces, const ChunkingOptions& options, size_t model_max_tokens);

}  // namespace embedstream::pipeline
