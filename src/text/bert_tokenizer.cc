#include "text/bert_tokenizer.h"

#include <algorithm>
#include <cstring>

#include "text/hf_tokenizer_files.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace embedstream::text {
namespace {

// Normalization runs over chunks of about this many input bytes, cut at an ASCII
// space (a word boundary whatever the options), so a long text that truncation
// cuts early is not normalized in full and the scratch buffer stays small.
constexpr size_t kChunkBytes = 16 * 1024;
// A thread's scratch buffer above this size is released after the call.
constexpr size_t kScratchKeepBytes = 4 * 1024 * 1024;

size_t ChunkEnd(std::string_view text, size_t pos) {
  if (text.size() - pos <= kChunkBytes) return text.size();
  const size_t from = pos + kChunkBytes;
  const void* space = std::memchr(text.data() + from, ' ', text.size() - from);
  return space == nullptr ? text.size()
                          : static_cast<size_t>(static_cast<const char*>(space) - text.data());
}

BertNormalizerConfig NormalizerConfig(const BertTokenizerOptions& o) {
  return {.clean_text = o.clean_text,
          .handle_chinese_chars = o.handle_chinese_chars,
          .strip_accents = o.strip_accents.value_or(o.lowercase),
          .lowercase = o.lowercase};
}

}  // namespace

BertTokenizer::BertTokenizer(BertTokenizerOptions options, WordPiece wordpiece,
                             std::vector<std::string> extra_tokens, AddedTokenMatcher added_tokens,
                             int32_t cls_id, int32_t sep_id, int32_t pad_id)
    : options_(std::move(options)),
      normalizer_(NormalizerConfig(options_)),
      wordpiece_(std::move(wordpiece)),
      extra_tokens_(std::move(extra_tokens)),
      added_tokens_(std::move(added_tokens)),
      cls_id_(cls_id),
      sep_id_(sep_id),
      pad_id_(pad_id) {}

Result<BertTokenizer> BertTokenizer::Load(const std::filesystem::path& model_dir) {
  Result<BertTokenizerSpec> spec = ReadTokenizerDir(model_dir);
  if (!spec) return spec.error();
  return Assemble(std::move(*spec));
}

Result<BertTokenizer> BertTokenizer::FromVocab(std::vector<std::string> vocab,
                                               BertTokenizerOptions options) {
  BertTokenizerSpec spec;
  spec.added_tokens = SpecialAddedTokens(vocab, options);
  spec.vocab = std::move(vocab);
  spec.options = std::move(options);
  return Assemble(std::move(spec));
}

