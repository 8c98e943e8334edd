#pragma once
// The QdrantSink options of sinks.qdrant (serve's Kafka pipeline sink and
// search.backend qdrant both connect with them).

#include <cstddef>

#include "app/serve_config.h"
#include "sinks/qdrant_sink.h"

namespace embedstream::app {

// The sink options of sinks.qdrant for a model of `dim` dimensions.
sinks::QdrantSinkOptions QdrantOptions(const QdrantSettings& settings, size_t dim);

}  // namespace embedstream::app
