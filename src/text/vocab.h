#pragma once
// Vocab: token strings <-> dense ids with a flat open-addressing hash index.
//
// Owns one arena of all token bytes plus the index; immutable after Build, so
// all reads are thread-safe. Lookups take string_views (no allocation) and can
// look up `prefix + piece` without concatenating, from an FNV-1a state the caller
// advanced byte by byte (WordPiece hashes all candidate ends in one pass).
//
// Example:
//   auto vocab = Vocab::Build({"[PAD]", "hello", "##lo"});
//   int32_t id = vocab->Find("hello");                           // 1
//   uint64_t h = Vocab::HashBytes(Vocab::kHashSeed, "##");
//   h = Vocab::HashBytes(h, "lo");
//   int32_t cont = vocab->FindHashed(h, "##", "lo");             // 2

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace embedstream::text {

class Vocab {
 public:
  static constexpr int32_t kNotFound = -1;
  static constexpr uint64_t kHashSeed = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis

  // tokens[i] gets id i. When a string occurs twice, lookups find the later id
  // (as Hugging Face does when it reads vocab.txt). Errors: empty, or too large.
  static Result<Vocab> Build(std::vector<std::string> tokens);

  Vocab() = default;

  // Id of `token`, or kNotFound.
  int32_t Find(std::string_view token) const;
  // Id of prefix + piece, where `state` is the FNV-1a state after hashing exactly
  // those bytes (HashBytes/HashByte from kHashSeed); or kNotFound.
  int32_t FindHashed(uint64_t state, std::string_view prefix, std::string_view piece) const;

  static uint64_t HashByte(uint64_t state, unsigned char byte) {
    return (state ^ byte) * 0x100000001b3ull;
  }
  static uint64_t HashBytes(uint64_t state, std::string_view bytes) {
    for (char c : bytes) state = HashByte(state, static_cast<unsigned char>(c));
    return state;
  }

  // The token with this id; id must be in [0, size()).
  std::string_view Token(int32_t id) const;
  size_t size() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  // Length in bytes of the longest token.
  size_t max_token_bytes() const { return max_token_bytes_; }

 private:
  struct Slot {
    uint32_t tag = 0;  // high half of the final hash
    int32_t id = kNotFound;
  };
  static uint64_t Finish(uint64_t state);

  std::string arena_;              // all tokens back to back
  std::vector<uint32_t> offsets_;  // token i is arena_[offsets_[i], offsets_[i+1])
  std::vector<Slot> slots_;        // power-of-two size, linear probing
  uint64_t mask_ = 0;
  size_t max_token_bytes_ = 0;
};

}  // namespace embedstream::text
