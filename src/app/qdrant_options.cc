#include "app/qdrant_options.h"

namespace embedstream::app {

sinks::QdrantSinkOptions QdrantOptions(const QdrantSettings& settings, size_t dim) {
  sinks::QdrantSinkOptions o;
  o.url = settings.url;
  o.collection = settings.collection;
  o.api_key = settings.api_key;
  o.batch_size = settings.batch_size;
  o.timeout_ms = settings.timeout_ms;
  o.dim = dim;
  return o;
}

}  // namespace embedstream::app
