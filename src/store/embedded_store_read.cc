#include "store/embedded_store.h"

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "core/clock.h"
#include "store/internal/store_impl.h"

namespace embedstream::store {
namespace internal {

Message ReadMessage(const SqliteStmt& st) {
  Message m;
  m.id = st.ColumnText(0);
  m.text = st.ColumnText(1);
  m.metadata_json = st.ColumnText(2);
  m.status = static_cast<MessageStatus>(st.ColumnInt(3));
  m.reason = st.ColumnText(4);
  m.model_name = st.ColumnText(5);
  m.created_at = st.ColumnDouble(6);
  m.embedded_at = st.ColumnDouble(7);
  m.revision = st.ColumnInt(8);
  m.queued_at = st.ColumnDouble(9);
  m.parent_id = st.ColumnText(10);
  m.chunk_index = static_cast<uint32_t>(st.ColumnInt(11));
  m.chunk_count = static_cast<uint32_t>(st.ColumnInt(12));
  m.char_start = static_cast<uint32_t>(st.ColumnInt(13));
  m.char_end = static_cast<uint32_t>(st.ColumnInt(14));
  return m;
}

}  // namespace internal

using internal::ReadMessage;

Result<std::optional<Message>> EmbeddedStore::Get(const std::string& id) {
  auto& d = *impl_;
  std::lock_guard lock(d.read_mu);
  d.get_by_id.Reset();
  d.get_by_id.BindText(1, id);
  auto row = d.get_by_id.Step();
  if (!row) {
    d.get_by_id.Reset();
    return row.error();
  }
  if (!*row) {
    d.get_by_id.Reset();
    return std::optional<Message>();
  }
  Message m = ReadMessage(d.get_by_id);
  d.get_by_id.Reset();
  if (m.status == MessageStatus::deleted) return std::optional<Message>();
  std::optional<Message> out(std::move(m));
  if (out->chunk_count > 1) {
    const int64_t count = out->chunk_count;
    d.chunks_count.Reset();
    d.chunks_count.BindText(1, id);
    d.chunks_count.BindInt(2, count);
    auto n = d.chunks_count.Step();
    if (!n) {
      d.chunks_count.Reset();
      return n.error();
    }
    out->chunks_embedded = static_cast<uint32_t>(d.chunks_count.ColumnInt(0));
    d.chunks_count.Reset();
  }
  return out;
}

Result<std::vector<Message>> EmbeddedStore::List(size_t limit, size_t offset, size_t max_bytes) {
  auto& d = *impl_;
  std::vector<Message> out;
  size_t bytes = 0;
  std::lock_guard lock(d.read_mu);
  d.list_page.Reset();
  d.list_page.BindInt(1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  d.list_page.BindInt(2, static_cast<int64_t>(std::min<size_t>(offset, INT64_MAX)));
  for (;;) {
    auto row = d.list_page.Step();
    if (!row) {
      d.list_page.Reset();
      return row.error();
    }
    if (!*row) break;
    out.push_back(ReadMessage(d.list_page));
    const Message& m = out.back();
    bytes += m.id.size() + m.text.size() + m.metadata_json.size();
    if (bytes > max_bytes) break;
  }
  d.list_page.Reset();
  return out;
}

Result<StoreCounts> EmbeddedStore::Stats() {
  auto& d = *impl_;
  StoreCounts c;
  std::lock_guard lock(d.read_mu);
  d.stats_select.Reset();
  for (;;) {
    auto row = d.stats_select.Step();
    if (!row) {
      d.stats_select.Reset();
      return row.error();
    }
    if (!*row) break;
    const auto n = static_cast<size_t>(d.stats_select.ColumnInt(1));
    c.total += n;
    switch (static_cast<MessageStatus>(d.stats_select.ColumnInt(0))) {
      case MessageStatus::pending:
        c.pending = n;
        c.oldest_pending_age_s = std::max(0.0, UnixSeconds() - d.stats_select.ColumnDouble(2));
        break;
      case MessageStatus::embedded:
        c.embedded = n;
        break;
      case MessageStatus::failed:
        c.failed = n;
        break;
      case MessageStatus::deleted:  // not selected
        c.total -= n;
        break;
    }
  }
  d.stats_select.Reset();
  return c;
}

}  // namespace embedstream::store
