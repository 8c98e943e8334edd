#include "sources/postgres_source.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

#include "core/logging.h"

namespace embedstream::sources {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

// A PostgreSQL array literal of text elements: {"a","b\"c"}.
std::string ArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

PostgresSource::PostgresSource(PostgresSourceOptions options)
    : options_(std::move(options)), backoff_({options_.retry_base, options_.retry_max}) {}

PostgresSource::~PostgresSource() { Close(); }

Result<std::unique_ptr<PostgresSource>> PostgresSource::Connect(PostgresSourceOptions options) {
  if (options.schema.dim == 0 || options.schema.model_name.empty()) {
    return Error(errc::invalid_argument, "postgres source: the model's dim and name are needed");
  }
  if (options.claim_max_rows == 0 || options.claim_connections == 0) {
    return Error(errc::invalid_argument,
                 "postgres source: claim_max_rows and claim_connections must be > 0");
  }
  std::unique_ptr<PostgresSource> self(new PostgresSource(std::move(options)));
  const PostgresSourceOptions& o = self->options_;
  auto listen = pg::Connection::Open(o.connection);
  if (!listen) return listen.error();
  self->listen_.conn = std::move(*listen);
  self->lanes_.resize(o.claim_connections);
  for (Lane& lane : self->lanes_) {
    auto conn = pg::Connection::Open(o.connection);
    if (!conn) return conn.error();
    lane.conn = std::move(*conn);
  }
  pg::Connection& c = *self->listen_.conn;
  auto schema = pg::EnsureSchema(c, o.schema);
  if (!schema) return schema.error();
  self->schema_ = std::move(*schema);
  const pg::Schema& s = self->schema_;
  // Re-embedding (pg reembed) also takes rows whose stored vector or progress
  // names another model.
  self->pending_predicate_ =
      "(p.id IS NULL OR p.text_md5 IS DISTINCT FROM md5(t." + s.text_column + ")" +
      (o.reembed_other_models ? " OR p.model_name IS DISTINCT FROM $2::text OR (e.id IS NOT NULL "
                                "AND e.model_name IS DISTINCT FROM $2::text))"
                              : ")");
  std::string dlq = o.schema.embeddings_table + "_dead_letters";
  if (dlq.size() > kMaxIdentifierBytes) dlq.resize(kMaxIdentifierBytes);
  self->dead_letter_table_ = c.Quote(dlq);
  if (auto r = c.Exec("CREATE TABLE IF NOT EXISTS " + self->dead_letter_table_ +
                          " (id text NOT NULL, reason text NOT NULL, stage text, detail text, "
                          "attempts integer, failed_at timestamptz DEFAULT now())",
                      PGRES_COMMAND_OK, "creating the dead-letter table");
      !r) {
    return r.error();
  }
  if (o.capture_deletes) {
    if (Status st = pg::InstallDeleteCapture(c, s, o.schema); !st) {
      GetLogger("postgres")
          ->warn("postgres source: cannot capture deletes on {} ({}); rows deleted there keep "
                 "their vectors in sinks outside PostgreSQL (Qdrant, the store, Kafka)",
                 o.schema.text_table, st.error().message);
    } else {
      self->deletes_table_ = c.Quote(pg::DeletesTable(o.schema.embeddings_table));
    }
  }
  if (Status st = self->Ready(self->listen_, true); !st) return st.error();
  for (Lane& lane : self->lanes_) {
    if (Status st = self->Ready(lane, false); !st) return st.error();
  }
  self->stats_.reconnects = 0;  // the first set-up is not a reconnect
  self->stats_.connected = true;
  self->RefreshCounts();
  auto log = GetLogger("postgres");
  log->info("postgres source: {} -> {} ({} rows pending, {} claims of {} rows at most)",
            o.schema.text_table, o.schema.embeddings_table, self->stats_.pending.load(),
            o.claim_connections, o.claim_max_rows);
  if (self->stats_.listening.load()) {
    log->info("postgres source: listening on '{}' (NOTIFY trigger on {})", s.channel,
              o.schema.text_table);
  } else {
    log->warn(
        "postgres source: no NOTIFY trigger on {}; new rows are found by polling every {} ms "
        "(run `embedstream pg install` to get them at once)",
        o.schema.text_table, o.poll_interval.count());
  }
  return self;
}

Status PostgresSource::Ready(Lane& lane, bool listen) {
  if (Status st = lane.conn->EnsureConnected(); !st) return st;
  if (lane.setup_generation == lane.conn->generation()) return {};
  stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
  if (listen) {
    pg::Connection& c = *lane.conn;
    if (auto r = c.Exec("LISTEN " + c.Quote(schema_.channel), PGRES_COMMAND_OK, "LISTEN"); !r) {
      return r.error();
    }
    auto has = pg::HasNotifyTrigger(c, options_.schema);
    if (!has) return has.error();
    stats_.listening = *has;
    wake_ = true;  // notifications may have been missed while disconnected
  }
  lane.setup_generation = lane.conn->generation();
  return {};
}

Result<std::vector<pipeline::Record>> PostgresSource::ClaimRows(size_t max_records, bool& no_lane) {
  no_lane = false;
  size_t free_lane = lanes_.size();
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (!lanes_[i].busy) {
      free_lane = i;
      break;
    }
  }
  if (free_lane == lanes_.size()) {
    no_lane = true;
    return std::vector<pipeline::Record>{};
  }
  Lane& lane = lanes_[free_lane];
  if (Status st = Ready(lane, false); !st) return st.error();
  pg::Connection& c = *lane.conn;
  auto fail = [&](Error e) -> Result<std::vector<pipeline::Record>> {
    c.RollbackIfNeeded();
    return e;
  };
  const pg::Schema& s = schema_;
  const size_t limit = std::max<size_t>(1, std::min(max_records, options_.claim_max_rows));
  std::vector<std::string> params = {std::to_string(limit)};
  if (options_.reembed_other_models) params.push_back(options_.schema.model_name);
  // The embeddings table only matters to re-embedding (its model_name).
  const std::string join_e = options_.reembed_other_models ? " LEFT JOIN " + s.embeddings_table +
                                                                 " e ON e.id = t." + s.id_column
                                                           : std::string();
  const std::string from = " FROM " + s.text_table + " t LEFT JOIN " + s.progress_table +
                           " p ON p.id = t." + s.id_column + join_e + " WHERE t." + s.text_column +
                           " IS NOT NULL AND " + pending_predicate_;
  if (auto r = c.Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  // Lock up to `limit` pending rows no other claim (here or elsewhere) holds.
  auto locked = c.ExecParams("SELECT t." + s.id_column + "::text" + from +
                                 " LIMIT $1::bigint FOR NO KEY UPDATE OF t SKIP LOCKED",
                             params, PGRES_TUPLES_OK, "claiming pending rows");
  if (!locked) return fail(locked.error());
  const int n_locked = PQntuples(locked->get());
  std::vector<pipeline::Record> out;
  if (n_locked == 0) {
    if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
    return out;
  }
  std::vector<std::string> ids;
  ids.reserve(static_cast<size_t>(n_locked));
  for (int i = 0; i < n_locked; ++i) ids.emplace_back(PQgetvalue(locked->get(), i, 0));
  // Read them again with a fresh snapshot: a row another worker committed
  // between our snapshot and our lock is no longer pending.
  params[0] = ArrayLiteral(ids);
  const std::string metadata = s.has_metadata ? "t.metadata::text" : "NULL::text";
  const std::string created =
      s.has_created_at ? "extract(epoch FROM t.created_at)::float8" : "NULL::float8";
  auto rows = c.ExecParams("SELECT t." + s.id_column + "::text, t." + s.text_column + ", md5(t." +
                               s.text_column + "), " + metadata + ", " + created + from +
                               " AND t." + s.id_column + " = ANY($1::" + s.id_type + "[])",
                           params, PGRES_TUPLES_OK, "reading claimed rows");
  if (!rows) return fail(rows.error());
  PGresult* r = rows->get();
  const int n = PQntuples(r);
  if (n == 0) {
    // Every locked row was finished by another worker meanwhile.
    if (auto done = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !done) return fail(done.error());
    wake_ = true;
    return out;
  }
  Claim claim;
  claim.lane = free_lane;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    pipeline::Record rec;
    rec.id = PQgetvalue(r, i, 0);
    rec.text = PQgetvalue(r, i, 1);
    if (!PQgetisnull(r, i, 3)) rec.metadata_json = PQgetvalue(r, i, 3);
    if (!PQgetisnull(r, i, 4)) rec.input_timestamp = std::strtod(PQgetvalue(r, i, 4), nullptr);
    rec.input_source = "postgres";
    claim.ids.push_back(rec.id);
    claim.md5s.emplace_back(PQgetvalue(r, i, 2));
    out.push_back(std::move(rec));
  }
  lane.busy = true;
  claims_.push_back(std::move(claim));
  stats_.open_claims = static_cast<int64_t>(claims_.size());
  stats_.claimed.fetch_add(out.size(), std::memory_order_relaxed);
  return out;
}

