#include "text/hf_unicode.h"

#include <algorithm>
#include <span>

#include <utf8proc.h>

namespace embedstream::text {
namespace {

struct CodepointRange {
  char32_t first;
  char32_t last;
};

struct CodepointMapping {
  char32_t cp;
  uint32_t size;
  char32_t mapped[3];
};

#include "text/internal/hf_unicode_tables.inc"

bool InRanges(std::span<const CodepointRange> ranges, char32_t cp) {
  // First range whose last >= cp.
  auto it = std::lower_bound(ranges.begin(), ranges.end(), cp,
                             [](const CodepointRange& r, char32_t c) { return r.last < c; });
  return it != ranges.end() && it->first <= cp;
}

const CodepointMapping* FindMapping(std::span<const CodepointMapping> mappings, char32_t cp) {
  auto it = std::lower_bound(mappings.begin(), mappings.end(), cp,
                             [](const CodepointMapping& m, char32_t c) { return m.cp < c; });
  return it != mappings.end() && it->cp == cp ? &*it : nullptr;
}

size_t CopyMapping(const CodepointMapping& m, char32_t out[kHfMappingMax]) {
  for (uint32_t i = 0; i < m.size; ++i) out[i] = m.mapped[i];
  return m.size;
}

constexpr bool RangesSorted(std::span<const CodepointRange> ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].first > ranges[i].last) return false;
    if (i > 0 && ranges[i - 1].last >= ranges[i].first) return false;
  }
  return true;
}
constexpr bool MappingsSorted(std::span<const CodepointMapping> mappings) {
  for (size_t i = 1; i < mappings.size(); ++i) {
    if (mappings[i - 1].cp >= mappings[i].cp) return false;
  }
  return true;
}
static_assert(RangesSorted(kHfControlRanges));
static_assert(RangesSorted(kHfPunctuationRanges));
static_assert(RangesSorted(kHfNonspacingMarkRanges));
static_assert(MappingsSorted(kHfLowercaseOverrides));
static_assert(MappingsSorted(kHfDecompositionOverrides));

}  // namespace

bool HfIsWhitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  switch (cp) {
    case 0x0085:
    case 0x00A0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool HfIsControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return InRanges(kHfControlRanges, cp);
}

bool HfIsPunctuation(char32_t cp) { return InRanges(kHfPunctuationRanges, cp); }

bool HfIsNonspacingMark(char32_t cp) {
  return cp >= 0x300 && InRanges(kHfNonspacingMarkRanges, cp);
}

bool HfIsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

size_t HfDecompose(char32_t cp, char32_t out[kHfMappingMax]) {
  if (cp < 0xC0) {
    out[0] = cp;
    return 1;
  }
  if (const CodepointMapping* m = FindMapping(kHfDecompositionOverrides, cp)) {
    return CopyMapping(*m, out);
  }
  utf8proc_int32_t buf[kHfMappingMax];
  int boundclass = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf,
                                               static_cast<utf8proc_ssize_t>(kHfMappingMax),
                                               UTF8PROC_DECOMPOSE, &boundclass);
  if (n < 1 || n > static_cast<utf8proc_ssize_t>(kHfMappingMax)) {
    out[0] = cp;  // unassigned or impossible: leave as is
    return 1;
  }
  for (utf8proc_ssize_t i = 0; i < n; ++i) out[i] = static_cast<char32_t>(buf[i]);
  return static_cast<size_t>(n);
}

size_t HfLowercase(char32_t cp, char32_t out[kHfMappingMax]) {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  if (const CodepointMapping* m = FindMapping(kHfLowercaseOverrides, cp)) {
    return CopyMapping(*m, out);
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return 1;
}

}  // namespace embedstream::text
