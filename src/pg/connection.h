#pragma once
// pg::Connection: one libpq connection with the habits every embedstream
// PostgreSQL component needs: statements with parameters only (no data in
// SQL), errors classified by SQLSTATE into errc, one reset-and-retry on a
// broken link, COPY FROM STDIN, LISTEN/NOTIFY. Used by the sink
// (sinks/postgres_sink), the CQRS source (sources/postgres_source) and
// `embedstream pg`.
//
// Not thread-safe: one thread uses a connection (open one per thread).
//
// Example:
//   auto conn = pg::Connection::Open(pg::ConnectionOptions::FromEnv());
//   if (!conn) return conn.error();
//   auto r = (*conn)->ExecParams("SELECT count(*) FROM t WHERE x = $1", {"a"},
//                                PGRES_TUPLES_OK, "counting");

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/logging.h"
#include "core/result.h"

namespace embedstream::pg {

struct ConnectionOptions {
  std::string host = "127.0.0.1";
  int port = 5433;
  std::string dbname = "text_messages_db";
  std::string user = "postgres";
  std::string password = "postgres";
  int connect_timeout_s = 10;

  // DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER,
  // DATABASE_PASSWORD over `base` (seed 001's names). A port that is not a
  // number in 1..65535 keeps the base value.
  static ConnectionOptions FromEnv(const ConnectionOptions& base);
  static ConnectionOptions FromEnv();
  // "host:port/dbname", for messages (never the password).
  std::string Where() const;
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// errc of a failed statement: connection state first, then SQLSTATE class
// (08/53/57/40 unavailable, 57014 timeout, 22/23 invalid_argument).
errc Classify(PGconn* conn, const PGresult* res);

class Connection {
 public:
  // unavailable when the server cannot be reached or refuses the login.
  static Result<std::unique_ptr<Connection>> Open(const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A quoted identifier ("name", escaped by libpq).
  std::string Quote(std::string_view ident) const;
  // A quoted literal ('text', escaped by libpq), for DDL that takes no
  // parameters (trigger arguments). Never for data in DML.
  std::string Literal(std::string_view text) const;

  Result<ResultPtr> Exec(const std::string& sql, ExecStatusType want, std::string_view what);
  Result<ResultPtr> ExecParams(const std::string& sql, const std::vector<std::string>& params,
                               ExecStatusType want, std::string_view what);
  // COPY ... FROM STDIN with `data` in COPY text format, sent in chunks.
  Status CopyIn(const std::string& copy_sql, std::string_view data, std::string_view what);

  // After a failed statement inside a transaction: back to idle.
  void RollbackIfNeeded();
  // Resets a broken connection once; unavailable when it stays down. Each
  // successful reset increments generation(): session state (temp tables,
  // LISTEN, settings) is gone and must be set up again.
  Status EnsureConnected();
  bool broken() const { return PQstatus(conn_) == CONNECTION_BAD; }
  uint64_t generation() const { return generation_; }

  // Runs op; when it failed because the link broke, resets once and runs it
  // again (for idempotent operations).
  template <typename T, typename Op>
  Result<T> WithReconnect(Op op) {
    if (Status s = EnsureConnected(); !s) return s.error();
    Result<T> r = op();
    if (r.ok() || !broken()) return r;
    if (Status s = EnsureConnected(); !s) return s.error();
    return op();
  }

  // LISTEN support: the socket to wait on, and the channels of the
  // notifications received so far (reads what the socket has; never blocks).
  int socket() const { return PQsocket(conn_); }
  Result<std::vector<std::string>> TakeNotifications();

  int backend_pid() const { return PQbackendPID(conn_); }
  const std::string& where() const { return where_; }
  PGconn* raw() { return conn_; }

 private:
  Connection() = default;
  PGconn* conn_ = nullptr;
  std::string where_;
  uint64_t generation_ = 0;
  std::shared_ptr<spdlog::logger> log_ = GetLogger("postgres");
};

// COPY text format: backslash, newline, carriage return and tab escaped.
void AppendCopyText(std::string& out, std::string_view s);
// pgvector's text form "[1,2.5,-3]", shortest round-trip digits.
void AppendVector(std::string& out, std::span<const float> v);
// Trailing newlines and spaces removed (libpq messages end with "\n").
std::string TrimMessage(std::string s);

}  // namespace embedstream::pg