Status PostgresSource::Finish(Claim& claim) {
  pg::Connection& c = *lanes_[claim.lane].conn;
  auto fail = [&](Error e) -> Status {
    c.RollbackIfNeeded();
    return e;
  };
  const pg::Schema& s = schema_;
  auto marked = c.ExecParams(
      "INSERT INTO " + s.progress_table + " (id, text_md5, model_name) SELECT u.id::" + s.id_type +
          ", u.md5, $3::text FROM unnest($1::text[], $2::text[]) AS u(id, md5) ON CONFLICT (id) "
          "DO UPDATE SET text_md5 = excluded.text_md5, model_name = excluded.model_name, done_at "
          "= now()",
      {ArrayLiteral(claim.ids), ArrayLiteral(claim.md5s), options_.schema.model_name},
      PGRES_COMMAND_OK, "marking rows embedded");
  if (!marked) return fail(marked.error());
  if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  return {};
}

void PostgresSource::Ack(std::span<const pipeline::Record* const> records) {
  std::string seqs;  // delete entries every sink has: gone from the deletes table
  size_t rows = 0;
  for (const auto* r : records) {
    if (!r->deleted()) {
      ++rows;
      continue;
    }
    if (!seqs.empty()) seqs += ',';
    seqs += std::to_string(r->handle);
  }
  if (!seqs.empty()) {
    stats_.deletes.fetch_add(records.size() - rows, std::memory_order_relaxed);
    auto r = listen_.conn->ExecParams("DELETE FROM " + deletes_table_ + " WHERE seq = ANY($1::bigint[])",
                                      {"{" + seqs + "}"}, PGRES_COMMAND_OK, "acking deletes");
    if (!r) {
      // Delivered again later (deletes are idempotent).
      GetLogger("postgres")->warn("postgres source: acking deletes failed: {}",
                                  r.error().ToString());
    }
  }
  size_t left = rows;
  while (left > 0 && !claims_.empty()) {
    Claim& claim = claims_.front();
    const size_t take = std::min(left, claim.ids.size() - claim.acked);
    claim.acked += take;
    left -= take;
    if (claim.acked < claim.ids.size()) break;
    if (Status st = Finish(claim); !st) {
      stats_.errors.fetch_add(1, std::memory_order_relaxed);
      GetLogger("postgres")
          ->warn("postgres source: committing {} rows failed ({}); they are pending again",
                 claim.ids.size(), st.error().ToString());
      wake_ = true;  // claim them again
    } else {
      stats_.embedded.fetch_add(claim.ids.size(), std::memory_order_relaxed);
      stats_.batches.fetch_add(1, std::memory_order_relaxed);
    }
    lanes_[claim.lane].busy = false;
    claims_.pop_front();
  }
  stats_.open_claims = static_cast<int64_t>(claims_.size());
}

