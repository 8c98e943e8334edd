#include "store/internal/sqlite_db.h"

#include <utility>

namespace embedstream::store::internal {

SqliteStmt& SqliteStmt::operator=(SqliteStmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

SqliteStmt::~SqliteStmt() { sqlite3_finalize(stmt_); }

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void SqliteStmt::BindText(int i, std::string_view s) {
  sqlite3_bind_text64(stmt_, i, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void SqliteStmt::BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
void SqliteStmt::BindDouble(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
void SqliteStmt::BindBlob(int i, std::span<const std::byte> bytes) {
  sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
}
void SqliteStmt::BindNull(int i) { sqlite3_bind_null(stmt_, i); }

Result<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  return Error(errc::io_error, std::string("sqlite step: ") + sqlite3_errmsg(db));
}

Status SqliteStmt::Run() {
  for (;;) {
    auto more = Step();
    if (!more) return more.error();
    if (!*more) return Status::Ok();
  }
}

std::string SqliteStmt::ColumnText(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  if (p == nullptr) return {};
  return std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)));
}
int64_t SqliteStmt::ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }
double SqliteStmt::ColumnDouble(int i) const { return sqlite3_column_double(stmt_, i); }
bool SqliteStmt::ColumnIsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
std::span<const std::byte> SqliteStmt::ColumnBlob(int i) const {
  const auto* p = static_cast<const std::byte*>(sqlite3_column_blob(stmt_, i));
  if (p == nullptr) return {};
  return {p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))};
}

Result<SqliteDb> SqliteDb::Open(const std::filesystem::path& path, bool read_only) {
  SqliteDb out;
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  int rc = sqlite3_open_v2(path.c_str(), &out.db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = out.db_ != nullptr ? sqlite3_errmsg(out.db_) : sqlite3_errstr(rc);
    return Error(errc::io_error, "sqlite open " + path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(out.db_, 5000);
  return out;
}

SqliteDb& SqliteDb::operator=(SqliteDb&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

Error SqliteDb::MakeError(const std::string& what) const {
  int code = sqlite3_errcode(db_);
  errc kind = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? errc::corrupt : errc::io_error;
  return Error(kind, "sqlite " + what + ": " + sqlite3_errmsg(db_));
}

Status SqliteDb::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown";
    sqlite3_free(err);
    return Error(errc::io_error, "sqlite exec: " + msg + " in: " + sql.substr(0, 80));
  }
  return Status::Ok();
}

Result<SqliteStmt> SqliteDb::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
      SQLITE_OK) {
    return MakeError("prepare: " + sql.substr(0, 80));
  }
  return SqliteStmt(stmt);
}

}  // namespace embedstream::store::internal
