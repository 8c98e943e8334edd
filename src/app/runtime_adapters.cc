#include "app/runtime_adapters.h"

namespace embedstream::app {

// A document's chunks are embedded and stored in one batch: its events come
// once, from its first chunk (processing, tokenized) and its last (embedded,
// stored, completed), with the chunk count.

void LifecycleListener::OnRead(const pipeline::Record& r) {
  if (!announce_received_ || r.deleted()) return;
  events_.Received(r.id, UserIdOf(r.metadata_json), r.event_key);
}

void LifecycleListener::OnEmbedding(const pipeline::Record& r) {
  if (r.chunk_index != 0) return;
  const std::string user = UserIdOf(r.metadata_json);
  events_.Processing(r.id, user, r.event_key);
  events_.Stage(1, r.id, user, r.event_key, r.chunked() ? r.chunk_count : 0);
}

void LifecycleListener::OnEmbedded(const pipeline::Record& r) {
  if (r.chunk_index + 1 != r.chunk_count) return;
  events_.Stage(2, r.id, UserIdOf(r.metadata_json), r.event_key, r.chunked() ? r.chunk_count : 0);
}

void LifecycleListener::OnStored(const pipeline::Record& r) {
  if (r.deleted()) {
    events_.Deleted(r.id, UserIdOf(r.metadata_json), r.event_key);
    return;
  }
  if (!completes_ || r.chunk_index + 1 != r.chunk_count) return;
  const std::string user = UserIdOf(r.metadata_json);
  events_.Stage(3, r.id, user, r.event_key, r.chunked() ? r.chunk_count : 0);
  events_.Completed(r.id, user, r.event_key, model_name_, dim_);
}

void LifecycleListener::OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) {
  if (why.stage == "decode") return;  // never announced as received
  events_.Failed(r.id, UserIdOf(r.metadata_json), r.event_key, why.stage + ": " + why.detail);
}

}  // namespace embedstream::app
