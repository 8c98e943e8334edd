#include "sinks/store_sink.h"

#include <vector>

namespace embedstream::sinks {

pipeline::WriteResult StoreSink::Write(std::span<const pipeline::SinkItem> items) {
  if (mode_ == Mode::kOutbox) {
    std::vector<store::Embedding> rows;
    rows.reserve(items.size());
    for (const auto& it : items) {
      rows.push_back({it.record->id, std::vector<float>(it.vector.begin(), it.vector.end()),
                      static_cast<int64_t>(it.record->handle)});
    }
    auto stored = store_.StoreEmbeddings(rows, model_name_);
    if (!stored) return pipeline::WriteResult::Unavailable(stored.error().ToString());
    return pipeline::WriteResult::Ok();
  }
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

}  // namespace embedstream::sinks
