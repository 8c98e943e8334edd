#include "store/embedded_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/logging.h"
#include "store/internal/sqlite_db.h"
#include "store/internal/vector_index.h"

namespace embedstream::store {

using internal::SqliteDb;
using internal::SqliteStmt;
using internal::VectorIndex;

const char* MessageStatusName(MessageStatus s) {
  switch (s) {
    case MessageStatus::pending:
      return "pending";
    case MessageStatus::embedded:
      return "embedded";
    case MessageStatus::failed:
      return "failed";
  }
  return "pending";
}

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
constexpr const char* kOutboxIndex =
    "CREATE INDEX IF NOT EXISTS messages_outbox ON messages(queued_at, row_id) "
    "WHERE acked_revision < revision";

constexpr size_t kFilterOverfetch = 10;

constexpr const char* kMessageColumns =
    "id, text, metadata, status, reason, model_name, created_at, embedded_at, revision, "
    "queued_at";

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
  return m;
}

std::span<const std::byte> AsBytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

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

struct CompiledFilter {
  std::vector<std::pair<std::vector<std::string>, nlohmann::json>> equals;

  bool Matches(const std::string& metadata_json) const {
    if (equals.empty()) return true;
    auto doc = nlohmann::json::parse(metadata_json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return false;
    for (const auto& [path, want] : equals) {
      const nlohmann::json* cur = &doc;
      for (const auto& part : path) {
        if (!cur->is_object()) return false;
        auto it = cur->find(part);
        if (it == cur->end()) return false;
        cur = &*it;
      }
      if (*cur != want) return false;
    }
    return true;
  }
};

Result<CompiledFilter> CompileFilter(const Filter& filter) {
  CompiledFilter out;
  for (const auto& [field, literal] : filter.equals) {
    std::string_view rest = field;
    if (rest.starts_with("metadata.")) rest.remove_prefix(9);
    std::vector<std::string> path;
    size_t start = 0;
    while (start <= rest.size()) {
      size_t dot = rest.find('.', start);
      if (dot == std::string_view::npos) dot = rest.size();
      path.emplace_back(rest.substr(start, dot - start));
      if (path.back().empty()) return Error(errc::invalid_argument, "bad filter field: " + field);
      start = dot + 1;
    }
    auto value = nlohmann::json::parse(literal, nullptr, false);
    if (value.is_discarded()) {
      return Error(errc::invalid_argument,
                   "filter value for " + field + " is not JSON: " + literal);
    }
    out.equals.emplace_back(std::move(path), std::move(value));
  }
  return out;
}

}  // namespace

// flock()ed LOCK file; declared first in Impl so it is released last.
struct DirLock {
  int fd = -1;
  DirLock() = default;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    if (fd >= 0) ::close(fd);
  }
};

struct EmbeddedStore::Impl {
  DirLock dir_lock;
  StoreOptions options;

  // Writer side: the only connection that writes, and the change sequence.
  std::mutex write_mu;
  SqliteDb writer;
  SqliteStmt put_select, put_insert, put_update_meta, put_requeue;
  SqliteStmt embed_update, fail_update, pending_select, put_embedded;
  SqliteStmt outbox_select, deliver_update;
  int64_t last_seq = 0;   // highest change_seq committed
  // queued_at of the last put: strictly increasing, so the outbox cursor
  // (queued_at, row_id) never skips a re-queued row, whatever the clock does.
  double last_queued_at = 0;
  int64_t index_seq = 0;  // highest change_seq applied to the index
  // Written under write_mu; read by MaybeSnapshot after the writer lets go.
  std::atomic<size_t> changes_since_snapshot{0};
  bool index_broken = false;  // an index update failed: stop snapshotting

  // Reader side.
  std::mutex read_mu;
  SqliteDb reader;
  SqliteStmt get_by_id, get_by_row, list_page, stats_select;

  std::unique_ptr<VectorIndex> index;
  std::mutex snapshot_mu;

