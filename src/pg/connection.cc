#include "pg/connection.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace embedstream::pg {
namespace {

constexpr size_t kCopyChunkBytes = 1 << 20;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

Error ServerError(PGconn* conn, const PGresult* res, std::string_view what) {
  std::string msg = res != nullptr ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn != nullptr) msg = PQerrorMessage(conn);
  return Error(Classify(conn, res), "postgres: " + std::string(what) + ": " + TrimMessage(msg));
}

void OnNotice(void* arg, const char* message) {
  static_cast<spdlog::logger*>(arg)->debug("postgres notice: {}", TrimMessage(message));
}

}  // namespace

std::string TrimMessage(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

ConnectionOptions ConnectionOptions::FromEnv() { return FromEnv(ConnectionOptions{}); }

ConnectionOptions ConnectionOptions::FromEnv(const ConnectionOptions& base) {
  ConnectionOptions o = base;
  o.host = EnvOr("DATABASE_HOST", o.host);
  std::string port = EnvOr("DATABASE_PORT", std::to_string(o.port));
  int p = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), p);
  if (r.ec == std::errc() && r.ptr == port.data() + port.size() && p > 0 && p < 65536) o.port = p;
  o.dbname = EnvOr("DATABASE_NAME", o.dbname);
  o.user = EnvOr("DATABASE_USER", o.user);
  o.password = EnvOr("DATABASE_PASSWORD", o.password);
  return o;
}

std::string ConnectionOptions::Where() const {
  return host + ":" + std::to_string(port) + "/" + dbname;
}

errc Classify(PGconn* conn, const PGresult* res) {
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return errc::unavailable;
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return errc::unavailable;  // no server answer: the link failed
  std::string_view s(state);
  if (s == "57014") return errc::timeout;  // query_canceled (statement_timeout)
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "57" || cls == "53" || cls == "40") return errc::unavailable;
  if (cls == "22" || cls == "23") return errc::invalid_argument;
  return errc::internal;
}

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options) {
  std::unique_ptr<Connection> self(new Connection());
  self->where_ = options.Where();
  const std::string port = std::to_string(options.port);
  const std::string timeout = std::to_string(options.connect_timeout_s);
  const char* keys[] = {"host",
                        "port",
                        "dbname",
                        "user",
                        "password",
                        "connect_timeout",
                        "application_name",
                        "client_encoding",
                        nullptr};
  const char* values[] = {options.host.c_str(),
                          port.c_str(),
                          options.dbname.c_str(),
                          options.user.c_str(),
                          options.password.c_str(),
                          timeout.c_str(),
                          "embedstream",
                          "UTF8",
                          nullptr};
  self->conn_ = PQconnectdbParams(keys, values, 0);
  if (self->conn_ == nullptr) return Error(errc::internal, "postgres: out of memory");
  if (PQstatus(self->conn_) != CONNECTION_OK) {
    return Error(errc::unavailable, "postgres: cannot connect to " + self->where_ + ": " +
                                        TrimMessage(PQerrorMessage(self->conn_)));
  }
  PQsetNoticeProcessor(self->conn_, OnNotice, self->log_.get());
  return self;
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string Connection::Quote(std::string_view ident) const {
  char* q = PQescapeIdentifier(conn_, ident.data(), ident.size());
  if (q == nullptr) return "\"" + std::string(ident) + "\"";  // only on out-of-memory
  std::string s(q);
  PQfreemem(q);
  return s;
}

std::string Connection::Literal(std::string_view text) const {
  char* q = PQescapeLiteral(conn_, text.data(), text.size());
  if (q == nullptr) return "''";  // only on out-of-memory
  std::string s(q);
  PQfreemem(q);
  return s;
}

Result<ResultPtr> Connection::Exec(const std::string& sql, ExecStatusType want,
                                   std::string_view what) {
  ResultPtr res(PQexec(conn_, sql.c_str()));
  if (!res || PQresultStatus(res.get()) != want) return ServerError(conn_, res.get(), what);
  return res;
}

Result<ResultPtr> Connection::ExecParams(const std::string& sql,
                                         const std::vector<std::string>& params,
                                         ExecStatusType want, std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  ResultPtr res(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0));
  if (!res || PQresultStatus(res.get()) != want) return ServerError(conn_, res.get(), what);
  return res;
}

Status Connection::CopyIn(const std::string& copy_sql, std::string_view data,
                          std::string_view what) {
  if (auto r = Exec(copy_sql, PGRES_COPY_IN, what); !r) return r.error();
  bool sent = true;
  for (size_t at = 0; at < data.size() && sent; at += kCopyChunkBytes) {
    const size_t n = std::min(kCopyChunkBytes, data.size() - at);
    sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(conn_, sent ? nullptr : "embedstream: sending rows failed") != 1) {
    return ServerError(conn_, nullptr, what);
  }
  ResultPtr res(PQgetResult(conn_));
  while (ResultPtr extra{PQgetResult(conn_)}) {
  }
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    return ServerError(conn_, res.get(), what);
  }
  return {};
}

void Connection::RollbackIfNeeded() {
  if (PQstatus(conn_) != CONNECTION_OK) return;
  PGTransactionStatusType ts = PQtransactionStatus(conn_);
  if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
    ResultPtr r(PQexec(conn_, "ROLLBACK"));
  }
}

Status Connection::EnsureConnected() {
  if (PQstatus(conn_) == CONNECTION_OK) return {};
  log_->warn("postgres {}: connection lost, reconnecting", where_);
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Error(errc::unavailable, "postgres: " + where_ +
                                        ": connection down: " + TrimMessage(PQerrorMessage(conn_)));
  }
  ++generation_;
  log_->info("postgres {}: reconnected", where_);
  return {};
}

Result<std::vector<std::string>> Connection::TakeNotifications() {
  if (PQconsumeInput(conn_) != 1) {
    return Error(errc::unavailable,
                 "postgres: " + where_ + ": " + TrimMessage(PQerrorMessage(conn_)));
  }
  std::vector<std::string> channels;
  while (PGnotify* n = PQnotifies(conn_)) {
    channels.emplace_back(n->relname);
    PQfreemem(n);
  }
  return channels;
}

void AppendCopyText(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
}

void AppendVector(std::string& out, std::span<const float> v) {
  out += '[';
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    auto r = std::to_chars(buf, buf + sizeof(buf), v[i]);
    out.append(buf, r.ptr);
  }
  out += ']';
}

}  // namespace embedstream::pg
