#pragma once
// BertNormalizer: Hugging Face's BERT text normalization, bit for bit.
//
// Steps, in HF's order, each optional:
//   1. clean_text: drop U+0000, U+FFFD and control chars (HfIsControl: Cc/Cf/Co
//      except \t \n \r); map whitespace (HfIsWhitespace, \t \n \r included) to ' '.
//   2. handle_chinese_chars: put ' ' before and after each CJK ideograph.
//   3. strip_accents: canonical decomposition (NFD, with canonical reordering)
//      and drop nonspacing marks (Mn).
//   4. lowercase: Rust's char::to_lowercase (full mapping: 'İ' -> "i\u0307").
// Input bytes that are not valid UTF-8 decode to U+FFFD one byte each (utf8.h);
// with clean_text they vanish, without it they stay as U+FFFD.
//
// Immutable after construction; Normalize* are const and thread-safe.
//
// Example:
//   BertNormalizer n({});                       // all steps on
//   n.Normalize("Héllo\tWORLD 中文")            // "hello world  中  文 "

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embedstream::text {

struct BertNormalizerConfig {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // already resolved (HF: unset follows lowercase)
  bool lowercase = true;
};

class BertNormalizer {
 public:
  explicit BertNormalizer(BertNormalizerConfig config);

  // Appends the normalized form of `utf8` to `out` (valid UTF-8).
  void NormalizeAppend(std::string_view utf8, std::string& out) const;
  std::string Normalize(std::string_view utf8) const;
  // Same, and for each byte appended to `out` appends to `source` the offset
  // in `utf8` of the input character it came from (for chunking: a word of
  // the normalized text maps back to its bytes in the input).
  void NormalizeAppend(std::string_view utf8, std::string& out,
                       std::vector<uint32_t>& source) const;

  const BertNormalizerConfig& config() const { return config_; }

 private:
  class Run;  // per-call state (the reorder buffer of strip_accents)
  template <bool kTrack>
  void Append(std::string_view utf8, std::string& out, std::vector<uint32_t>* source) const;

  BertNormalizerConfig config_;
  // What an ASCII byte becomes: kAsciiDrop, or the output byte.
  static constexpr int16_t kAsciiDrop = -1;
  std::array<int16_t, 128> ascii_map_{};
};

}  // namespace embedstream::text
