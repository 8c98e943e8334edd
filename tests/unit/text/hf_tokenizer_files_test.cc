#include "text/hf_tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/bert_tokenizer.h"

namespace embedstream::text {
namespace {

using nlohmann::json;

// A minimal, valid BERT tokenizer.json; tests break one part at a time.
json MinimalTokenizerJson() {
  return json::parse(R"({
    "version": "1.0",
    "truncation": null,
    "padding": null,
    "added_tokens": [
      {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
    ],
    "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                   "strip_accents": null, "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
      "type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
      "pair": [],
      "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                         "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
    },
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "!": 6}}
  })");
}

class TokenizerDir : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("text"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  Result<BertTokenizer> Load() { return BertTokenizer::Load(dir_); }

  std::filesystem::path dir_;
};

TEST_F(TokenizerDir, LoadsTokenizerJson) {
  Write("tokenizer.json", MinimalTokenizerJson().dump());
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_EQ(tok->Encode("Hello WORLD!", 16), (std::vector<int32_t>{2, 4, 5, 6, 3}));
  EXPECT_EQ(tok->Encode("hello [SEP] x", 16), (std::vector<int32_t>{2, 4, 3, 1, 3}));
  EXPECT_EQ(tok->vocab_size(), 7u);
  EXPECT_EQ(tok->cls_id(), 2);
  EXPECT_EQ(tok->sep_id(), 3);
  EXPECT_EQ(tok->unk_id(), 1);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_FALSE(tok->options().strip_accents.has_value());
}

TEST_F(TokenizerDir, ReadsNormalizerFlags) {
  json j = MinimalTokenizerJson();
  j["normalizer"]["lowercase"] = false;
  j["normalizer"]["strip_accents"] = true;
  j["normalizer"]["handle_chinese_chars"] = false;
  j["normalizer"]["clean_text"] = false;
  j["model"]["max_input_chars_per_word"] = 7;
  j["model"]["continuing_subword_prefix"] = "@@";
  Write("tokenizer.json", j.dump());
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_FALSE(tok->options().lowercase);
  EXPECT_EQ(tok->options().strip_accents, std::optional<bool>(true));
  EXPECT_FALSE(tok->options().handle_chinese_chars);
  EXPECT_FALSE(tok->options().clean_text);
  EXPECT_EQ(tok->options().max_input_chars_per_word, 7u);
  EXPECT_EQ(tok->options().continuing_subword_prefix, "@@");
  EXPECT_EQ(tok->Encode("Hello", 8), (std::vector<int32_t>{2, 1, 3}));  // not lowercased
}

TEST_F(TokenizerDir, AcceptsBertProcessingAndNoNormalizer) {
  json j = MinimalTokenizerJson();
  j["post_processor"] =
      json::parse(R"({"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]})");
  j["normalizer"] = nullptr;
  Write("tokenizer.json", j.dump());
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_EQ(tok->Encode("hello Hello", 8), (std::vector<int32_t>{2, 4, 1, 3}));
}

TEST_F(TokenizerDir, AddedTokensPastTheVocabExtendIt) {
  json j = MinimalTokenizerJson();
  j["added_tokens"].push_back(json::parse(
      R"({"id": 7, "content": "<new>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})"));
  Write("tokenizer.json", j.dump());
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_EQ(tok->vocab_size(), 8u);
  EXPECT_EQ(tok->Encode("hello<new>", 8), (std::vector<int32_t>{2, 4, 7, 3}));
  EXPECT_EQ(tok->Tokenize("hello<new>"), (std::vector<std::string>{"hello", "<new>"}));
}

TEST_F(TokenizerDir, LoadsVocabTxtWithConfig) {
  Write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\nHello\r\n");
  Write("tokenizer_config.json",
        R"({"do_lower_case": false, "mask_token": {"content": "[MASK]"}})");
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_FALSE(tok->options().lowercase);
  EXPECT_EQ(tok->vocab_size(), 7u);
  EXPECT_EQ(tok->Encode("Hello hello [MASK]", 16), (std::vector<int32_t>{2, 6, 5, 4, 3}));
}

TEST_F(TokenizerDir, VocabTxtWithoutConfigUsesBertDefaults) {
  Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  auto tok = Load();
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_TRUE(tok->options().lowercase);
  EXPECT_EQ(tok->Encode("HÉLLO", 8),
            (std::vector<int32_t>{2, 4, 3}));  // lowercased, accent stripped
}

