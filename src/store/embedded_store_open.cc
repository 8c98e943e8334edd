#include "store/embedded_store.h"

#include <optional>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/logging.h"
#include "store/internal/store_impl.h"

namespace embedstream::store {

using internal::kMessageColumns;
using internal::SqliteDb;
using internal::SqliteStmt;
using internal::VectorIndex;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
  row_id      INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  text        TEXT NOT NULL,
  metadata    TEXT NOT NULL DEFAULT '',
  status      INTEGER NOT NULL DEFAULT 0,
  reason      TEXT NOT NULL DEFAULT '',
  model_name  TEXT NOT NULL DEFAULT '',
  created_at  REAL NOT NULL,
  queued_at   REAL NOT NULL,
  embedded_at REAL NOT NULL DEFAULT 0,
  revision    INTEGER NOT NULL DEFAULT 1,
  change_seq  INTEGER NOT NULL DEFAULT 0,
  vector      BLOB);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages(status, queued_at);
CREATE INDEX IF NOT EXISTS messages_by_change ON messages(change_seq);
)sql";

// acked_revision (the revision every sink of the HTTP pipeline has) came after
// the first stores: added here, rows already embedded or failed count as
// delivered, so an upgrade re-sends nothing.
constexpr const char* kOutboxColumn =
    "ALTER TABLE messages ADD COLUMN acked_revision INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET acked_revision = revision WHERE status <> 0;";
// Chunks (DocumentWrite): a document's chunk rows point at it.
constexpr const char* kChunkColumns =
    "ALTER TABLE messages ADD COLUMN parent_id TEXT;"
    "ALTER TABLE messages ADD COLUMN chunk_index INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE messages ADD COLUMN char_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN char_end INTEGER NOT NULL DEFAULT 0;";
constexpr const char* kChunkIndex =
    "CREATE INDEX IF NOT EXISTS messages_by_parent ON messages(parent_id) "
    "WHERE parent_id IS NOT NULL";
constexpr const char* kOutboxIndex =
    "CREATE INDEX IF NOT EXISTS messages_outbox ON messages(queued_at, row_id) "
    "WHERE acked_revision < revision";

// Runs `ddl` in one transaction when messages has no column `column` yet.
Status Migrate(SqliteDb& w, const char* column, const char* ddl) {
  auto has = w.Prepare(std::string("SELECT 1 FROM pragma_table_info('messages') WHERE name = '") +
                       column + "'");
  if (!has) return has.error();
  auto row = has->Step();
  if (!row) return row.error();
  const bool missing = !*row;
  has->Reset();
  if (!missing) return Status::Ok();
  if (auto s = w.Exec(std::string("BEGIN IMMEDIATE;") + ddl + "COMMIT;"); !s) {
    (void)w.Exec("ROLLBACK");
    return s;
  }
  return Status::Ok();
}

}  // namespace

