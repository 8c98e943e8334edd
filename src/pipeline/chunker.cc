#include "pipeline/chunker.h"

#include <algorithm>

namespace embedstream::pipeline {
namespace {

// A run of pieces never cut (a sentence that fits, a word, or one piece of a
// word longer than a chunk).
struct Unit {
  uint32_t first_piece;
  uint32_t pieces;
  uint32_t byte_begin;
  uint32_t byte_end;
};

// Full-width terminals end a sentence even with no space after them
// (Chinese and Japanese write none).
bool IsWideTerminal(std::string_view w) {
  return w == "\xE3\x80\x82" /* 。 */ || w == "\xEF\xBC\x81" /* ！ */ ||
         w == "\xEF\xBC\x9F" /* ？ */;
}

bool IsTerminal(std::string_view w) {
  return w == "." || w == "!" || w == "?" || w == "\xE2\x80\xA6" /* … */ || IsWideTerminal(w);
}

bool IsCloser(std::string_view w) {
  return w == "\"" || w == "'" || w == ")" || w == "]" || w == "\xC2\xBB" /* » */ ||
         w == "\xE2\x80\x9D" /* ” */ || w == "\xE2\x80\x99" /* ’ */ ||
         w == "\xE3\x80\x8D" /* 」 */ || w == "\xE3\x80\x8F" /* 』 */ ||
         w == "\xEF\xBC\x89" /* ） */;
}

bool HasBlankLine(std::string_view gap) {
  const size_t first = gap.find('\n');
  return first != std::string_view::npos && gap.find('\n', first + 1) != std::string_view::npos;
}

// Does a sentence end after words[i]?
bool SentenceEndsAfter(std::string_view text, std::span<const text::TokenizedWord> words,
                       size_t i) {
  if (i + 1 >= words.size()) return true;
  const std::string_view gap = text.substr(words[i].end, words[i + 1].begin - words[i].end);
  if (HasBlankLine(gap)) return true;
  auto word = [&](size_t k) { return text.substr(words[k].begin, words[k].end - words[k].begin); };
  size_t k = i;
  // Closing quotes and brackets written right after the terminal belong to it.
  while (k > 0 && IsCloser(word(k)) && words[k - 1].end == words[k].begin) --k;
  // Words written together (no space between) go on, but after 。！？.
  if (gap.empty()) return IsWideTerminal(word(k));
  return IsTerminal(word(k));
}

void AddWordUnits(const text::TokenizedWord& w, size_t budget, std::vector<Unit>& units) {
  if (w.pieces <= budget) {
    units.push_back({w.first_piece, w.pieces, w.begin, w.end});
    return;
  }
  for (uint32_t p = 0; p < w.pieces; ++p) units.push_back({w.first_piece + p, 1, w.begin, w.end});
}

std::vector<Unit> Units(std::string_view text, std::span<const text::TokenizedWord> words,
                        size_t budget, ChunkingOptions::Split split) {
  std::vector<Unit> units;
  units.reserve(words.size());
  if (split == ChunkingOptions::Split::kTokens) {
    for (const auto& w : words) {
      if (w.pieces > 0) AddWordUnits(w, budget, units);
    }
    return units;
  }
  size_t start = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    if (!SentenceEndsAfter(text, words, i)) continue;
    uint32_t pieces = 0;
    for (size_t k = start; k <= i; ++k) pieces += words[k].pieces;
    if (pieces > 0 && pieces <= budget) {
      units.push_back({words[start].first_piece, pieces, words[start].begin, words[i].end});
    } else {
      for (size_t k = start; k <= i; ++k) {
        if (words[k].pieces > 0) AddWordUnits(words[k], budget, units);
      }
    }
    start = i + 1;
  }
  return units;
}

ChunkSpan SpanOf(const std::vector<Unit>& units, size_t from, size_t to) {
  ChunkSpan c;
  c.first_piece = units[from].first_piece;
  c.pieces = units[to - 1].first_piece + units[to - 1].pieces - c.first_piece;
  c.byte_begin = units[from].byte_begin;
  c.byte_end = units[from].byte_end;
  for (size_t u = from; u < to; ++u) c.byte_end = std::max(c.byte_end, units[u].byte_end);
  return c;
}

}  // namespace

const char* SplitName(ChunkingOptions::Split s) {
  return s == ChunkingOptions::Split::kTokens ? "tokens" : "sentence";
}