  Status Prepare() {
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
         "INSERT INTO messages(id, text, metadata, created_at, queued_at) VALUES(?1, ?2, ?3, ?4, "
         "?4)"},
        {&writer, &put_update_meta, "UPDATE messages SET metadata = ?2 WHERE row_id = ?1"},
        {&writer, &put_requeue,
         "UPDATE messages SET text = ?2, metadata = ?3, status = 0, reason = '', model_name = '', "
         "embedded_at = 0, vector = NULL, queued_at = ?4, revision = revision + 1, change_seq = ?5 "
         "WHERE row_id = ?1"},
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
         "SELECT " + cols + " FROM messages ORDER BY row_id DESC LIMIT ?1 OFFSET ?2"},
        {&reader, &stats_select,
         "SELECT status, count(*), min(queued_at) FROM messages GROUP BY status"},
    };
    for (const auto& item : items) {
      if (auto s = prep(*item.db, *item.st, item.sql); !s) return s;
    }
    return Status::Ok();
  }

  // Applies rows changed after `after_seq` to the index (current row state,
  // so order and repetition do not matter). Caller holds write_mu or is Open.
  Result<size_t> CatchUp(int64_t after_seq) {
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
      if (st->ColumnInt(1) == static_cast<int64_t>(MessageStatus::embedded) &&
          blob.size() == bytes) {
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
    }
    if (auto s = flush(); !s) return s.error();
    return applied;
  }

  // Inserts the committed rows' vectors into the index, in parallel on every
  // core (the encoder is idle meanwhile: this runs between its batches).
  // Caller holds write_mu.
  Status IndexRows(const std::vector<std::pair<int64_t, size_t>>& rows,
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

  Status MaybeSnapshot() {
    if (options.snapshot_every_changes == 0 ||
        changes_since_snapshot < options.snapshot_every_changes) {
      return Status::Ok();
    }
    return Snapshot();
  }

  Status Snapshot() {
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

  // Rows for the given labels, in order, that are embedded and pass filter;
  // stops after k hits.
  // The first k candidates that are embedded and pass `filter`, as hits
  // [skip, k) of them, read until they hold over max_bytes (page.cut). The
  // `matched` count is how many passed, skipped ones included.
  Result<SearchPage> Hydrate(const std::vector<internal::ScoredLabel>& cands, size_t k,
                             const CompiledFilter& filter, size_t skip = 0,
                             size_t max_bytes = SIZE_MAX, size_t* matched = nullptr) {
    SearchPage page;
    size_t passed = 0, bytes = 0;
    std::lock_guard lock(read_mu);
    for (const auto& [score, label] : cands) {
      if (passed >= k) break;
      if (bytes > max_bytes) {
        page.cut = true;
        break;
      }
      get_by_row.Reset();
      get_by_row.BindInt(1, label);
      auto row = get_by_row.Step();
      if (!row) return row.error();
      if (!*row) continue;
      Message m = ReadMessage(get_by_row);
      if (m.status != MessageStatus::embedded || !filter.Matches(m.metadata_json)) continue;
      if (passed++ < skip) continue;
      bytes += m.id.size() + m.text.size() + m.metadata_json.size();
      page.hits.push_back({std::move(m.id), score, std::move(m.text), std::move(m.metadata_json)});
    }
    get_by_row.Reset();
    if (matched != nullptr) *matched = passed;
    return page;
  }
};

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
  {
    auto has = w.Prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'acked_revision'");
    if (!has) return has.error();
    auto row = has->Step();
    if (!row) return row.error();
    const bool migrate = !*row;
    has->Reset();
    if (migrate) {
      if (auto s = w.Exec(std::string("BEGIN IMMEDIATE;") + kOutboxColumn + "COMMIT;"); !s) {
        (void)w.Exec("ROLLBACK");
        return s.error();
      }
    }
    if (auto s = w.Exec(kOutboxIndex); !s) return s.error();
  }
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
  auto applied = impl->CatchUp(covered);
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
    cursor = {out.back().queued_at, st.ColumnInt(10)};
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
  std::optional<Message> out;
  if (*row) out = ReadMessage(d.get_by_id);
  d.get_by_id.Reset();
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
    }
  }
  d.stats_select.Reset();
  return c;
}

Result<std::vector<SearchHit>> EmbeddedStore::Search(const std::vector<float>& query, size_t k,
                                                     const Filter& filter) {
  auto page = SearchPaged(query, k, filter, 0, SIZE_MAX);
  if (!page) return page.error();
  return std::move(page->hits);
}

Result<EmbeddedStore::SearchPage> EmbeddedStore::SearchPaged(const std::vector<float>& query,
                                                             size_t k, const Filter& filter,
                                                             size_t skip, size_t max_bytes) {
  auto& d = *impl_;
  if (query.size() != d.options.dim) {
    return Error(errc::invalid_argument, "query has " + std::to_string(query.size()) +
                                             " dims, store has " + std::to_string(d.options.dim));
  }
  const auto q = Normalised(query);
  if (q.empty()) return Error(errc::invalid_argument, "query vector is zero or not finite");
  auto compiled = CompileFilter(filter);
  if (!compiled) return compiled.error();
  if (k == 0 || skip >= k) return SearchPage{};
  const bool exact = d.index->live_count() < d.options.exact_search_below;
  if (filter.empty()) {
    auto cands = exact ? d.index->SearchExact(q.data(), k) : d.index->SearchHnsw(q.data(), k);
    return d.Hydrate(cands, k, *compiled, skip, max_bytes);
  }
  if (!exact) {
    // Over-fetch from HNSW and filter; too few survivors: exact scan below.
    size_t matched = 0;
    auto page = d.Hydrate(d.index->SearchHnsw(q.data(), k * kFilterOverfetch), k, *compiled, skip,
                          max_bytes, &matched);
    if (!page || page->cut || matched >= k) return page;
  }
  return d.Hydrate(d.index->SearchExact(q.data(), std::numeric_limits<size_t>::max()), k, *compiled,
                   skip, max_bytes);
}

Status EmbeddedStore::SaveSnapshot() { return impl_->Snapshot(); }

size_t EmbeddedStore::indexed_count() const { return impl_->index->live_count(); }

}  // namespace embedstream::store
