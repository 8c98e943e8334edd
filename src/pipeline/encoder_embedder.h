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

 private:
  model::SentenceEncoder& encoder_;
};

}  // namespace embedstream::pipeline
