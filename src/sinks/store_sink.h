#pragma once
// StoreSink: the embedded store (store/embedded_store.h) as a pipeline sink.
// Any store error is the store's (kUnavailable): it refuses no record.
//
//   kUpsert  PutEmbedded: text, metadata and vector in one transaction per
//            batch (records from Kafka, PostgreSQL, a file)
//   kOutbox  StoreEmbeddings with the record's revision (Record::handle):
//            for the HTTP ingest source, whose messages are already in the
//            store; a vector of a text replaced meanwhile is skipped
//
// Each object belongs to its sink thread; the store itself is thread-safe.

#include <string>

#include "pipeline/stage.h"
#include "store/embedded_store.h"

namespace embedstream::sinks {

class StoreSink : public pipeline::Sink {
 public:
  enum class Mode { kUpsert, kOutbox };
  StoreSink(store::EmbeddedStore& store, std::string model_name, Mode mode = Mode::kUpsert)
      : store_(store), model_name_(std::move(model_name)), mode_(mode) {}
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;

 private:
  store::EmbeddedStore& store_;
  const std::string model_name_;
  const Mode mode_;
  const std::string name_ = "store";
};

}  // namespace embedstream::sinks
