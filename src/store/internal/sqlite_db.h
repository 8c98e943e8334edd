#pragma once
// Thin RAII wrappers over the SQLite C API: a connection (SqliteDb) and a
// prepared statement (SqliteStmt). Errors come back as Error values with the
// SQLite message. Not thread-safe: one thread at a time per connection (the
// store guards each connection with its own mutex).

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace embedstream::store::internal {

class SqliteStmt {
 public:
  SqliteStmt() = default;
  explicit SqliteStmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  SqliteStmt(SqliteStmt&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  SqliteStmt& operator=(SqliteStmt&& other) noexcept;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt();

  // Resets the statement and clears its bindings; call before reuse.
  void Reset();
  // Binds are 1-based, as in SQLite.
  void BindText(int i, std::string_view s);
  void BindInt(int i, int64_t v);
  void BindDouble(int i, double v);
  void BindBlob(int i, std::span<const std::byte> bytes);
  void BindNull(int i);
  // Steps once: true when a row is ready, false when done, Error otherwise.
  Result<bool> Step();
  // Steps to completion (for statements returning no rows).
  Status Run();

  std::string ColumnText(int i) const;
  int64_t ColumnInt(int i) const;
  double ColumnDouble(int i) const;
  bool ColumnIsNull(int i) const;
  std::span<const std::byte> ColumnBlob(int i) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDb {
 public:
  // Opens (creating if missing) a database file in full-mutex-free mode.
  static Result<SqliteDb> Open(const std::filesystem::path& path, bool read_only);
  SqliteDb() = default;
  SqliteDb(SqliteDb&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  Status Exec(const std::string& sql);
  Result<SqliteStmt> Prepare(const std::string& sql);
  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  Error MakeError(const std::string& what) const;
  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace embedstream::store::internal
