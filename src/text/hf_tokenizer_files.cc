#include "text/hf_tokenizer_files.h"

#include <algorithm>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/file_util.h"

namespace embedstream::text {
namespace {

using nlohmann::json;

// Field readers: a missing or null field leaves the default; a field of the wrong
// type is an error naming the file and the field.
class JsonReader {
 public:
  explicit JsonReader(const std::string& origin) : origin_(origin) {}

  Error Corrupt(const std::string& what) const {
    return Error(errc::corrupt, origin_ + ": " + what);
  }
  Error Unsupported(const std::string& what) const {
    return Error(errc::unsupported, origin_ + ": " + what);
  }

  static const json* Field(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }

  Status Bool(const json& obj, const char* key, const std::string& where, bool& out) const {
    const json* v = Field(obj, key);
    if (v == nullptr) return {};
    if (!v->is_boolean()) return Corrupt(where + "." + key + " is not a boolean");
    out = v->get<bool>();
    return {};
  }

  // null means "unset" (HF's strip_accents).
  Status OptionalBool(const json& obj, const char* key, const std::string& where,
                      std::optional<bool>& out) const {
    if (!obj.is_object()) return {};
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    if (it->is_null()) {
      out.reset();
      return {};
    }
    if (!it->is_boolean()) return Corrupt(where + "." + key + " is not a boolean or null");
    out = it->get<bool>();
    return {};
  }

  Status String(const json& obj, const char* key, const std::string& where,
                std::string& out) const {
    const json* v = Field(obj, key);
    if (v == nullptr) return {};
    if (!v->is_string()) return Corrupt(where + "." + key + " is not a string");
    out = v->get<std::string>();
    return {};
  }

  // transformers writes special tokens as "[CLS]" or {"content": "[CLS]", ...}.
  Status TokenString(const json& obj, const char* key, std::string& out) const {
    const json* v = Field(obj, key);
    if (v == nullptr) return {};
    if (v->is_object()) return String(*v, "content", key, out);
    if (!v->is_string()) return Corrupt(std::string(key) + " is not a string");
    out = v->get<std::string>();
    return {};
  }

  Status Size(const json& obj, const char* key, const std::string& where, size_t& out) const {
    const json* v = Field(obj, key);
    if (v == nullptr) return {};
    if (!v->is_number_unsigned()) return Corrupt(where + "." + key + " is not a count");
    out = v->get<size_t>();
    return {};
  }

  Result<int32_t> Id(const json& v, const std::string& where) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() >= std::numeric_limits<int32_t>::max() / 2) {
      return Corrupt(where + " is not a valid token id");
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }

  // The "type" of a component, or "" when it has none.
  std::string Type(const json& obj) const {
    const json* v = Field(obj, "type");
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
  }

 private:
  const std::string& origin_;
};

Status ParseNormalizer(const JsonReader& r, const json& root, BertTokenizerOptions& o) {
  const json* n = JsonReader::Field(root, "normalizer");
  if (n == nullptr) {  // no normalizer: the text goes to the pre-tokenizer as is
    o.clean_text = o.handle_chinese_chars = o.lowercase = false;
    o.strip_accents = false;
    return {};
  }
  if (const std::string type = r.Type(*n); type != "BertNormalizer") {
    return r.Unsupported("normalizer type '" + type + "' (only BertNormalizer)");
  }
  if (Status s = r.Bool(*n, "clean_text", "normalizer", o.clean_text); !s) return s;
  if (Status s = r.Bool(*n, "handle_chinese_chars", "normalizer", o.handle_chinese_chars); !s) {
    return s;
  }
  o.strip_accents.reset();
  if (Status s = r.OptionalBool(*n, "strip_accents", "normalizer", o.strip_accents); !s) return s;
  return r.Bool(*n, "lowercase", "normalizer", o.lowercase);
}

Status ParseModel(const JsonReader& r, const json& root, BertTokenizerSpec& spec) {
  const json* m = JsonReader::Field(root, "model");
  if (m == nullptr || !m->is_object()) return r.Corrupt("no model");
  if (const std::string type = r.Type(*m); type != "WordPiece") {
    return r.Unsupported("model type '" + type + "' (only WordPiece)");
  }
  BertTokenizerOptions& o = spec.options;
  if (Status s = r.String(*m, "unk_token", "model", o.unk_token); !s) return s;
  if (Status s = r.String(*m, "continuing_subword_prefix", "model", o.continuing_subword_prefix);
      !s) {
    return s;
  }
  if (Status s = r.Size(*m, "max_input_chars_per_word", "model", o.max_input_chars_per_word); !s) {
    return s;
  }
  const json* vocab = JsonReader::Field(*m, "vocab");
  if (vocab == nullptr || !vocab->is_object()) return r.Corrupt("model.vocab is not an object");
  if (vocab->empty()) return Error(errc::invalid_argument, "model.vocab is empty");
  std::vector<std::string> tokens(vocab->size());
  std::vector<bool> seen(vocab->size(), false);
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    Result<int32_t> id = r.Id(it.value(), "model.vocab[\"" + it.key() + "\"]");
    if (!id) return id.error();
    const auto i = static_cast<size_t>(*id);
    if (i >= tokens.size()) {
      return r.Corrupt("model.vocab ids are not 0.." + std::to_string(tokens.size() - 1) +
                       " (found " + std::to_string(i) + ")");
    }
    if (seen[i]) return r.Corrupt("model.vocab has id " + std::to_string(i) + " twice");
    seen[i] = true;
    tokens[i] = it.key();
  }
  spec.vocab = std::move(tokens);
  return {};
}

