#pragma once
// EmbeddedStore::Impl: what every part of the store shares (the SQLite
// connections and their prepared statements, the change sequence, the HNSW
// index), and the helpers more than one part uses. The parts, one concern
// each (README.md, "Files"):
//   embedded_store.cc         puts, pending rows, vectors, failures (writer side)
//   embedded_store_open.cc    Open, close, the schema and the prepared statements
//   embedded_store_index.cc   index upkeep: catch-up, inserts, snapshots
//   embedded_store_read.cc    Get, List, Stats (reader side)
//   embedded_store_search.cc  Search, SearchPaged, metadata filters
// Threads: as EmbeddedStore (embedded_store.h); each member says which mutex
// guards it.

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "store/embedded_store.h"
#include "store/internal/sqlite_db.h"
#include "store/internal/vector_index.h"

namespace embedstream::store {
namespace internal {

// flock()ed LOCK file; declared first in EmbeddedStore::Impl so it is released last.
struct DirLock {
  int fd = -1;
  DirLock() = default;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    if (fd >= 0) ::close(fd);
  }
};

// The columns ReadMessage reads, in its order.
inline constexpr const char* kMessageColumns =
    "id, text, metadata, status, reason, model_name, created_at, embedded_at, revision, "
    "queued_at, parent_id, chunk_index, chunk_count, char_start, char_end";

inline constexpr int kMessageColumnCount = 15;  // a column selected after them has this index

// The Message in the current row of a statement that selected kMessageColumns.
Message ReadMessage(const SqliteStmt& st);

// Unit-length copy of v; empty when v has a non-finite or all-zero value.
std::vector<float> Normalised(const std::vector<float>& v);

// For writes derived from what the store already holds durably (a message's
// vector, its delivery mark, its failure): commit without an fsync. WAL
// frames are written in order and the next fsynced commit (a POST's) makes
// them durable with it, so power loss can only lose a suffix of them, and
// the outbox then delivers those messages again. A process crash loses
// nothing (the frames are in the OS). The caller holds write_mu.
class DerivedWrite {
 public:
  explicit DerivedWrite(SqliteDb& db, bool full) : db_(db), full_(full) {
    if (full_) (void)db_.Exec("PRAGMA synchronous=NORMAL");
  }
  ~DerivedWrite() {
    if (full_) (void)db_.Exec("PRAGMA synchronous=FULL");
  }
  DerivedWrite(const DerivedWrite&) = delete;
  DerivedWrite& operator=(const DerivedWrite&) = delete;

 private:
  SqliteDb& db_;
  const bool full_;
};

struct CompiledFilter;  // embedded_store_search.cc

}  // namespace internal

struct EmbeddedStore::Impl {
  internal::DirLock dir_lock;
  StoreOptions options;

  // Writer side: the only connection that writes, and the change sequence.
  std::mutex write_mu;
  internal::SqliteDb writer;
  internal::SqliteStmt put_select, put_insert, put_update_meta, put_requeue;
  internal::SqliteStmt embed_update, fail_update, pending_select, put_embedded;
  internal::SqliteStmt outbox_select, deliver_update;
  // queued_at of the last put: strictly increasing, so the outbox cursor
  // (queued_at, row_id) never skips a re-queued row, whatever the clock does.
  double last_queued_at = 0;
  int64_t last_seq = 0;   // highest change_seq committed
  int64_t index_seq = 0;  // highest change_seq applied to the index
  // Written under write_mu; read by MaybeSnapshot after the writer lets go.
  std::atomic<size_t> changes_since_snapshot{0};
  bool index_broken = false;  // an index update failed: stop snapshotting

  // Reader side.
  std::mutex read_mu;
  internal::SqliteDb reader;
  internal::SqliteStmt get_by_id, get_by_row, list_page, stats_select, chunks_count;

  std::unique_ptr<internal::VectorIndex> index;
  std::mutex snapshot_mu;

  // The prepared statements above (embedded_store_open.cc).
  Status Prepare();
  // Applies rows changed after `after_seq` to the index (current row state,
  // so order and repetition do not matter). Caller holds write_mu or is Open.
  // `progress` (may be null) counts the rows applied.
  Result<size_t> CatchUp(int64_t after_seq, Progress* progress = nullptr);
  // Inserts the committed rows' vectors into the index, in parallel on every
  // core (the encoder is idle meanwhile: this runs between its batches).
  // Caller holds write_mu.
  Status IndexRows(const std::vector<std::pair<int64_t, size_t>>& rows,
                   const std::vector<std::vector<float>>& unit);
  // A snapshot once snapshot_every_changes index changes have passed.
  Status MaybeSnapshot();
  Status Snapshot();
  // The first k candidates that are embedded and pass `filter`, as hits
  // [skip, k) of them, read until they hold over max_bytes (page.cut). The
  // `matched` count is how many passed, skipped ones included.
  Result<SearchPage> Hydrate(const std::vector<internal::ScoredLabel>& cands, size_t k,
                             const internal::CompiledFilter& filter, size_t skip = 0,
                             size_t max_bytes = SIZE_MAX, size_t* matched = nullptr);
};

}  // namespace embedstream::store
