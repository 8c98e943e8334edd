#include "text/normalizer.h"

#include <algorithm>
#include <vector>

#include "text/hf_unicode.h"
#include "text/utf8.h"

namespace embedstream::text {

BertNormalizer::BertNormalizer(BertNormalizerConfig config) : config_(config) {
  for (char32_t c = 0; c < 128; ++c) {
    int16_t out = static_cast<int16_t>(c);
    if (config_.clean_text) {
      if (c == 0 || HfIsControl(c)) {
        out = kAsciiDrop;
      } else if (HfIsWhitespace(c)) {
        out = ' ';
      }
    }
    if (config_.lowercase && out >= 'A' && out <= 'Z') out = static_cast<int16_t>(out + 32);
    ascii_map_[c] = out;
  }
}

// Steps 2-4 for one call. Canonical reordering only concerns the characters that
// survive the Mn filter with a non-zero combining class (rare: a few Mc and the
// marks HF's old tables do not call Mn), so only those wait in `pending_`, and
// the filter can run before the reordering without changing the result.
class BertNormalizer::Run {
 public:
  Run(const BertNormalizerConfig& config, std::string& out, std::vector<uint32_t>* source)
      : config_(config), out_(out), source_(source) {}

  // The input offset of the character being pushed (source tracking only).
  void At(uint32_t offset) { at_ = offset; }

  // Step 1 for one non-ASCII code point, then the rest.
  void PushNonAscii(char32_t cp) {
    if (config_.clean_text) {
      if (cp == kReplacementChar || HfIsControl(cp)) return;
      if (HfIsWhitespace(cp)) {
        HandleChinese(' ');
        return;
      }
    }
    HandleChinese(cp);
  }

  // Called before ASCII, which ascii_map_ handles whole: steps 2-4 leave ASCII
  // as is, but an ASCII char (combining class 0) ends a run of marks awaiting
  // reordering.
  void BeforeAscii() {
    if (!pending_.empty()) FlushPending();
  }

  void Finish() {
    if (!pending_.empty()) FlushPending();
  }

 private:
  struct Mark {
    int ccc;
    char32_t cp;
    uint32_t at;
  };

  // Steps 2, 3 and 4: each takes one code point the step before produced.
  void HandleChinese(char32_t cp) {
    if (config_.handle_chinese_chars && HfIsChineseChar(cp)) {
      StripAccents(' ');
      StripAccents(cp);
      StripAccents(' ');
    } else {
      StripAccents(cp);
    }
  }

  void StripAccents(char32_t cp) {
    if (!config_.strip_accents) {
      LowercaseAndAppend(cp);
      return;
    }
    char32_t parts[kHfMappingMax];
    const size_t n = HfDecompose(cp, parts);
    for (size_t i = 0; i < n; ++i) {
      const char32_t part = parts[i];
      if (HfIsNonspacingMark(part)) continue;
      const int ccc = CombiningClass(part);
      if (ccc == 0) {
        if (!pending_.empty()) FlushPending();
        LowercaseAndAppend(part);
      } else {
        pending_.push_back({ccc, part, at_});
      }
    }
  }

  void FlushPending() {
    std::stable_sort(pending_.begin(), pending_.end(),
                     [](const Mark& a, const Mark& b) { return a.ccc < b.ccc; });
    const uint32_t at = at_;
    for (const Mark& m : pending_) {
      at_ = m.at;
      LowercaseAndAppend(m.cp);
    }
    at_ = at;
    pending_.clear();
  }

  void LowercaseAndAppend(char32_t cp) {
    if (!config_.lowercase) {
      AppendUtf8(cp, out_);
    } else {
      char32_t lower[kHfMappingMax];
      const size_t n = HfLowercase(cp, lower);
      for (size_t i = 0; i < n; ++i) AppendUtf8(lower[i], out_);
    }
    if (source_ != nullptr) source_->resize(out_.size(), at_);
  }

  const BertNormalizerConfig& config_;
  std::string& out_;
  std::vector<uint32_t>* source_;  // null: no tracking
  uint32_t at_ = 0;
  std::vector<Mark> pending_;  // allocates only for stacked non-Mn combining marks
};

template <bool kTrack>
void BertNormalizer::Append(std::string_view utf8, std::string& out,
                            std::vector<uint32_t>* source) const {
  out.reserve(out.size() + utf8.size());
  Run run(config_, out, source);
  const size_t n = utf8.size();
  size_t i = 0;
  while (i < n) {
    if (static_cast<unsigned char>(utf8[i]) < 0x80) {
      run.BeforeAscii();
      do {
        const int16_t mapped = ascii_map_[static_cast<unsigned char>(utf8[i])];
        if (mapped != kAsciiDrop) {
          out.push_back(static_cast<char>(mapped));
          if constexpr (kTrack) source->push_back(static_cast<uint32_t>(i));
        }
        ++i;
      } while (i < n && static_cast<unsigned char>(utf8[i]) < 0x80);
      continue;
    }
    const DecodedChar d = DecodeUtf8(utf8, i);
    if constexpr (kTrack) run.At(static_cast<uint32_t>(i));
    i += d.size;
    run.PushNonAscii(d.cp);
  }
  run.Finish();
}

void BertNormalizer::NormalizeAppend(std::string_view utf8, std::string& out) const {
  Append<false>(utf8, out, nullptr);
}

void BertNormalizer::NormalizeAppend(std::string_view utf8, std::string& out,
                                     std::vector<uint32_t>& source) const {
  Append<true>(utf8, out, &source);
}

std::string BertNormalizer::Normalize(std::string_view utf8) const {
  std::string out;
  NormalizeAppend(utf8, out);
  return out;
}

}  // namespace embedstream::text
