#include "text/wordpiece.h"

#include <algorithm>

namespace embedstream::text {
namespace {

// Candidate ends tested per start with hashes from one forward pass; longer
// windows (only with a vocab holding tokens this long) hash each candidate anew.
constexpr size_t kHashWindowMax = 128;

bool IsCharBoundary(std::string_view s, size_t i) {
  return i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0u) != 0x80u;
}

}  // namespace

Result<WordPiece> WordPiece::Create(Vocab vocab, WordPieceConfig config) {
  WordPiece wp;
  wp.unk_id_ = vocab.Find(config.unk_token);
  if (wp.unk_id_ == Vocab::kNotFound) {
    return Error(errc::invalid_argument,
                 "WordPiece: unk token '" + config.unk_token + "' is not in the vocab");
  }
  const std::string_view prefix = config.continuing_subword_prefix;
  wp.prefix_state_ = Vocab::HashBytes(Vocab::kHashSeed, prefix);
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string_view token = vocab.Token(static_cast<int32_t>(id));
    wp.first_piece_bytes_max_ = std::max(wp.first_piece_bytes_max_, token.size());
    if (token.starts_with(prefix)) {
      wp.continuation_piece_bytes_max_ =
          std::max(wp.continuation_piece_bytes_max_, token.size() - prefix.size());
    }
  }
  wp.vocab_ = std::move(vocab);
  wp.config_ = std::move(config);
  return wp;
}

int32_t WordPiece::LongestPiece(std::string_view word, size_t start, size_t* end) const {
  const bool continuation = start > 0;
  const std::string_view prefix =
      continuation ? std::string_view(config_.continuing_subword_prefix) : std::string_view();
  const uint64_t base = continuation ? prefix_state_ : Vocab::kHashSeed;
  const size_t window = std::min(
      word.size() - start, continuation ? continuation_piece_bytes_max_ : first_piece_bytes_max_);

  if (window <= kHashWindowMax) {
    uint64_t states[kHashWindowMax + 1];
    states[0] = base;
    for (size_t k = 0; k < window; ++k) {
      states[k + 1] = Vocab::HashByte(states[k], static_cast<unsigned char>(word[start + k]));
    }
    for (size_t len = window; len > 0; --len) {
      if (!IsCharBoundary(word, start + len)) continue;
      const int32_t id = vocab_.FindHashed(states[len], prefix, word.substr(start, len));
      if (id != Vocab::kNotFound) {
        *end = start + len;
        return id;
      }
    }
    return Vocab::kNotFound;
  }
  for (size_t len = window; len > 0; --len) {
    if (!IsCharBoundary(word, start + len)) continue;
    const std::string_view piece = word.substr(start, len);
    const int32_t id = vocab_.FindHashed(Vocab::HashBytes(base, piece), prefix, piece);
    if (id != Vocab::kNotFound) {
      *end = start + len;
      return id;
    }
  }
  return Vocab::kNotFound;
}

size_t WordPiece::TokenizeWord(std::string_view word, size_t chars, size_t room,
                               std::vector<int32_t>& out) const {
  if (chars > config_.max_input_chars_per_word) {
    if (room > 0) out.push_back(unk_id_);
    return 1;
  }
  const size_t mark = out.size();
  size_t pieces = 0;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = 0;
    const int32_t id = LongestPiece(word, start, &end);
    if (id == Vocab::kNotFound) {  // HF: the whole word becomes unk
      out.resize(mark);
      if (room > 0) out.push_back(unk_id_);
      return 1;
    }
    // Past `room` keep matching without storing: a later failure still turns
    // the whole word into unk.
    if (pieces < room) out.push_back(id);
    ++pieces;
    start = end;
  }
  return pieces;
}

}  // namespace embedstream::text