pipeline::WriteResult PostgresSource::Reject(std::span<const pipeline::DeadLetter> letters) {
  std::vector<std::string> ids, reasons, stages, details, attempts;
  for (const auto& l : letters) {
    ids.push_back(l.record->id);
    reasons.push_back(l.why.reason);
    stages.push_back(l.why.stage);
    details.push_back(l.why.detail);
    attempts.push_back(std::to_string(l.why.attempts));
  }
  std::lock_guard lock(dlq_mu_);
  if (!dlq_conn_) {
    auto conn = pg::Connection::Open(options_.connection);
    if (!conn) return pipeline::WriteResult::Unavailable(conn.error().ToString());
    dlq_conn_ = std::move(*conn);
  }
  pg::Connection& c = *dlq_conn_;
  auto r = c.WithReconnect<pg::ResultPtr>([&] {
    return c.ExecParams("INSERT INTO " + dead_letter_table_ +
                            " (id, reason, stage, detail, attempts) SELECT * FROM "
                            "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])",
                        {ArrayLiteral(ids), ArrayLiteral(reasons), ArrayLiteral(stages),
                         ArrayLiteral(details), ArrayLiteral(attempts)},
                        PGRES_COMMAND_OK, "writing dead letters");
  });
  if (!r) return pipeline::WriteResult::Unavailable(r.error().ToString());
  stats_.dead_letters.fetch_add(letters.size(), std::memory_order_relaxed);
  return pipeline::WriteResult::Ok();
}

