// Text to token ids: text::BertTokenizer (src/text/bert_tokenizer.h), built
// with FromVocab from a small vocabulary made here (no model files).
// Input: byte 0 = max_tokens (0..255), byte 1 picks the options, the rest is
// the text. Invariants: [CLS] first, [SEP] last, 2 <= size <= max(2,
// max_tokens), every id < vocab_size(), a truncated encoding is a prefix of
// the full one, EncodeInto appends exactly what Encode returns.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "text/bert_tokenizer.h"

using namespace embedstream;

namespace {

constexpr size_t kVariants = 4;
const text::BertTokenizer* g_tokenizers[kVariants] = {};

std::vector<std::string> MakeVocab() {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (char c = 'a'; c <= 'z'; ++c) {
    v.emplace_back(1, c);
    v.push_back(std::string("##") + c);
  }
  for (char c = 'A'; c <= 'Z'; ++c) v.emplace_back(1, c);  // reachable without lowercase
  for (char c = '0'; c <= '9'; ++c) {
    v.emplace_back(1, c);
    v.push_back(std::string("##") + c);
  }
  for (char c : std::string("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) v.emplace_back(1, c);
  for (const char* w :
       {"the",  "hello", "world", "machine", "learn", "##ing",  "##s", "##ed",     "##er",
        "##ly", "emb",   "##ed",  "##ding",  "token", "##izer", "un",  "##believ", "##able",
        "caf",  "##é",   "é",     "ü",       "ñ",     "ß",      "中",  "文",       "日",
        "本",   "語",    "한",    "##국",    "ا",     "б",      "…",   "€",        "😀"}) {
    v.emplace_back(w);
  }
  // Vocab::Build refuses duplicates: keep the first of each.
  std::vector<std::string> unique;
  for (auto& t : v) {
    bool seen = false;
    for (const auto& u : unique) seen = seen || u == t;
    if (!seen) unique.push_back(std::move(t));
  }
  return unique;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  for (size_t i = 0; i < kVariants; ++i) {
    text::BertTokenizerOptions options;
    options.lowercase = (i & 1) == 0;
    options.split_special_tokens = (i & 2) != 0;
    if (i == 3) {
      options.strip_accents = false;
      options.handle_chinese_chars = false;
      options.max_input_chars_per_word = 8;
    }
    auto tok = text::BertTokenizer::FromVocab(MakeVocab(), options);
    if (!tok) {
      std::fprintf(stderr, "FromVocab: %s\n", tok.error().ToString().c_str());
      __builtin_trap();
    }
    g_tokenizers[i] = new text::BertTokenizer(std::move(*tok));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_tokens = data[0];
  const text::BertTokenizer& tok = *g_tokenizers[data[1] % kVariants];
  const std::string_view utf8 = fuzz::AsText(data + 2, size - 2);
  const auto vocab_size = static_cast<int32_t>(tok.vocab_size());

  const std::vector<int32_t> ids = tok.Encode(utf8, max_tokens);
  FUZZ_CHECK(ids.size() >= 2);
  FUZZ_CHECK(ids.size() <= std::max<size_t>(2, max_tokens));
  FUZZ_CHECK(ids.front() == tok.cls_id());
  FUZZ_CHECK(ids.back() == tok.sep_id());
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < vocab_size);

  // Truncation keeps the first pieces of the untruncated encoding.
  const std::vector<int32_t> full = tok.Encode(utf8, utf8.size() + 2);
  FUZZ_CHECK(full.size() >= ids.size());
  for (size_t i = 0; i + 1 < ids.size(); ++i) FUZZ_CHECK(ids[i] == full[i]);
  if (full.size() <= std::max<size_t>(2, max_tokens)) FUZZ_CHECK(ids == full);

  // EncodeInto appends after what is there.
  std::vector<int32_t> out = {-7};
  const size_t n = tok.EncodeInto(utf8, max_tokens, out);
  FUZZ_CHECK(n == ids.size() && out.size() == n + 1 && out[0] == -7);
  FUZZ_CHECK(std::equal(ids.begin(), ids.end(), out.begin() + 1));

  const std::vector<std::string> pieces = tok.Tokenize(utf8);
  FUZZ_CHECK(pieces.size() + 2 == full.size());
  for (const auto& p : pieces) FUZZ_CHECK(!p.empty());
  return 0;
}
