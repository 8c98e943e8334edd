#include "store/embedded_store.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/logging.h"
#include "store/internal/store_impl.h"

namespace embedstream::store {

const char* MessageStatusName(MessageStatus s) {
  switch (s) {
    case MessageStatus::pending:
      return "pending";
    case MessageStatus::embedded:
      return "embedded";
    case MessageStatus::failed:
      return "failed";
    case MessageStatus::deleted:
      return "deleted";
  }
  return "pending";
}

namespace internal {

// Unit-length copy of v; empty when v has a non-finite or all-zero value.
std::vector<float> Normalised(const std::vector<float>& v) {
  double norm2 = 0;
  for (float x : v) {
    if (!std::isfinite(x)) return {};
    norm2 += static_cast<double>(x) * x;
  }
  if (norm2 <= 0) return {};
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] * inv;
  return out;
}

}  // namespace internal

namespace {

using internal::Normalised;
using internal::ReadMessage;

std::span<const std::byte> AsBytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

Status CheckMetadata(const std::string& id, const std::string& metadata_json) {
  if (id.empty()) return Error(errc::invalid_argument, "message id is empty");
  if (metadata_json.empty()) return Status::Ok();
  auto doc = nlohmann::json::parse(metadata_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error(errc::invalid_argument, "metadata of " + id + " is not a JSON object");
  }
  return Status::Ok();
}

// The unit-length copy of the vector for `id`, or why it cannot be stored.
Result<std::vector<float>> UnitVector(const std::string& id, const std::vector<float>& v,
                                      size_t dim) {
  if (v.size() != dim) {
    return Error(errc::invalid_argument, "vector for " + id + " has " + std::to_string(v.size()) +
                                             " dims, store has " + std::to_string(dim));
  }
  auto unit = Normalised(v);
  if (unit.empty())
    return Error(errc::invalid_argument, "vector for " + id + " is zero or not finite");
  return unit;
}

}  // namespace

Result<bool> EmbeddedStore::PutMessage(const std::string& id, const std::string& text,
                                       const std::string& metadata_json) {
  const NewMessage one{id, text, metadata_json};
  auto out = PutMessages(std::span<const NewMessage>(&one, 1));
  if (!out) return out.error();
  return out->front().created;
}

Result<std::vector<PutOutcome>> EmbeddedStore::PutMessages(std::span<const NewMessage> messages) {
  for (const auto& m : messages) {
    if (auto st = CheckMetadata(m.id, m.metadata_json); !st) return st.error();
  }
  std::vector<PutOutcome> out(messages.size());
  if (messages.empty()) return out;
  auto& d = *impl_;
  std::lock_guard lock(d.write_mu);
  const double now = std::max(UnixSeconds(), d.last_queued_at + 1e-6);
  int64_t seq = d.last_seq;
  std::vector<int64_t> requeued_rows;
  auto put_one = [&](const NewMessage& m, PutOutcome& o) -> Status {
    d.put_select.Reset();
    d.put_select.BindText(1, m.id);
    auto row = d.put_select.Step();
    if (!row) return row.error();
    if (!*row) {
      d.put_select.Reset();
      d.put_insert.Reset();
      d.put_insert.BindText(1, m.id);
      d.put_insert.BindText(2, m.text);
      d.put_insert.BindText(3, m.metadata_json);
      d.put_insert.BindDouble(4, now);
      d.put_insert.BindInt(5, std::max<uint32_t>(1, m.chunk_count));
      o.created = true;
      return d.put_insert.Run();
    }
    const int64_t row_id = d.put_select.ColumnInt(0);
    const bool same_text = d.put_select.ColumnText(1) == m.text;
    const bool same_meta = d.put_select.ColumnText(2) == m.metadata_json;
    o.status = static_cast<MessageStatus>(d.put_select.ColumnInt(3));
    d.put_select.Reset();
    if (same_text) {
      if (same_meta) return Status::Ok();
      d.put_update_meta.Reset();
      d.put_update_meta.BindInt(1, row_id);
      d.put_update_meta.BindText(2, m.metadata_json);
      return d.put_update_meta.Run();
    }
    d.put_requeue.Reset();
    d.put_requeue.BindInt(1, row_id);
    d.put_requeue.BindText(2, m.text);
    d.put_requeue.BindText(3, m.metadata_json);
    d.put_requeue.BindDouble(4, now);
    d.put_requeue.BindInt(5, ++seq);
    d.put_requeue.BindInt(6, std::max<uint32_t>(1, m.chunk_count));
    o.requeued = true;
    o.status = MessageStatus::pending;
    requeued_rows.push_back(row_id);
    return d.put_requeue.Run();
  };
  if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (auto s = put_one(messages[i], out[i]); !s) {
      d.put_select.Reset();
      (void)d.writer.Exec("ROLLBACK");
      return s.error();
    }
  }
  if (auto s = d.writer.Exec("COMMIT"); !s) {
    (void)d.writer.Exec("ROLLBACK");
    return s.error();
  }
  d.last_seq = seq;
  d.last_queued_at = now;
  for (int64_t row_id : requeued_rows) d.index->Remove(row_id);
  d.index_seq = seq;
  d.changes_since_snapshot += requeued_rows.size();
  return out;
}

