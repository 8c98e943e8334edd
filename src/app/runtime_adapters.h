#pragma once
// What connects the app's objects to the pipeline runtime: the
// SentenceEncoder as the Embedder, and SSE lifecycle events as a Listener.
// Used by every path (serve's pipelines, the embed command).

#include <memory>
#include <string>
#include <vector>

#include "app/lifecycle.h"
#include "core/progress.h"
#include "model/sentence_encoder.h"
#include "pipeline/encoder_embedder.h"
#include "pipeline/stage.h"
#include "server/sse_hub.h"

namespace embedstream::app {

using pipeline::EncoderEmbedder;  // the SentenceEncoder as the runtime's Embedder

// Lifecycle events (SSE) of records flowing through a runtime.
class LifecycleListener : public pipeline::Listener {
 public:
  LifecycleListener(server::EventPublisher* hub, std::string model_name, size_t dim, bool completes,
                    bool announce_received = true)
      : events_(hub),
        hub_(hub),
        model_name_(std::move(model_name)),
        dim_(dim),
        completes_(completes),
        announce_received_(announce_received) {}
  void OnRead(const pipeline::Record& r) override;
  void OnEmbedding(const pipeline::Record& r) override;
  void OnEmbedded(const pipeline::Record& r) override;
  void OnStored(const pipeline::Record& r) override;
  void OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) override;
  // The batch's events durable on the bus before its acks.
  void OnBatchDone() override {
    if (hub_ != nullptr) hub_->Flush();
  }

 private:
  Lifecycle events_;
  server::EventPublisher* hub_;
  const std::string model_name_;
  const size_t dim_;
  const bool completes_;          // false in text mode: the PostgreSQL source completes them
  const bool announce_received_;  // false: the source published message_received
};

// Source records answered (written or dead-lettered): a progress line's count.
class AckProgress : public pipeline::Listener {
 public:
  explicit AckProgress(Progress& progress) : progress_(progress) {}
  void OnAcked(const pipeline::Record&) override { progress_.Add(); }

 private:
  Progress& progress_;
};

}  // namespace embedstream::app
