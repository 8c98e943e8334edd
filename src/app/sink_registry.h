#pragma once
// The sinks `serve` can build, by the names sources.<source>.sinks uses. One
// entry per sink: its name, what it writes, and how to open it from the
// configuration for a given source (its settings and checks are in
// serve_config: SinkUnusable). Adding a sink = its class in src/sinks/, an
// entry here, a name in kSinkNames (serve_config.h), a test.
//
// Each pipeline gets sink objects of its own (own connection or producer):
// a sink runs on its pipeline's sink thread and needs no locking.

#include <memory>
#include <string>
#include <vector>

#include "app/serve_config.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "pipeline/stage.h"
#include "store/embedded_store.h"

namespace embedstream::app {

struct SinkContext {
  const ServeConfig& config;
  const model::SentenceEncoder& encoder;
  store::EmbeddedStore* store = nullptr;  // null when store.enabled is false
  std::string source;                     // the pipeline's source: http | kafka | postgres
};

struct SinkSpec {
  const char* name;
  const char* writes;  // one line, for logs and docs
  Result<std::unique_ptr<pipeline::Sink>> (*open)(const SinkContext& ctx);
};

// Every sink, in the order kSinkNames lists them.
const std::vector<SinkSpec>& SinkRegistry();

// Opens config.SinksOf(ctx.source), in that order.
Result<std::vector<std::unique_ptr<pipeline::Sink>>> OpenSinks(const SinkContext& ctx);

}  // namespace embedstream::app