Result<size_t> EmbeddedStore::PutEmbedded(std::span<const EmbeddedMessage> messages,
                                          const std::string& model_name) {
  auto& d = *impl_;
  const std::string& model = model_name.empty() ? d.options.model_name : model_name;
  std::vector<std::vector<float>> unit(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (auto st = CheckMetadata(m.id, m.metadata_json); !st) return st.error();
    auto v = UnitVector(m.id, m.vector, d.options.dim);
    if (!v) return v.error();
    unit[i] = std::move(*v);
  }
  if (messages.empty()) return size_t{0};
  {
    std::lock_guard lock(d.write_mu);
    const double now = UnixSeconds();
    int64_t seq = d.last_seq;
    std::vector<std::pair<int64_t, size_t>> rows;  // (row_id, index into unit)
    if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
    for (size_t i = 0; i < messages.size(); ++i) {
      auto& st = d.put_embedded;
      st.Reset();
      st.BindText(1, messages[i].id);
      st.BindText(2, messages[i].text);
      st.BindText(3, messages[i].metadata_json);
      st.BindDouble(4, now);
      st.BindText(5, model);
      st.BindBlob(6, AsBytes(unit[i]));
      st.BindInt(7, ++seq);
      auto row = st.Step();
      if (!row || !*row) {
        st.Reset();
        (void)d.writer.Exec("ROLLBACK");
        if (!row) return row.error();
        return Error(errc::internal, "upsert of " + messages[i].id + " returned no row");
      }
      rows.emplace_back(st.ColumnInt(0), i);
      (void)st.Step();
      st.Reset();
    }
    if (auto s = d.writer.Exec("COMMIT"); !s) {
      (void)d.writer.Exec("ROLLBACK");
      return s.error();
    }
    d.last_seq = seq;
    if (auto s = d.IndexRows(rows, unit); !s) return s.error();
    d.index_seq = seq;
    d.changes_since_snapshot += rows.size();
  }
  if (auto s = d.MaybeSnapshot(); !s) {
    GetLogger("store")->warn("periodic index snapshot failed: {}", s.error().ToString());
  }
  return messages.size();
}

Result<std::vector<Message>> EmbeddedStore::NextPending(size_t limit) {
  auto& d = *impl_;
  std::vector<Message> out;
  // The writer connection: the worker then sees its own latest writes.
  std::lock_guard lock(d.write_mu);
  d.pending_select.Reset();
  d.pending_select.BindInt(1, static_cast<int64_t>(limit));
  for (;;) {
    auto row = d.pending_select.Step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(ReadMessage(d.pending_select));
  }
  d.pending_select.Reset();
  return out;
}