pipeline::ReadBatch PostgresSource::Read(size_t max_records, std::chrono::milliseconds wait) {
  pipeline::ReadBatch out;
  auto now = Clock::now();
  if (now - last_count_ >= options_.stats_interval) RefreshCounts();
  if (paused_) {
    WaitForNotify(wait);
    return out;
  }
  if (now < retry_at_) {
    WaitForNotify(std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now)));
    return out;
  }
  if (!wake_ && options_.finite && claims_.empty()) {
    out.end = true;  // the last claim found nothing, and every claim is done
    return out;
  }
  if (!wake_) {
    if (now >= next_poll_) {
      stats_.polls.fetch_add(1, std::memory_order_relaxed);
      wake_ = true;
    } else {
      WaitForNotify(std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(next_poll_ - now)));
      if (!wake_) return out;
    }
  }
  if (!deletes_table_.empty()) {
    if (Status st = ReadDeletes(max_records, out.records); !st) {
      GetLogger("postgres")->warn("postgres source: reading deletes: {}", st.error().ToString());
    }
    if (!out.records.empty()) return out;  // claim at the next Read
  }
  bool no_lane = false;
  auto rows = ClaimRows(max_records, no_lane);
  now = Clock::now();
  if (!rows) {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    stats_.connected = false;
    const auto pause = backoff_.Next();
    retry_at_ = now + pause;
    GetLogger("postgres")
        ->error("postgres source: {}; retrying in {} ms", rows.error().ToString(), pause.count());
    return out;
  }
  if (!stats_.connected.exchange(true)) GetLogger("postgres")->info("postgres source: connected");
  backoff_.Reset();
  if (no_lane) {
    // Every connection holds a claim in flight: acks free them.
    WaitForNotify(wait);
    return out;
  }
  if (rows->empty()) {
    wake_ = false;
    next_poll_ = now + options_.poll_interval;
    out.end = options_.finite && claims_.empty();
    return out;
  }
  wake_ = true;  // more may be pending: claim again at the next Read
  out.records = std::move(*rows);
  return out;
}

Status PostgresSource::ReadDeletes(size_t max_records, std::vector<pipeline::Record>& out) {
  pg::Connection& c = *listen_.conn;
  if (Status st = c.EnsureConnected(); !st) return st;
  const pg::Schema& s = schema_;
  // Entries of ids back in the table: nothing to delete (the new row is
  // embedded and replaces what the sinks hold).
  auto back = c.Exec("DELETE FROM " + deletes_table_ + " d USING " + s.text_table + " t WHERE t." +
                         s.id_column + "::text = d.id",
                     PGRES_COMMAND_OK, "dropping deletes of ids back in the table");
  if (!back) return back.error();
  auto r = c.ExecParams("SELECT seq, id FROM " + deletes_table_ +
                            " WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint",
                        {std::to_string(deletes_seq_), std::to_string(max_records)},
                        PGRES_TUPLES_OK, "reading deletes");
  if (!r) return r.error();
  PGresult* res = r->get();
  for (int i = 0; i < PQntuples(res); ++i) {
    pipeline::Record d;
    d.op = pipeline::Record::Op::kDelete;
    d.handle = std::strtoull(PQgetvalue(res, i, 0), nullptr, 10);
    d.id = PQgetvalue(res, i, 1);
    d.event_key = d.id;
    d.input_source = "postgres";
    deletes_seq_ = std::max<int64_t>(deletes_seq_, static_cast<int64_t>(d.handle));
    out.push_back(std::move(d));
  }
  return {};
}

