#include "store/embedded_store.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>

#include "store/internal/store_impl.h"

namespace embedstream::store {

Result<size_t> EmbeddedStore::Impl::CatchUp(int64_t after_seq, Progress* progress) {
  auto st = writer.Prepare(
      "SELECT row_id, status, vector, change_seq FROM messages WHERE change_seq > ?1 "
      "ORDER BY change_seq");
  if (!st) return st.error();
  st->BindInt(1, after_seq);
  size_t applied = 0;
  const size_t bytes = options.dim * sizeof(float);
  // Each row appears once (its current state), so the order across rows
  // does not matter: embedded rows are inserted in parallel batches.
  constexpr size_t kBatch = 4096;
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int64_t> labels;
  std::vector<float> vectors;
  auto flush = [&]() -> Status {
    if (labels.empty()) return Status::Ok();
    auto s = index->UpsertBatch(labels, vectors.data(), threads);
    labels.clear();
    vectors.clear();
    return s;
  };
  for (;;) {
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) break;
    const int64_t row_id = st->ColumnInt(0);
    const auto blob = st->ColumnBlob(2);
    if (st->ColumnInt(1) == static_cast<int64_t>(MessageStatus::embedded) && blob.size() == bytes) {
      labels.push_back(row_id);
      const size_t at = vectors.size();
      vectors.resize(at + options.dim);
      std::memcpy(vectors.data() + at, blob.data(), bytes);
      if (labels.size() == kBatch) {
        if (auto s = flush(); !s) return s.error();
      }
    } else {
      index->Remove(row_id);
    }
    index_seq = std::max(index_seq, st->ColumnInt(3));
    ++applied;
    if (progress != nullptr) progress->Add();
  }
  if (auto s = flush(); !s) return s.error();
  return applied;
}

Status EmbeddedStore::Impl::IndexRows(const std::vector<std::pair<int64_t, size_t>>& rows,
                                      const std::vector<std::vector<float>>& unit) {
  if (rows.empty()) return Status::Ok();
  std::vector<int64_t> labels;
  std::vector<float> packed;
  labels.reserve(rows.size());
  packed.reserve(rows.size() * options.dim);
  for (const auto& [row_id, i] : rows) {
    labels.push_back(row_id);
    packed.insert(packed.end(), unit[i].begin(), unit[i].end());
  }
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (auto s = index->UpsertBatch(labels, packed.data(), threads); !s) {
    index_broken = true;
    return s;
  }
  return Status::Ok();
}

Status EmbeddedStore::Impl::MaybeSnapshot() {
  if (options.snapshot_every_changes == 0 ||
      changes_since_snapshot < options.snapshot_every_changes) {
    return Status::Ok();
  }
  return Snapshot();
}

Status EmbeddedStore::Impl::Snapshot() {
  std::lock_guard snap_lock(snapshot_mu);
  int64_t covered = 0;
  {
    std::lock_guard lock(write_mu);
    if (index_broken) return Error(errc::internal, "index update failed earlier; not saving");
    covered = index_seq;
    changes_since_snapshot = 0;
  }
  // The index may already hold changes past `covered`; catch-up reapplies
  // them idempotently on the next Open.
  return index->Save(options.dir, covered);
}

Status EmbeddedStore::SaveSnapshot() { return impl_->Snapshot(); }

size_t EmbeddedStore::indexed_count() const { return impl_->index->live_count(); }

}  // namespace embedstream::store
