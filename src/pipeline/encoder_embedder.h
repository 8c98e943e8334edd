#pragma once
// The SentenceEncoder (model/) as the runtime's Embedder. Header-only: the
// runtime itself stays free of the model, a user of both links both.

#include <string_view>
#include <vector>

#include "model/sentence_encoder.h"
#include "pipeline/stage.h"

namespace embedstream::pipeline {

class EncoderEmbedder : public Embedder {
 public:
  explicit EncoderEmbedder(model::SentenceEncoder& encoder) : encoder_(encoder) {}
  size_t dim() const override { return encoder_.dim(); }
  std::vector<int32_t> Tokenize(std::string_view text) override { return encoder_.Tokenize(text); }
  void Embed(const std::vector<std::vector<int32_t>>& tokens, float* out) override {
    encoder_.EmbedTokens(tokens, out);
  }
  bool TokenizeWords(std::string_view text, std::vector<int32_t>& pieces,
                     std::vector<text::TokenizedWord>& words) override {
    encoder_.tokenizer().EncodeWords(text, pieces, words);
    return true;
  }
  size_t max_tokens() const override { return encoder_.info().max_seq_length; }
  std::vector<int32_t> Frame(std::span<const int32_t> pieces) override {
    std::vector<int32_t> seq;
    seq.reserve(pieces.size() + 2);
    seq.push_back(encoder_.tokenizer().cls_id());
    seq.insert(seq.end(), pieces.begin(), pieces.end());
    seq.push_back(encoder_.tokenizer().sep_id());
    return seq;
  }

 private:
  model::SentenceEncoder& encoder_;
};

}  // namespace embedstream::pipeline