const char* OverflowName(ChunkingOptions::Overflow o) {
  switch (o) {
    case ChunkingOptions::Overflow::kTruncate:
      return "truncate";
    case ChunkingOptions::Overflow::kReject:
      return "reject";
    case ChunkingOptions::Overflow::kChunk:
      break;
  }
  return "chunk";
}

std::vector<ChunkSpan> CutChunks(std::string_view text, std::span<const text::TokenizedWord> words,
                                 size_t budget, size_t overlap, ChunkingOptions::Split split) {
  budget = std::max<size_t>(budget, 1);
  const std::vector<Unit> units = Units(text, words, budget, split);
  std::vector<ChunkSpan> chunks;
  size_t start = 0;
  while (start < units.size()) {
    size_t end = start;
    size_t pieces = 0;
    while (end < units.size() && pieces + units[end].pieces <= budget)
      pieces += units[end++].pieces;
    chunks.push_back(SpanOf(units, start, end));
    if (end == units.size()) break;
    // The next chunk repeats the last units of this one, up to `overlap`
    // pieces, as long as it still starts after this one and holds the next unit.
    size_t next = end;
    size_t repeated = 0;
    while (next - 1 > start && repeated + units[next - 1].pieces <= overlap) {
      repeated += units[--next].pieces;
    }
    while (next < end && repeated + units[end].pieces > budget) repeated -= units[next++].pieces;
    start = next;
  }
  SetCharOffsets(text, chunks);
  return chunks;
}

ChunkSpan TruncatedChunk(std::string_view text, std::span<const text::TokenizedWord> words,
                         size_t budget) {
  ChunkSpan c;
  for (const auto& w : words) {
    if (w.pieces == 0) continue;
    if (c.pieces == 0) {
      c.first_piece = w.first_piece;
      c.byte_begin = w.begin;
    }
    if (c.pieces >= budget) break;
    c.pieces = std::min<uint32_t>(static_cast<uint32_t>(budget), c.pieces + w.pieces);
    c.byte_end = w.end;
  }
  SetCharOffsets(text, std::span(&c, 1));
  return c;
}

namespace {

// Code points before a byte offset: the bytes that are not UTF-8
// continuation bytes, counted from a cursor that only moves forward.
class CharCounter {
 public:
  explicit CharCounter(std::string_view text) : text_(text) {}
  uint32_t At(uint32_t byte) {
    if (byte < pos_) pos_ = chars_ = 0;  // backwards: start over
    for (; pos_ < byte && pos_ < text_.size(); ++pos_) {
      if ((static_cast<unsigned char>(text_[pos_]) & 0xC0) != 0x80) ++chars_;
    }
    return chars_;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  uint32_t chars_ = 0;
};

}  // namespace

void SetCharOffsets(std::string_view text, std::span<ChunkSpan> spans) {
  CharCounter begins(text), ends(text);  // each grows monotonically
  for (auto& s : spans) {
    s.char_begin = begins.At(s.byte_begin);
    s.char_end = ends.At(s.byte_end);
  }
}

ChunkPlan PlanChunks(std::string_view text, std::span<const text::TokenizedWord> words,
                     size_t pieces, const ChunkingOptions& options, size_t model_max_tokens) {
  ChunkPlan plan;
  plan.max_tokens = options.max_tokens != 0 ? options.max_tokens : model_max_tokens;
  // Never more than the model takes: every chunk must fit it whole.
  if (model_max_tokens != 0) plan.max_tokens = std::min(plan.max_tokens, model_max_tokens);
  if (plan.max_tokens == 0) plan.max_tokens = 512;
  plan.tokens = pieces + 2;
  const size_t budget = plan.max_tokens > 3 ? plan.max_tokens - 2 : 1;
  if (pieces <= budget) return plan;
  switch (options.on_overflow) {
    case ChunkingOptions::Overflow::kReject:
      plan.kind = ChunkPlan::Kind::kTooLong;
      return plan;
    case ChunkingOptions::Overflow::kTruncate:
      plan.kind = ChunkPlan::Kind::kTruncated;
      plan.spans.push_back(TruncatedChunk(text, words, budget));
      return plan;
    case ChunkingOptions::Overflow::kChunk:
      break;
  }
  plan.kind = ChunkPlan::Kind::kChunked;
  plan.spans =
      CutChunks(text, words, budget, std::min(options.overlap_tokens, budget - 1), options.split);
  if (plan.spans.size() <= 1) plan.kind = ChunkPlan::Kind::kWhole;
  return plan;
}

}  // namespace embedstream::pipeline