Result<size_t> EmbeddedStore::StoreEmbeddings(const std::vector<Embedding>& embeddings,
                                              const std::string& model_name) {
  auto& d = *impl_;
  const std::string& model = model_name.empty() ? d.options.model_name : model_name;
  std::vector<std::vector<float>> unit(embeddings.size());
  for (size_t i = 0; i < embeddings.size(); ++i) {
    auto v = UnitVector(embeddings[i].id, embeddings[i].vector, d.options.dim);
    if (!v) return v.error();
    unit[i] = std::move(*v);
  }
  size_t applied = 0;
  {
    std::lock_guard lock(d.write_mu);
    internal::DerivedWrite derived(d.writer, d.options.sync_full);
    if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
    const double now = UnixSeconds();
    int64_t seq = d.last_seq;
    std::vector<std::pair<int64_t, size_t>> updated;  // (row_id, index into unit)
    for (size_t i = 0; i < embeddings.size(); ++i) {
      auto& st = d.embed_update;
      st.Reset();
      st.BindText(1, embeddings[i].id);
      st.BindText(2, model);
      st.BindDouble(3, now);
      st.BindBlob(4, AsBytes(unit[i]));
      st.BindInt(5, seq + 1);
      st.BindInt(6, embeddings[i].revision);
      auto row = st.Step();
      if (!row) {
        st.Reset();
        (void)d.writer.Exec("ROLLBACK");
        return row.error();
      }
      if (*row) {
        updated.emplace_back(st.ColumnInt(0), i);
        ++seq;
        (void)st.Step();  // finish the statement (RETURNING yields one row)
      }
      st.Reset();
    }
    if (auto s = d.writer.Exec("COMMIT"); !s) {
      (void)d.writer.Exec("ROLLBACK");
      return s.error();
    }
    d.last_seq = seq;
    if (auto s = d.IndexRows(updated, unit); !s) return s.error();
    d.index_seq = seq;
    d.changes_since_snapshot += updated.size();
    applied = updated.size();
    if (applied != embeddings.size()) {
      GetLogger("store")->debug("{} of {} embeddings skipped (unknown id or stale revision)",
                                embeddings.size() - applied, embeddings.size());
    }
  }
  if (auto s = d.MaybeSnapshot(); !s) {
    GetLogger("store")->warn("periodic index snapshot failed: {}", s.error().ToString());
  }
  return applied;
}

Result<std::vector<Message>> EmbeddedStore::NextOutbox(OutboxCursor& cursor, size_t limit) {
  auto& d = *impl_;
  std::vector<Message> out;
  // The writer connection: it sees the latest commits of PutMessages.
  std::lock_guard lock(d.write_mu);
  auto& st = d.outbox_select;
  st.Reset();
  st.BindDouble(1, cursor.queued_at);
  st.BindInt(2, cursor.row_id);
  st.BindInt(3, static_cast<int64_t>(limit));
  for (;;) {
    auto row = st.Step();
    if (!row) {
      st.Reset();
      return row.error();
    }
    if (!*row) break;
    out.push_back(ReadMessage(st));
    cursor = {out.back().queued_at, st.ColumnInt(internal::kMessageColumnCount)};
  }
  st.Reset();
  return out;
}

Result<size_t> EmbeddedStore::MarkDelivered(
    std::span<const std::pair<std::string, int64_t>> delivered, const std::string& model_name) {
  auto& d = *impl_;
  if (delivered.empty()) return size_t{0};
  const std::string& model = model_name.empty() ? d.options.model_name : model_name;
  std::lock_guard lock(d.write_mu);
  internal::DerivedWrite derived(d.writer, d.options.sync_full);
  if (auto s = d.writer.Exec("BEGIN IMMEDIATE"); !s) return s.error();
  const double now = UnixSeconds();
  size_t updated = 0;
  auto& st = d.deliver_update;
  for (const auto& [id, revision] : delivered) {
    st.Reset();
    st.BindText(1, id);
    st.BindInt(2, revision);
    st.BindText(3, model);
    st.BindDouble(4, now);
    if (auto s = st.Run(); !s) {
      st.Reset();
      (void)d.writer.Exec("ROLLBACK");
      return s.error();
    }
    updated += static_cast<size_t>(d.writer.Changes());
  }
  st.Reset();
  if (auto s = d.writer.Exec("COMMIT"); !s) {
    (void)d.writer.Exec("ROLLBACK");
    return s.error();
  }
  return updated;
}

Status EmbeddedStore::MarkFailed(const std::string& id, const std::string& reason) {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.write_mu);
    auto& st = d.fail_update;
    const int64_t seq = d.last_seq + 1;
    st.Reset();
    st.BindText(1, id);
    st.BindText(2, reason);
    st.BindInt(3, seq);
    auto row = st.Step();
    if (!row) {
      st.Reset();
      return row.error();
    }
    if (!*row) {
      st.Reset();
      return Error(errc::not_found, "no message " + id);
    }
    const int64_t row_id = st.ColumnInt(0);
    (void)st.Step();
    st.Reset();
    d.last_seq = seq;
    d.index->Remove(row_id);
    d.index_seq = seq;
    ++d.changes_since_snapshot;
  }
  if (auto s = d.MaybeSnapshot(); !s) {
    GetLogger("store")->warn("periodic index snapshot failed: {}", s.error().ToString());
  }
  return Status::Ok();
}

}  // namespace embedstream::store