Status ParseAddedTokens(const JsonReader& r, const json& root, BertTokenizerSpec& spec) {
  const json* added = JsonReader::Field(root, "added_tokens");
  if (added == nullptr) return {};
  if (!added->is_array()) return r.Corrupt("added_tokens is not an array");
  for (const json& t : *added) {
    AddedToken token;
    if (Status s = r.String(t, "content", "added_tokens[]", token.content); !s) return s;
    const json* id = JsonReader::Field(t, "id");
    if (id == nullptr) return r.Corrupt("added token '" + token.content + "' has no id");
    Result<int32_t> parsed = r.Id(*id, "added token '" + token.content + "' id");
    if (!parsed) return parsed.error();
    token.id = *parsed;
    const std::string where = "added token '" + token.content + "'";
    bool special = false;
    if (Status s = r.Bool(t, "special", where, special); !s) return s;
    // HF's defaults: special tokens match the raw text, others the normalized text.
    bool single_word = false, lstrip = false, rstrip = false, normalized = !special;
    for (auto [key, flag] : {std::pair{"single_word", &single_word}, std::pair{"lstrip", &lstrip},
                             std::pair{"rstrip", &rstrip}, std::pair{"normalized", &normalized}}) {
      if (Status s = r.Bool(t, key, where, *flag); !s) return s;
      if (*flag) {
        return r.Unsupported(where + " has " + key +
                             "=true (only raw-text matching is implemented)");
      }
    }
    spec.added_tokens.push_back(std::move(token));
  }
  return {};
}

// The id the vocab or the added tokens give `token`, or -1.
int32_t LookupId(const BertTokenizerSpec& spec, const json& vocab, const std::string& token) {
  for (const AddedToken& t : spec.added_tokens) {
    if (t.content == token) return t.id;
  }
  auto it = vocab.find(token);
  return it != vocab.end() && it->is_number_integer() ? it->get<int32_t>() : -1;
}

Status CheckSpecialId(const JsonReader& r, const BertTokenizerSpec& spec, const json& vocab,
                      const std::string& token, const json& id) {
  Result<int32_t> declared = r.Id(id, "post_processor id of '" + token + "'");
  if (!declared) return declared.error();
  const int32_t known = LookupId(spec, vocab, token);
  if (known != *declared) {
    return r.Corrupt("post_processor gives '" + token + "' id " + std::to_string(*declared) +
                     " but the vocab has " + std::to_string(known));
  }
  return {};
}

Status ParsePostProcessor(const JsonReader& r, const json& root, BertTokenizerSpec& spec) {
  const json& vocab = root.at("model").at("vocab");  // ParseModel checked it
  const json* p = JsonReader::Field(root, "post_processor");
  const std::string type = p == nullptr ? "none" : r.Type(*p);
  BertTokenizerOptions& o = spec.options;
  if (type == "BertProcessing") {
    for (auto [key, token] : {std::pair{"cls", &o.cls_token}, std::pair{"sep", &o.sep_token}}) {
      const json* pair = JsonReader::Field(*p, key);
      if (pair == nullptr || !pair->is_array() || pair->size() != 2 || !(*pair)[0].is_string()) {
        return r.Corrupt(std::string("post_processor.") + key + " is not [token, id]");
      }
      *token = (*pair)[0].get<std::string>();
      if (Status s = CheckSpecialId(r, spec, vocab, *token, (*pair)[1]); !s) return s;
    }
    return {};
  }
  if (type != "TemplateProcessing") {
    return r.Unsupported("post_processor type '" + type +
                         "' (only TemplateProcessing and BertProcessing)");
  }
  // single must be exactly: SpecialToken, Sequence A, SpecialToken.
  const json* single = JsonReader::Field(*p, "single");
  auto special_at = [&](size_t i) -> const json* {
    const json* item = JsonReader::Field((*single)[i], "SpecialToken");
    const json* id = item == nullptr ? nullptr : JsonReader::Field(*item, "id");
    return id != nullptr && id->is_string() ? id : nullptr;
  };
  if (single == nullptr || !single->is_array() || single->size() != 3 || special_at(0) == nullptr ||
      special_at(2) == nullptr || JsonReader::Field((*single)[1], "Sequence") == nullptr) {
    return r.Unsupported("post_processor.single is not [special] $A [special]");
  }
  o.cls_token = special_at(0)->get<std::string>();
  o.sep_token = special_at(2)->get<std::string>();
  const json* specials = JsonReader::Field(*p, "special_tokens");
  for (const std::string* token : {&o.cls_token, &o.sep_token}) {
    const json* entry =
        specials == nullptr ? nullptr : JsonReader::Field(*specials, token->c_str());
    const json* ids = entry == nullptr ? nullptr : JsonReader::Field(*entry, "ids");
    if (ids == nullptr || !ids->is_array() || ids->size() != 1) {
      return r.Unsupported("post_processor.special_tokens['" + *token + "'] is not one id");
    }
    if (Status s = CheckSpecialId(r, spec, vocab, *token, (*ids)[0]); !s) return s;
  }
  return {};
}

}  // namespace