void PostgresSource::WaitForNotify(std::chrono::milliseconds d) {
  if (d.count() <= 0) return;
  if (listen_.conn->broken() || listen_.setup_generation != listen_.conn->generation()) {
    if (Status st = Ready(listen_, true); !st) {
      std::this_thread::sleep_for(std::min(d, std::chrono::milliseconds(100)));
      return;
    }
  }
  // Notifications that came in during a query (Count) wait in libpq, not
  // on the socket: take those first.
  auto queued = listen_.conn->TakeNotifications();
  if (queued && !queued->empty()) {
    stats_.notifications.fetch_add(queued->size(), std::memory_order_relaxed);
    wake_ = true;
    return;
  }
  pollfd pfd{.fd = listen_.conn->socket(), .events = POLLIN, .revents = 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(d.count()));
  if (ready <= 0) return;
  auto got = listen_.conn->TakeNotifications();
  if (!got) return;  // the link broke: reconnected at the next wait
  if (!got->empty()) {
    stats_.notifications.fetch_add(got->size(), std::memory_order_relaxed);
    wake_ = true;
  }
}

Result<PendingCounts> PostgresSource::Count() {
  const pg::Schema& s = schema_;
  const std::string age =
      s.has_created_at ? "extract(epoch FROM now() - min(t.created_at) FILTER (WHERE pending))"
                       : "NULL::double precision";
  std::vector<std::string> params = {options_.schema.model_name};
  // The predicate refers to $2 in reembed mode; bind the model name to both.
  if (options_.reembed_other_models) params.push_back(options_.schema.model_name);
  const std::string created =
      s.has_created_at ? "t.created_at AS created_at" : "NULL::timestamptz AS created_at";
  const std::string query =
      "SELECT count(*) FILTER (WHERE pending), coalesce(" + age +
      ", 0), count(e_id) FILTER (WHERE e_emb), count(e_id) FILTER (WHERE e_emb AND e_model IS "
      "DISTINCT FROM $1::text) FROM (SELECT " +
      created + ", e.id AS e_id, e.embedding IS NOT NULL AS e_emb, e.model_name AS e_model, " +
      pending_predicate_ + " AS pending FROM " + s.text_table + " t LEFT JOIN " + s.progress_table +
      " p ON p.id = t." + s.id_column + " LEFT JOIN " + s.embeddings_table + " e ON e.id = t." +
      s.id_column + " WHERE t." + s.text_column + " IS NOT NULL) t";
  pg::Connection& c = *listen_.conn;
  auto r = c.WithReconnect<pg::ResultPtr>(
      [&] { return c.ExecParams(query, params, PGRES_TUPLES_OK, "counting pending rows"); });
  if (!r) return r.error();
  PGresult* res = r->get();
  PendingCounts out;
  out.pending = std::strtoull(PQgetvalue(res, 0, 0), nullptr, 10);
  out.oldest_pending_age_s = std::strtod(PQgetvalue(res, 0, 1), nullptr);
  out.embedded = std::strtoull(PQgetvalue(res, 0, 2), nullptr, 10);
  out.other_model = std::strtoull(PQgetvalue(res, 0, 3), nullptr, 10);
  return out;
}

void PostgresSource::RefreshCounts() {
  last_count_ = Clock::now();
  auto counts = Count();
  if (!counts) {
    GetLogger("postgres")->debug("postgres source: {}", counts.error().ToString());
    return;
  }
  stats_.pending = static_cast<int64_t>(counts->pending);
  stats_.oldest_pending_age_s = counts->oldest_pending_age_s;
}

void PostgresSource::Close() {
  for (auto& claim : claims_) {
    Lane& lane = lanes_[claim.lane];
    lane.conn->RollbackIfNeeded();
    lane.busy = false;
  }
  claims_.clear();
  stats_.open_claims = 0;
}

}  // namespace embedstream::sources
