#include "sinks/store_sink.h"

#include <vector>

namespace embedstream::sinks {

pipeline::WriteResult StoreSink::Write(std::span<const pipeline::SinkItem> items) {
  std::vector<store::DocumentWrite> ops;
  ops.reserve(items.size());
  const bool outbox = mode_ == Mode::kOutbox;
  for (const auto& it : items) {
    const pipeline::Record& r = *it.record;
    store::DocumentWrite op;
    op.remove = r.deleted();
    op.id = r.id;
    if (!op.remove) {
      op.text = r.text;
      if (!outbox && r.chunked() && r.chunk_index == 0) op.document_text = r.DocumentText();
      op.metadata_json = r.metadata_json;
      op.chunk_index = r.chunk_index;
      op.chunk_count = r.chunk_count;
      op.char_start = r.char_start;
      op.char_end = r.char_end;
      op.vector.assign(it.vector.begin(), it.vector.end());
    }
    // kOutbox: the record's handle is the message's revision.
    if (outbox) op.revision = static_cast<int64_t>(r.handle);
    ops.push_back(std::move(op));
  }
  auto stored = store_.WriteDocuments(ops, model_name_, outbox);
  if (!stored) return pipeline::WriteResult::Unavailable(stored.error().ToString());
  return pipeline::WriteResult::Ok();
}

}  // namespace embedstream::sinks