Status EmbeddedStore::Impl::Prepare() {
  auto prep = [](SqliteDb& db, SqliteStmt& st, const std::string& sql) -> Status {
    auto r = db.Prepare(sql);
    if (!r) return r.error();
    st = std::move(*r);
    return Status::Ok();
  };
  const std::string cols = kMessageColumns;
  struct Item {
    SqliteDb* db;
    SqliteStmt* st;
    std::string sql;
  };
  const Item items[] = {
      {&writer, &put_select, "SELECT row_id, text, metadata, status FROM messages WHERE id = ?1"},
      {&writer, &put_insert,
       "INSERT INTO messages(id, text, metadata, created_at, queued_at, chunk_count) VALUES(?1, "
       "?2, ?3, ?4, ?4, ?5)"},
      {&writer, &put_update_meta, "UPDATE messages SET metadata = ?2 WHERE row_id = ?1"},
      {&writer, &put_requeue,
       "UPDATE messages SET text = ?2, metadata = ?3, status = 0, reason = '', model_name = '', "
       "embedded_at = 0, vector = NULL, queued_at = ?4, revision = revision + 1, change_seq = ?5, "
       "chunk_count = ?6 WHERE row_id = ?1"},
      {&writer, &embed_update,
       "UPDATE messages SET status = 1, reason = '', model_name = ?2, embedded_at = ?3, "
       "vector = ?4, change_seq = ?5 WHERE id = ?1 AND (?6 = 0 OR revision = ?6) RETURNING "
       "row_id"},
      {&writer, &put_embedded,
       "INSERT INTO messages(id, text, metadata, created_at, queued_at, status, model_name, "
       "embedded_at, vector, change_seq) VALUES(?1, ?2, ?3, ?4, ?4, 1, ?5, ?4, ?6, ?7) "
       "ON CONFLICT(id) DO UPDATE SET revision = revision + (text <> excluded.text), "
       "text = excluded.text, metadata = excluded.metadata, status = 1, reason = '', "
       "model_name = excluded.model_name, embedded_at = excluded.embedded_at, "
       "vector = excluded.vector, change_seq = excluded.change_seq, "
       "acked_revision = revision + (text <> excluded.text) RETURNING row_id"},
      {&writer, &fail_update,
       "UPDATE messages SET status = 2, reason = ?2, model_name = '', embedded_at = 0, "
       "vector = NULL, change_seq = ?3 WHERE id = ?1 RETURNING row_id"},
      {&writer, &pending_select,
       "SELECT " + cols + " FROM messages WHERE status = 0 ORDER BY queued_at, row_id LIMIT ?1"},
      {&writer, &outbox_select,
       "SELECT " + cols +
           ", row_id FROM messages WHERE acked_revision < revision AND (queued_at > ?1 OR "
           "(queued_at = ?1 AND row_id > ?2)) ORDER BY queued_at, row_id LIMIT ?3"},
      {&writer, &deliver_update,
       "UPDATE messages SET acked_revision = revision, model_name = CASE status WHEN 0 THEN ?3 "
       "ELSE model_name END, embedded_at = CASE status WHEN 0 THEN ?4 ELSE embedded_at END, "
       "status = CASE status WHEN 0 THEN 1 ELSE status END WHERE id = ?1 AND revision = ?2"},
      {&reader, &get_by_id, "SELECT " + cols + " FROM messages WHERE id = ?1"},
      {&reader, &get_by_row, "SELECT " + cols + " FROM messages WHERE row_id = ?1"},
      {&reader, &list_page,
       "SELECT " + cols +
           " FROM messages WHERE parent_id IS NULL AND status <> 3 ORDER BY row_id DESC LIMIT ?1 "
           "OFFSET ?2"},
      {&reader, &stats_select,
       "SELECT status, count(*), min(queued_at) FROM messages WHERE parent_id IS NULL AND "
       "status <> 3 GROUP BY status"},
      {&reader, &chunks_count,
       "SELECT count(*) FROM messages WHERE parent_id = ?1 AND chunk_count = ?2 AND status = 1"},
  };
  for (const auto& item : items) {
    if (auto s = prep(*item.db, *item.st, item.sql); !s) return s;
  }
  return Status::Ok();
}

