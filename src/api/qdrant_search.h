#pragma once
// search.backend qdrant: POST /embeddings/search over a Qdrant collection
// (the one sinks.qdrant writes), through its own QdrantSink connection used
// by the API's search thread only. The metadata filter becomes Qdrant `must`
// conditions (QdrantSink::FilterToQdrant); a hit's text is payload "text", its
// metadata the whole payload, its id the original id when it was mapped.

#include <memory>

#include "api/api_routes.h"
#include "sinks/qdrant_sink.h"

namespace embedstream::api {

// A search backend over `sink` (shared: it lives as long as the backend).
SearchBackend QdrantSearchBackend(std::shared_ptr<sinks::QdrantSink> sink);

}  // namespace embedstream::api
