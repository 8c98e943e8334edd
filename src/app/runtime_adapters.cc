#include "app/runtime_adapters.h"

namespace embedstream::app {

pipeline::WriteResult StoreSink::Write(std::span<const pipeline::SinkItem> items) {
  std::vector<store::EmbeddedMessage> rows;
  rows.reserve(items.size());
  for (const auto& it : items) {
    rows.push_back({it.record->id, it.record->text, it.record->metadata_json,
                    std::vector<float>(it.vector.begin(), it.vector.end())});
  }
  auto stored = store_.PutEmbedded(rows, model_name_);
  if (!stored) return pipeline::WriteResult::Unavailable(stored.error().ToString());
  return pipeline::WriteResult::Ok();
}

void LifecycleListener::OnRead(const pipeline::Record& r) {
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