EmbeddedStore::EmbeddedStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EmbeddedStore::~EmbeddedStore() {
  if (impl_ && impl_->index) {
    if (auto s = impl_->Snapshot(); !s) {
      GetLogger("store")->warn("index snapshot on close failed: {}", s.error().ToString());
    }
  }
}

Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Open(const StoreOptions& options) {
  auto log = GetLogger("store");
  if (options.dim == 0) return Error(errc::invalid_argument, "store dim must be > 0");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return Error(errc::io_error, "create " + options.dir.string() + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // One process per store dir: the index and sequence live in this process.
  const auto lock_path = options.dir / "LOCK";
  impl->dir_lock.fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (impl->dir_lock.fd < 0 || ::flock(impl->dir_lock.fd, LOCK_EX | LOCK_NB) != 0) {
    return Error(errc::unavailable,
                 "store " + options.dir.string() + " is locked by another process");
  }

  const auto db_path = options.dir / "store.db";
  auto writer = SqliteDb::Open(db_path, false);
  if (!writer) return writer.error();
  impl->writer = std::move(*writer);
  auto& w = impl->writer;
  if (auto s = w.Exec("PRAGMA journal_mode=WAL"); !s) return s.error();
  if (auto s = w.Exec(options.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      !s) {
    return s.error();
  }
  if (auto s = w.Exec(kSchema); !s) return s.error();
  // Migrations of stores written by older versions: columns added once.
  if (auto s = Migrate(w, "acked_revision", kOutboxColumn); !s) return s.error();
  if (auto s = w.Exec(kOutboxIndex); !s) return s.error();
  if (auto s = Migrate(w, "parent_id", kChunkColumns); !s) return s.error();
  if (auto s = w.Exec(kChunkIndex); !s) return s.error();
  if (auto s = w.Exec("INSERT OR IGNORE INTO meta(key, value) VALUES('dim', '" +
                      std::to_string(options.dim) + "')");
      !s) {
    return s.error();
  }
  {
    auto st = w.Prepare("SELECT value FROM meta WHERE key = 'dim'");
    if (!st) return st.error();
    auto row = st->Step();
    if (!row) return row.error();
    if (*row && st->ColumnText(0) != std::to_string(options.dim)) {
      return Error(errc::invalid_argument, "store " + options.dir.string() + " holds dim " +
                                               st->ColumnText(0) + ", asked for " +
                                               std::to_string(options.dim));
    }
    auto max_seq = w.Prepare("SELECT coalesce(max(change_seq), 0) FROM messages");
    if (!max_seq) return max_seq.error();
    if (auto r = max_seq->Step(); !r) return r.error();
    impl->last_seq = max_seq->ColumnInt(0);
    auto max_queued = w.Prepare("SELECT coalesce(max(queued_at), 0) FROM messages");
    if (!max_queued) return max_queued.error();
    if (auto r = max_queued->Step(); !r) return r.error();
    impl->last_queued_at = max_queued->ColumnDouble(0);
  }
  auto reader = SqliteDb::Open(db_path, false);
  if (!reader) return reader.error();
  impl->reader = std::move(*reader);
  if (auto s = impl->reader.Exec("PRAGMA query_only=1"); !s) return s.error();
  if (auto s = impl->Prepare(); !s) return s.error();

  // Index: trust a snapshot only if its checksum holds and it is not ahead of
  // the database; otherwise rebuild from SQLite.
  const internal::HnswParams params{options.hnsw_m, options.hnsw_ef_construction,
                                    options.hnsw_ef_search};
  int64_t covered = 0;
  auto loaded = VectorIndex::Load(options.dir, options.dim, params, &covered);
  bool rebuilt = false;
  if (loaded && covered <= impl->last_seq) {
    impl->index = std::move(*loaded);
  } else {
    if (loaded) {
      log->warn("index snapshot covers change {} but the database ends at {}; rebuilding", covered,
                impl->last_seq);
    } else if (loaded.error().code != errc::not_found) {
      log->warn("index snapshot rejected ({}); rebuilding from SQLite", loaded.error().ToString());
    }
    impl->index = std::make_unique<VectorIndex>(options.dim, params);
    covered = 0;
    rebuilt = true;
  }
  impl->index_seq = covered;
  // A rebuild of a large store takes a while: progress on a terminal.
  std::optional<Progress> progress;
  if (rebuilt && Progress::DefaultEnabled()) {
    auto count = impl->writer.Prepare("SELECT count(*) FROM messages");
    uint64_t rows = 0;
    if (count && count->Step().ok()) rows = static_cast<uint64_t>(count->ColumnInt(0));
    progress.emplace(
        ProgressOptions{.label = "store index rebuild", .total = rows, .unit = "rows"});
  }
  auto applied = impl->CatchUp(covered, progress ? &*progress : nullptr);
  if (progress) progress->Finish();
  if (!applied) return applied.error();
  log->info("store {} open: {} vectors indexed ({} rows {} from SQLite)", options.dir.string(),
            impl->index->live_count(), *applied, rebuilt ? "indexed" : "caught up");
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(std::move(impl)));
  if (*applied > 0) {
    if (auto s = store->impl_->Snapshot(); !s) {
      log->warn("index snapshot after open failed: {}", s.error().ToString());
    }
  }
  return store;
}

}  // namespace embedstream::store
