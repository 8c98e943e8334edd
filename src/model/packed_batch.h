#pragma once
// PackedBatch: the token ids of several sequences laid end to end, without
// padding. Sequence s owns tokens [offsets[s], offsets[s+1]).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace embedstream::model {

struct PackedBatch {
  std::vector<int32_t> token_ids;
  std::vector<int32_t> offsets{0};  // num_sequences() + 1 entries

  size_t num_sequences() const { return offsets.size() - 1; }
  size_t num_tokens() const { return token_ids.size(); }
  size_t length(size_t s) const { return static_cast<size_t>(offsets[s + 1] - offsets[s]); }

  void Add(const std::vector<int32_t>& ids) {
    token_ids.insert(token_ids.end(), ids.begin(), ids.end());
    offsets.push_back(static_cast<int32_t>(token_ids.size()));
  }
  void Clear() {
    token_ids.clear();
    offsets.assign(1, 0);
  }
};

}  // namespace embedstream::model