Result<BertTokenizerSpec> ParseTokenizerJson(std::string_view text, const std::string& origin) {
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Error(errc::corrupt, origin + ": not valid JSON");
  if (!root.is_object()) return Error(errc::corrupt, origin + ": top level is not an object");
  const JsonReader r(origin);
  BertTokenizerSpec spec;
  if (Status s = ParseNormalizer(r, root, spec.options); !s) return s.error();

  const json* pre = JsonReader::Field(root, "pre_tokenizer");
  if (const std::string type = pre == nullptr ? "none" : r.Type(*pre); type != "BertPreTokenizer") {
    return r.Unsupported("pre_tokenizer type '" + type + "' (only BertPreTokenizer)");
  }
  if (Status s = ParseModel(r, root, spec); !s) return s.error();
  if (Status s = ParseAddedTokens(r, root, spec); !s) return s.error();
  if (Status s = ParsePostProcessor(r, root, spec); !s) return s.error();
  if (const json* padding = JsonReader::Field(root, "padding")) {
    if (Status s = r.String(*padding, "pad_token", "padding", spec.options.pad_token); !s) {
      return s.error();
    }
  }
  return spec;
}

std::vector<std::string> ParseVocabTxt(std::string_view text) {
  std::vector<std::string> tokens;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    if (line.ends_with('\r')) line.remove_suffix(1);
    tokens.emplace_back(line);
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
  return tokens;
}

Status ApplyTokenizerConfigJson(std::string_view text, const std::string& origin,
                                BertTokenizerOptions& options) {
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Error(errc::corrupt, origin + ": not valid JSON");
  if (!root.is_object()) return Error(errc::corrupt, origin + ": top level is not an object");
  const JsonReader r(origin);
  if (Status s = r.Bool(root, "do_lower_case", "config", options.lowercase); !s) return s;
  if (Status s = r.OptionalBool(root, "strip_accents", "config", options.strip_accents); !s) {
    return s;
  }
  if (Status s = r.Bool(root, "tokenize_chinese_chars", "config", options.handle_chinese_chars);
      !s) {
    return s;
  }
  for (auto [key, token] :
       {std::pair{"unk_token", &options.unk_token}, std::pair{"cls_token", &options.cls_token},
        std::pair{"sep_token", &options.sep_token}, std::pair{"pad_token", &options.pad_token},
        std::pair{"mask_token", &options.mask_token}}) {
    if (Status s = r.TokenString(root, key, *token); !s) return s;
  }
  return {};
}

std::vector<AddedToken> SpecialAddedTokens(const std::vector<std::string>& vocab,
                                           const BertTokenizerOptions& options) {
  std::vector<AddedToken> added;
  for (const std::string* token : {&options.unk_token, &options.sep_token, &options.pad_token,
                                   &options.cls_token, &options.mask_token}) {
    auto it = std::find(vocab.rbegin(), vocab.rend(), *token);
    if (token->empty() || it == vocab.rend()) continue;
    added.push_back({*token, static_cast<int32_t>(vocab.rend() - it - 1)});
  }
  return added;
}

Result<BertTokenizerSpec> ReadTokenizerDir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Error(errc::not_found, dir.string() + ": no such directory");
  }
  const std::filesystem::path json_path = dir / "tokenizer.json";
  if (std::filesystem::exists(json_path, ec)) {
    Result<std::string> text = ReadFile(json_path);
    if (!text) return text.error();
    return ParseTokenizerJson(*text, json_path.string());
  }
  const std::filesystem::path vocab_path = dir / "vocab.txt";
  if (!std::filesystem::exists(vocab_path, ec)) {
    return Error(errc::not_found, dir.string() + ": neither tokenizer.json nor vocab.txt");
  }
  Result<std::string> vocab_text = ReadFile(vocab_path);
  if (!vocab_text) return vocab_text.error();
  BertTokenizerSpec spec;
  spec.vocab = ParseVocabTxt(*vocab_text);
  if (spec.vocab.empty()) return Error(errc::invalid_argument, vocab_path.string() + ": empty");

  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path, ec)) {
    Result<std::string> config_text = ReadFile(config_path);
    if (!config_text) return config_text.error();
    if (Status s = ApplyTokenizerConfigJson(*config_text, config_path.string(), spec.options); !s) {
      return s.error();
    }
  }
  spec.added_tokens = SpecialAddedTokens(spec.vocab, spec.options);
  return spec;
}

}  // namespace embedstream::text
