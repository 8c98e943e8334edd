#include "text/vocab.h"

#include <bit>
#include <cstring>
#include <limits>

#include "core/check.h"

namespace embedstream::text {
namespace {

// memcmp must not see the null data() of an empty string_view.
bool BytesEqual(const char* a, std::string_view b) {
  return b.empty() || std::memcmp(a, b.data(), b.size()) == 0;
}

}  // namespace

uint64_t Vocab::Finish(uint64_t state) {
  // FNV-1a mixes the low bits poorly for short keys; finish with a multiply-xorshift.
  state ^= state >> 32;
  state *= 0xd6e8feb86659fd93ull;
  state ^= state >> 32;
  return state;
}

Result<Vocab> Vocab::Build(std::vector<std::string> tokens) {
  if (tokens.empty()) return Error(errc::invalid_argument, "vocab is empty");
  size_t total_bytes = 0;
  for (const std::string& t : tokens) total_bytes += t.size();
  if (tokens.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2) ||
      total_bytes >= std::numeric_limits<uint32_t>::max()) {
    return Error(errc::invalid_argument, "vocab too large: " + std::to_string(tokens.size()) +
                                             " tokens, " + std::to_string(total_bytes) + " bytes");
  }

  Vocab v;
  v.arena_.reserve(total_bytes);
  v.offsets_.reserve(tokens.size() + 1);
  for (const std::string& t : tokens) {
    v.offsets_.push_back(static_cast<uint32_t>(v.arena_.size()));
    v.arena_ += t;
    v.max_token_bytes_ = std::max(v.max_token_bytes_, t.size());
  }
  v.offsets_.push_back(static_cast<uint32_t>(v.arena_.size()));

  // Load factor <= 1/2 keeps linear probes short.
  const size_t slot_count = std::bit_ceil(tokens.size() * 2);
  v.slots_.assign(slot_count, Slot{});
  v.mask_ = slot_count - 1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view token = v.Token(static_cast<int32_t>(i));
    const uint64_t h = Finish(HashBytes(kHashSeed, token));
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t s = h & v.mask_;; s = (s + 1) & v.mask_) {
      Slot& slot = v.slots_[s];
      if (slot.id == kNotFound) {
        slot = Slot{tag, static_cast<int32_t>(i)};
        break;
      }
      if (slot.tag == tag && v.Token(slot.id) == token) {
        slot.id = static_cast<int32_t>(i);  // duplicate string: the later id wins
        break;
      }
    }
  }
  return v;
}

int32_t Vocab::Find(std::string_view token) const {
  return FindHashed(HashBytes(kHashSeed, token), {}, token);
}

int32_t Vocab::FindHashed(uint64_t state, std::string_view prefix, std::string_view piece) const {
  if (slots_.empty()) return kNotFound;
  const uint64_t h = Finish(state);
  const auto tag = static_cast<uint32_t>(h >> 32);
  const size_t len = prefix.size() + piece.size();
  for (uint64_t s = h & mask_;; s = (s + 1) & mask_) {
    const Slot& slot = slots_[s];
    if (slot.id == kNotFound) return kNotFound;
    if (slot.tag != tag) continue;
    const uint32_t begin = offsets_[static_cast<size_t>(slot.id)];
    const uint32_t end = offsets_[static_cast<size_t>(slot.id) + 1];
    if (end - begin != len) continue;
    const char* t = arena_.data() + begin;
    if (BytesEqual(t, prefix) && BytesEqual(t + prefix.size(), piece)) {
      return slot.id;
    }
  }
}

std::string_view Vocab::Token(int32_t id) const {
  ES_CHECK(id >= 0 && static_cast<size_t>(id) < size());
  const size_t i = static_cast<size_t>(id);
  return std::string_view(arena_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
}

}  // namespace embedstream::text
