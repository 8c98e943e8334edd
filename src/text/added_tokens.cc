#include "text/added_tokens.h"

#include <algorithm>
#include <cstring>

namespace embedstream::text {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) {
  for (AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    const bool seen = std::any_of(tokens_.begin(), tokens_.end(),
                                  [&](const AddedToken& o) { return o.content == t.content; });
    if (seen) continue;
    first_byte_[static_cast<unsigned char>(t.content[0])] = true;
    tokens_.push_back(std::move(t));
  }
  std::stable_sort(tokens_.begin(), tokens_.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  });
  const auto distinct = std::count(first_byte_.begin(), first_byte_.end(), true);
  only_first_byte_ = distinct == 1 ? static_cast<unsigned char>(tokens_[0].content[0]) : -1;
}

bool AddedTokenMatcher::FindNext(std::string_view text, size_t from, AddedTokenMatch& match) const {
  if (tokens_.empty()) return false;
  for (size_t i = from; i < text.size(); ++i) {
    if (only_first_byte_ >= 0) {
      const void* hit = std::memchr(text.data() + i, only_first_byte_, text.size() - i);
      if (hit == nullptr) return false;
      i = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    } else if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      continue;
    }
    const std::string_view rest = text.substr(i);
    for (const AddedToken& t : tokens_) {  // longest first
      if (rest.starts_with(t.content)) {
        match = {i, i + t.content.size(), t.id};
        return true;
      }
    }
  }
  return false;
}

}  // namespace embedstream::text
