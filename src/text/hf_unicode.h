#pragma once
// Character classes and mappings exactly as Hugging Face `tokenizers` uses them in
// BertNormalizer and BertPreTokenizer.
//
// HF's classes come from the `unicode_categories` 0.1.1 crate, frozen at an old
// Unicode version, so they are generated tables (internal/hf_unicode_tables.inc,
// see tools/gen_hf_unicode_tables.py) rather than utf8proc's current categories.
// Decomposition, combining classes and lowercase come from utf8proc plus the few
// overrides where HF's Unicode version maps differently.
//
// All functions are pure and thread-safe. Code points are char32_t <= 0x10FFFF.

#include <cstddef>
#include <cstdint>

namespace embedstream::text {

// Up to this many code points come out of one HfDecompose/HfLowercase call
// (the longest canonical decomposition has 4; the longest lowercase 2).
inline constexpr size_t kHfMappingMax = 8;

// Rust's char::is_whitespace (Unicode White_Space): \t \n \v \f \r, space, U+0085,
// U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000.
bool HfIsWhitespace(char32_t cp);

// BertNormalizer's is_control: Cc, Cf or Co in HF's tables, except \t \n \r.
bool HfIsControl(char32_t cp);

// BertPreTokenizer's punctuation: ASCII punctuation or a P* category in HF's tables.
bool HfIsPunctuation(char32_t cp);

// Mn in HF's tables (what strip_accents removes after NFD).
bool HfIsNonspacingMark(char32_t cp);

// BertNormalizer's "Chinese character": the CJK ideograph blocks HF lists.
// Note HF's range 0x2B920-0x2CEAF (not 0x2B820): CJK Ext. E's first 256 are excluded.
bool HfIsChineseChar(char32_t cp);

// Canonical combining class (utf8proc).
int CombiningClass(char32_t cp);

// Full canonical decomposition (NFD of one code point, not yet reordered) into
// out[0..n); returns n (>= 1).
size_t HfDecompose(char32_t cp, char32_t out[kHfMappingMax]);

// Rust's char::to_lowercase: simple lowercase from utf8proc plus the full
// expansions Rust applies unconditionally (U+0130 'İ' -> "i\u0307") and the code
// points Rust's newer Unicode maps differently. Returns n (>= 1).
size_t HfLowercase(char32_t cp, char32_t out[kHfMappingMax]);

}  // namespace embedstream::text
