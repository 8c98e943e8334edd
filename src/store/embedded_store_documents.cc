// EmbeddedStore::WriteDocuments and DeleteMessage: documents, their chunks
// and deletes (the store as a sink of the pipeline runtime).
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/clock.h"
#include "core/logging.h"
#include "store/embedded_store.h"
#include "store/internal/store_impl.h"

namespace embedstream::store {
namespace {

using internal::Normalised;
using internal::SqliteStmt;

constexpr int64_t kDeleted = static_cast<int64_t>(MessageStatus::deleted);

// A document row written as embedded (upsert mode); `?6` is its vector, NULL
// when its chunks hold the vectors.
constexpr const char* kDocumentUpsert =
    "INSERT INTO messages(id, text, metadata, created_at, queued_at, status, model_name, "
    "embedded_at, vector, change_seq, chunk_count, acked_revision) "
    "VALUES(?1, ?2, ?3, ?4, ?4, 1, ?5, ?4, ?6, ?7, ?8, 1) "
    "ON CONFLICT(id) DO UPDATE SET revision = revision + (text <> excluded.text), "
    "text = excluded.text, metadata = excluded.metadata, status = 1, reason = '', "
    "model_name = excluded.model_name, embedded_at = excluded.embedded_at, "
    "vector = excluded.vector, change_seq = excluded.change_seq, chunk_count = "
    "excluded.chunk_count, parent_id = NULL, chunk_index = 0, char_start = 0, char_end = 0, "
    "acked_revision = revision + (text <> excluded.text) RETURNING row_id";
// The message's row (outbox mode): embedded at its current revision.
constexpr const char* kDocumentEmbed =
    "UPDATE messages SET status = 1, reason = '', model_name = ?2, embedded_at = ?3, vector = ?4, "
    "change_seq = ?5, chunk_count = ?7 WHERE id = ?1 AND (?6 = 0 OR revision = ?6) AND status <> "
    "3 RETURNING row_id";
constexpr const char* kChunkUpsert =
    "INSERT INTO messages(id, text, metadata, created_at, queued_at, status, model_name, "
    "embedded_at, vector, change_seq, parent_id, chunk_index, chunk_count, char_start, char_end, "
    "acked_revision) VALUES(?1, ?2, ?3, ?4, ?4, 1, ?5, ?4, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1) "
    "ON CONFLICT(id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, "
    "status = 1, reason = '', model_name = excluded.model_name, embedded_at = "
    "excluded.embedded_at, vector = excluded.vector, change_seq = excluded.change_seq, "
    "parent_id = excluded.parent_id, chunk_index = excluded.chunk_index, chunk_count = "
    "excluded.chunk_count, char_start = excluded.char_start, char_end = excluded.char_end, "
    "acked_revision = revision RETURNING row_id";
// Chunks of another chunk count than the document's now.
constexpr const char* kStaleChunks =
    "UPDATE messages SET status = 3, text = '', vector = NULL, model_name = '', change_seq = ?3 "
    "WHERE parent_id = ?1 AND chunk_count <> ?2 AND status <> 3 RETURNING row_id";
constexpr const char* kDeleteDocument =
    "UPDATE messages SET status = 3, text = '', vector = NULL, model_name = '', reason = '', "
    "change_seq = ?2 WHERE (id = ?1 OR parent_id = ?1) AND status <> 3 RETURNING row_id";
constexpr const char* kRevisionOf = "SELECT revision, status FROM messages WHERE id = ?1";

std::span<const std::byte> AsBytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

// Steps a statement to its end, collecting the row_id of each row it returns.
Status Collect(SqliteStmt& st, std::vector<int64_t>& rows) {
  for (;;) {
    auto row = st.Step();
    if (!row) {
      st.Reset();
      return row.error();
    }
    if (!*row) break;
    rows.push_back(st.ColumnInt(0));
  }
  st.Reset();
  return Status::Ok();
}

}  // namespace

Result<size_t> EmbeddedStore::WriteDocuments(std::span<const DocumentWrite> ops,
                                             const std::string& model_name, bool outbox) {
  auto& d = *impl_;
  const std::string& model = model_name.empty() ? d.options.model_name : model_name;
  std::vector<std::vector<float>> unit(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const DocumentWrite& op = ops[i];
    if (op.id.empty()) return Error(errc::invalid_argument, "document id is empty");
    if (op.remove) continue;
    if (op.vector.size() != d.options.dim) {
      return Error(errc::invalid_argument, "vector for " + op.id + " has " +
                                               std::to_string(op.vector.size()) +
                                               " dims, store has " + std::to_string(d.options.dim));
    }
    unit[i] = Normalised(op.vector);
    if (unit[i].empty()) {
      return Error(errc::invalid_argument, "vector for " + op.id + " is zero or not finite");
    }
  }
  if (ops.empty()) return size_t{0};
  std::lock_guard lock(d.write_mu);
  // Outbox mode derives from the messages the store holds durably: no fsync
  // of its own (see StoreEmbeddings); upsert mode is the record's only copy.
  std::optional<internal::DerivedWrite> derived;
  if (outbox) derived.emplace(d.writer, d.options.sync_full);
  auto prepare = [&](const char* sql) { return d.writer.Prepare(sql); };
  auto doc_upsert = prepare(kDocumentUpsert);
  auto doc_embed = prepare(kDocumentEmbed);
  auto chunk_upsert = prepare(kChunkUpsert);
  auto stale = prepare(kStaleChunks);
  auto remove = prepare(kDeleteDocument);
  auto revision_of = prepare(kRevisionOf);
  for (auto* st : {&doc_upsert, &doc_embed, &chunk_upsert, &stale, &remove, &revision_of}) {
    if (!*st) return st->error();
  }
  if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
  auto fail = [&](Error e) -> Result<size_t> {
    (void)d.writer.Exec("ROLLBACK");
    return e;
  };
  const double now = UnixSeconds();
  int64_t seq = d.last_seq;
  // The final state of each row this write touched: its vector (index into
  // `unit`), or none (removed from the index).
  std::map<int64_t, std::optional<size_t>> touched;
  auto removed = [&](const std::vector<int64_t>& rows) {
    for (int64_t r : rows) touched[r] = std::nullopt;
  };
  size_t changed = 0;
  // Outbox mode: is this document's revision current? (per document, once)
  std::unordered_map<std::string, bool> current;
  for (size_t i = 0; i < ops.size(); ++i) {
    const DocumentWrite& op = ops[i];
    std::vector<int64_t> rows;
    if (op.remove) {
      remove->BindText(1, op.id);
      remove->BindInt(2, ++seq);
      if (auto s = Collect(*remove, rows); !s) return fail(s.error());
      removed(rows);
      changed += rows.size();
      continue;
    }
    const bool chunked = op.chunk_count > 1;
    if (outbox && chunked) {
      auto it = current.find(op.id);
      if (it == current.end()) {
        revision_of->BindText(1, op.id);
        auto row = revision_of->Step();
        if (!row) {
          revision_of->Reset();
          return fail(row.error());
        }
        const bool ok = *row && revision_of->ColumnInt(1) != kDeleted &&
                        (op.revision == 0 || revision_of->ColumnInt(0) == op.revision);
        revision_of->Reset();
        it = current.emplace(op.id, ok).first;
      }
      if (!it->second) continue;  // replaced or deleted meanwhile: a newer write comes
    }
    // The document's own row: with its vector, or (chunked) without.
    if (!chunked || op.chunk_index == 0) {
      SqliteStmt& st = outbox ? *doc_embed : *doc_upsert;
      if (outbox) {
        st.BindText(1, op.id);
        st.BindText(2, model);
        st.BindDouble(3, now);
        if (chunked) {
          st.BindNull(4);
        } else {
          st.BindBlob(4, AsBytes(unit[i]));
        }
        st.BindInt(5, ++seq);
        st.BindInt(6, op.revision);
        st.BindInt(7, op.chunk_count);
      } else {
        st.BindText(1, op.id);
        st.BindText(2, chunked ? op.document_text : op.text);
        st.BindText(3, op.metadata_json);
        st.BindDouble(4, now);
        st.BindText(5, model);
        if (chunked) {
          st.BindNull(6);
        } else {
          st.BindBlob(6, AsBytes(unit[i]));
        }
        st.BindInt(7, ++seq);
        st.BindInt(8, op.chunk_count);
      }
      if (auto s = Collect(st, rows); !s) return fail(s.error());
      if (rows.empty()) continue;  // outbox: a stale revision or deleted meanwhile
      for (int64_t r : rows) {
        touched[r] = chunked ? std::nullopt : std::optional<size_t>(i);
      }
      changed += rows.size();
      rows.clear();
      stale->BindText(1, op.id);
      stale->BindInt(2, op.chunk_count);
      stale->BindInt(3, ++seq);
      if (auto s = Collect(*stale, rows); !s) return fail(s.error());
      removed(rows);
      changed += rows.size();
      rows.clear();
    }
    if (!chunked) continue;
    SqliteStmt& st = *chunk_upsert;
    st.BindText(1, op.id + "#" + std::to_string(op.chunk_index));
    st.BindText(2, op.text);
    st.BindText(3, op.metadata_json);
    st.BindDouble(4, now);
    st.BindText(5, model);
    st.BindBlob(6, AsBytes(unit[i]));
    st.BindInt(7, ++seq);
    st.BindText(8, op.id);
    st.BindInt(9, op.chunk_index);
    st.BindInt(10, op.chunk_count);
    st.BindInt(11, op.char_start);
    st.BindInt(12, op.char_end);
    if (auto s = Collect(st, rows); !s) return fail(s.error());
    for (int64_t r : rows) touched[r] = i;
    changed += rows.size();
  }
  if (auto s = d.writer.Exec("COMMIT"); !s) return fail(s.error());
  d.last_seq = seq;
  std::vector<std::pair<int64_t, size_t>> insert;
  for (const auto& [row, vec] : touched) {
    if (vec) {
      insert.emplace_back(row, *vec);
    } else {
      d.index->Remove(row);
    }
  }
  if (auto s = d.IndexRows(insert, unit); !s) return s.error();
  d.index_seq = seq;
  d.changes_since_snapshot += touched.size();
  return changed;
}

Result<bool> EmbeddedStore::DeleteMessage(const std::string& id) {
  if (id.empty()) return Error(errc::invalid_argument, "message id is empty");
  auto& d = *impl_;
  std::lock_guard lock(d.write_mu);
  const double now = std::max(UnixSeconds(), d.last_queued_at + 1e-6);
  auto mark = d.writer.Prepare(
      "INSERT INTO messages(id, text, created_at, queued_at, status) VALUES(?1, '', ?2, ?2, 3) "
      "ON CONFLICT(id) DO UPDATE SET text = '', vector = NULL, status = 3, model_name = '', "
      "reason = '', queued_at = ?2, revision = revision + 1, change_seq = ?3 "
      "RETURNING row_id, revision");
  auto chunks = d.writer.Prepare(kDeleteDocument);
  if (!mark) return mark.error();
  if (!chunks) return chunks.error();
  auto exists = d.writer.Prepare("SELECT status FROM messages WHERE id = ?1");
  if (!exists) return exists.error();
  if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
  auto fail = [&](Error e) -> Result<bool> {
    (void)d.writer.Exec("ROLLBACK");
    return e;
  };
  exists->BindText(1, id);
  auto had = exists->Step();
  if (!had) return fail(had.error());
  const bool existed = *had && exists->ColumnInt(0) != kDeleted;
  exists->Reset();
  int64_t seq = d.last_seq;
  std::vector<int64_t> rows;
  mark->BindText(1, id);
  mark->BindDouble(2, now);
  mark->BindInt(3, ++seq);
  if (auto s = Collect(*mark, rows); !s) return fail(s.error());
  chunks->BindText(1, id);
  chunks->BindInt(2, ++seq);
  if (auto s = Collect(*chunks, rows); !s) return fail(s.error());
  if (auto s = d.writer.Exec("COMMIT"); !s) return fail(s.error());
  d.last_seq = seq;
  d.last_queued_at = now;
  for (int64_t r : rows) d.index->Remove(r);
  d.index_seq = seq;
  d.changes_since_snapshot += rows.size();
  return existed;
}

}  // namespace embedstream::store