TEST_F(TokenizerDir, MissingFilesAreNotFound) {
  auto tok = Load();
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.error().code, errc::not_found);
  auto none = BertTokenizer::Load(dir_ / "does-not-exist");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, errc::not_found);
}

TEST_F(TokenizerDir, CorruptJsonIsCorrupt) {
  Write("tokenizer.json", "{\"model\": [1, 2");
  auto tok = Load();
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.error().code, errc::corrupt);
  EXPECT_NE(tok.error().message.find("tokenizer.json"), std::string::npos);
}

TEST_F(TokenizerDir, WrongFieldTypesAreCorrupt) {
  for (auto edit :
       {+[](json& j) { j["normalizer"]["lowercase"] = "yes"; },
        +[](json& j) { j["model"]["vocab"]["hello"] = "4"; },
        +[](json& j) { j["model"]["vocab"]["hello"] = 5; },   // id 5 twice
        +[](json& j) { j["model"]["vocab"]["hello"] = 70; },  // gap
        +[](json& j) { j["model"]["vocab"] = json::array(); },
        +[](json& j) { j["added_tokens"] = json::object(); },
        +[](json& j) { j["post_processor"]["special_tokens"]["[CLS]"]["ids"] = {5}; }}) {
    json j = MinimalTokenizerJson();
    edit(j);
    Write("tokenizer.json", j.dump());
    auto tok = Load();
    ASSERT_FALSE(tok.ok()) << j.dump();
    EXPECT_EQ(tok.error().code, errc::corrupt) << tok.error().ToString();
  }
}

TEST_F(TokenizerDir, UnsupportedComponentsAreUnsupported) {
  for (auto edit : {+[](json& j) {
                      j["normalizer"] = {{"type", "NFKC"}};
                    },
                    +[](json& j) {
                      j["pre_tokenizer"] = {{"type", "Whitespace"}};
                    },
                    +[](json& j) { j["pre_tokenizer"] = nullptr; },
                    +[](json& j) { j["model"]["type"] = "BPE"; },
                    +[](json& j) { j["post_processor"] = nullptr; },
                    +[](json& j) { j["post_processor"]["single"].erase(0); },
                    +[](json& j) { j["added_tokens"][0]["lstrip"] = true; },
                    +[](json& j) { j["added_tokens"][0]["normalized"] = true; }}) {
    json j = MinimalTokenizerJson();
    edit(j);
    Write("tokenizer.json", j.dump());
    auto tok = Load();
    ASSERT_FALSE(tok.ok()) << j.dump();
    EXPECT_EQ(tok.error().code, errc::unsupported) << tok.error().ToString();
  }
}

TEST_F(TokenizerDir, EmptyVocabAndMissingSpecialsAreInvalid) {
  json j = MinimalTokenizerJson();
  j["model"]["vocab"] = json::object();
  Write("tokenizer.json", j.dump());
  auto empty = Load();
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, errc::invalid_argument) << empty.error().ToString();

  std::filesystem::remove(dir_ / "tokenizer.json");
  Write("vocab.txt", "");
  auto empty_txt = Load();
  ASSERT_FALSE(empty_txt.ok());
  EXPECT_EQ(empty_txt.error().code, errc::invalid_argument);

  Write("vocab.txt", "[UNK]\n[CLS]\n[SEP]\nhello\n");  // no [PAD]
  auto no_pad = Load();
  ASSERT_FALSE(no_pad.ok());
  EXPECT_EQ(no_pad.error().code, errc::invalid_argument);
  EXPECT_NE(no_pad.error().message.find("[PAD]"), std::string::npos);

  Write("vocab.txt", "[PAD]\n[CLS]\n[SEP]\nhello\n");  // no [UNK]
  auto no_unk = Load();
  ASSERT_FALSE(no_unk.ok());
  EXPECT_EQ(no_unk.error().code, errc::invalid_argument);
}

TEST(HfTokenizerFiles, ParseVocabTxt) {
  EXPECT_EQ(ParseVocabTxt("a\nb\r\n\nc"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(ParseVocabTxt("a\n"), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(ParseVocabTxt("").empty());
}

}  // namespace
}  // namespace embedstream::text
