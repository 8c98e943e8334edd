#pragma once
// What connects the app's objects to the pipeline runtime: the embedded store
// as a Sink, the SentenceEncoder as the Embedder, and SSE lifecycle events as
// a Listener. Used by every path (Kafka, the embed command).

#include <memory>
#include <string>
#include <vector>

#include "app/lifecycle.h"
#include "model/sentence_encoder.h"
#include "pipeline/stage.h"
#include "server/sse_hub.h"
#include "store/embedded_store.h"

namespace embedstream::app {

// The store as a pipeline sink: PutEmbedded (text, metadata, vector) in one
// transaction per batch; any failure is the store's (kUnavailable).
class StoreSink : public pipeline::Sink {
 public:
  StoreSink(store::EmbeddedStore& store, std::string model_name)
      : store_(store), model_name_(std::move(model_name)) {}
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;

 private:
  store::EmbeddedStore& store_;
  const std::string model_name_;
  const std::string name_ = "store";
};

// The SentenceEncoder as the runtime's Embedder.
class EncoderEmbedder : public pipeline::Embedder {
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

// Lifecycle events (SSE) of records flowing through a runtime.
class LifecycleListener : public pipeline::Listener {
 public:
  LifecycleListener(server::SseHub* hub, std::string model_name, size_t dim, bool completes)
      : events_(hub), model_name_(std::move(model_name)), dim_(dim), completes_(completes) {}
  void OnRead(const pipeline::Record& r) override;
  void OnEmbedding(const pipeline::Record& r) override;
  void OnEmbedded(const pipeline::Record& r) override;
  void OnStored(const pipeline::Record& r) override;
  void OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) override;

 private:
  Lifecycle events_;
  const std::string model_name_;
  const size_t dim_;
  const bool completes_;  // false in text mode: the PostgreSQL source completes them
};

}  // namespace embedstream::app