Result<BertTokenizer> BertTokenizer::Assemble(BertTokenizerSpec spec) {
  const size_t model_size = spec.vocab.size();
  Result<Vocab> vocab = Vocab::Build(std::move(spec.vocab));
  if (!vocab) return vocab.error();

  // Added tokens past the WordPiece vocab extend the id space without gaps.
  std::vector<AddedToken> extra;
  for (const AddedToken& t : spec.added_tokens) {
    if (static_cast<size_t>(t.id) >= model_size) extra.push_back(t);
  }
  std::sort(extra.begin(), extra.end(),
            [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  std::vector<std::string> extra_tokens;
  for (const AddedToken& t : extra) {
    if (static_cast<size_t>(t.id) != model_size + extra_tokens.size()) {
      return Error(errc::corrupt, "added token '" + t.content + "' has id " + std::to_string(t.id) +
                                      "; expected " +
                                      std::to_string(model_size + extra_tokens.size()));
    }
    extra_tokens.push_back(t.content);
  }

  auto resolve = [&](const std::string& token, const char* role) -> Result<int32_t> {
    for (const AddedToken& t : spec.added_tokens) {
      if (t.content == token) return t.id;
    }
    const int32_t id = vocab->Find(token);
    if (id == Vocab::kNotFound) {
      return Error(errc::invalid_argument,
                   std::string(role) + " token '" + token + "' is not in the vocab");
    }
    return id;
  };
  Result<int32_t> cls = resolve(spec.options.cls_token, "cls");
  if (!cls) return cls.error();
  Result<int32_t> sep = resolve(spec.options.sep_token, "sep");
  if (!sep) return sep.error();
  Result<int32_t> pad = resolve(spec.options.pad_token, "pad");
  if (!pad) return pad.error();

  Result<WordPiece> wordpiece = WordPiece::Create(
      std::move(*vocab), {.unk_token = spec.options.unk_token,
                          .continuing_subword_prefix = spec.options.continuing_subword_prefix,
                          .max_input_chars_per_word = spec.options.max_input_chars_per_word});
  if (!wordpiece) return wordpiece.error();

  return BertTokenizer(std::move(spec.options), std::move(*wordpiece), std::move(extra_tokens),
                       AddedTokenMatcher(std::move(spec.added_tokens)), *cls, *sep, *pad);
}

std::vector<int32_t> BertTokenizer::Encode(std::string_view utf8, size_t max_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(std::min(std::max<size_t>(max_tokens, 2), utf8.size() + 2));
  EncodeInto(utf8, max_tokens, ids);
  return ids;
}

size_t BertTokenizer::EncodeInto(std::string_view utf8, size_t max_tokens,
                                 std::vector<int32_t>& out) const {
  const size_t total = std::max<size_t>(max_tokens, 2);
  const size_t begin = out.size();
  out.push_back(cls_id_);
  EncodePieces(utf8, total - 2, out);
  out.push_back(sep_id_);
  return out.size() - begin;
}

size_t BertTokenizer::EncodePieces(std::string_view utf8, size_t room,
                                   std::vector<int32_t>& out) const {
  size_t count = 0;
  size_t pos = 0;
  AddedTokenMatch match;
  while (pos < utf8.size() && count < room) {
    const bool found = !options_.split_special_tokens && added_tokens_.FindNext(utf8, pos, match);
    const size_t text_end = found ? match.begin : utf8.size();
    count += EncodeText(utf8.substr(pos, text_end - pos), room - count, out);
    if (!found) break;
    if (count < room) {
      out.push_back(match.id);
      ++count;
    }
    pos = match.end;
  }
  return count;
}

size_t BertTokenizer::EncodeText(std::string_view utf8, size_t room,
                                 std::vector<int32_t>& out) const {
  thread_local std::string normalized;
  size_t count = 0;
  size_t pos = 0;
  while (pos < utf8.size() && count < room) {
    const size_t end = ChunkEnd(utf8, pos);
    normalized.clear();
    normalizer_.NormalizeAppend(utf8.substr(pos, end - pos), normalized);
    size_t word_pos = 0;
    PreTokenizedWord word;
    while (count < room && BertPreTokenizer::NextWord(normalized, word_pos, word)) {
      const size_t left = room - count;
      count += std::min(left, wordpiece_.TokenizeWord(word.text, word.chars, left, out));
    }
    pos = end;
  }
  if (normalized.capacity() > kScratchKeepBytes) std::string().swap(normalized);
  return count;
}

void BertTokenizer::EncodeWords(std::string_view utf8, std::vector<int32_t>& ids,
                                std::vector<TokenizedWord>& words) const {
  ids.clear();
  words.clear();
  size_t pos = 0;
  AddedTokenMatch match;
  while (pos < utf8.size()) {
    const bool found = !options_.split_special_tokens && added_tokens_.FindNext(utf8, pos, match);
    const size_t text_end = found ? match.begin : utf8.size();
    EncodeTextWords(utf8.substr(pos, text_end - pos), static_cast<uint32_t>(pos), ids, words);
    if (!found) break;
    words.push_back({static_cast<uint32_t>(match.begin), static_cast<uint32_t>(match.end),
                     static_cast<uint32_t>(ids.size()), 1});
    ids.push_back(match.id);
    pos = match.end;
  }
}

void BertTokenizer::EncodeTextWords(std::string_view utf8, uint32_t base, std::vector<int32_t>& ids,
                                    std::vector<TokenizedWord>& words) const {
  thread_local std::string normalized;
  thread_local std::vector<uint32_t> source;
  size_t pos = 0;
  while (pos < utf8.size()) {
    const size_t end = ChunkEnd(utf8, pos);
    const std::string_view part = utf8.substr(pos, end - pos);
    normalized.clear();
    source.clear();
    normalizer_.NormalizeAppend(part, normalized, source);
    size_t word_pos = 0;
    PreTokenizedWord word;
    while (BertPreTokenizer::NextWord(normalized, word_pos, word)) {
      const size_t b = static_cast<size_t>(word.text.data() - normalized.data());
      const size_t last = source[b + word.text.size() - 1];  // the last char's input offset
      const size_t first_piece = ids.size();
      wordpiece_.TokenizeWord(word.text, word.chars, SIZE_MAX, ids);
      words.push_back({static_cast<uint32_t>(base + pos + source[b]),
                       static_cast<uint32_t>(base + pos + last + DecodeUtf8(part, last).size),
                       static_cast<uint32_t>(first_piece),
                       static_cast<uint32_t>(ids.size() - first_piece)});
    }
    pos = end;
  }
  if (normalized.capacity() > kScratchKeepBytes) {
    std::string().swap(normalized);
    std::vector<uint32_t>().swap(source);
  }
}

std::vector<std::string> BertTokenizer::Tokenize(std::string_view utf8) const {
  std::vector<int32_t> ids;
  EncodePieces(utf8, SIZE_MAX, ids);
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int32_t id : ids) pieces.emplace_back(IdToToken(id));
  return pieces;
}

size_t BertTokenizer::vocab_size() const {
  return wordpiece_.vocab().size() + extra_tokens_.size();
}

std::string_view BertTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_size()) return {};
  const size_t model_size = wordpiece_.vocab().size();
  if (static_cast<size_t>(id) < model_size) return wordpiece_.vocab().Token(id);
  return extra_tokens_[static_cast<size_t>(id) - model_size];
}

}  // namespace embedstream::text
