#include "app/runtime_adapters.h"

namespace embedstream::app {

void LifecycleListener::OnRead(const pipeline::Record& r) {
  if (!announce_received_) return;
  events_.Received(r.id, UserIdOf(r.metadata_json), r.event_key);
}

void LifecycleListener::OnEmbedding(const pipeline::Record& r) {
  const std::string user = UserIdOf(r.metadata_json);
  events_.Processing(r.id, user, r.event_key);
  events_.Stage(1, r.id, user, r.event_key);
}

void LifecycleListener::OnEmbedded(const pipeline::Record& r) {
  events_.Stage(2, r.id, UserIdOf(r.metadata_json), r.event_key);
}

void LifecycleListener::OnStored(const pipeline::Record& r) {
  if (!completes_) return;
  const std::string user = UserIdOf(r.metadata_json);
  events_.Stage(3, r.id, user, r.event_key);
  events_.Completed(r.id, user, r.event_key, model_name_, dim_);
}

void LifecycleListener::OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) {
  if (why.stage == "decode") return;  // never announced as received
  events_.Failed(r.id, UserIdOf(r.metadata_json), r.event_key, why.stage + ": " + why.detail);
}

}  // namespace embedstream::app
