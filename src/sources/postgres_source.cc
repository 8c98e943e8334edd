#include "sources/postgres_source.h"

#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "core/logging.h"
#include "pipeline/backoff.h"

namespace embedstream::sources {
namespace {

using Clock = std::chrono::steady_clock;

// Session-local staging table for COPY; emptied at each commit.
constexpr const char* kStagingTable = "es_pg_source_staging";
constexpr size_t kMinClaimRows = 8;

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

// Sleeps up to `d` in short slices; false when `stop` was set.
bool SleepUnlessStopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + d;
  while (!stop.load()) {
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(100)));
  }
  return false;
}

struct Claimed {
  std::string id;
  std::string text;
  std::string md5;
  std::string metadata;  // JSON, or empty for NULL
};

}  // namespace

PostgresSource::PostgresSource(PostgresSourceOptions options, model::SentenceEncoder& encoder)
    : options_(std::move(options)), encoder_(encoder) {}

PostgresSource::~PostgresSource() = default;

Result<std::unique_ptr<PostgresSource>> PostgresSource::Connect(PostgresSourceOptions options,
                                                                model::SentenceEncoder& encoder) {
  options.schema.dim = encoder.dim();
  if (options.schema.model_name.empty()) options.schema.model_name = encoder.info().model_name;
  if (options.batch_max_rows == 0 || options.batch_max_tokens == 0) {
    return Error(errc::invalid_argument, "postgres source: batch sizes must be > 0");
  }
  std::unique_ptr<PostgresSource> self(new PostgresSource(std::move(options), encoder));
  for (Lane& lane : self->lanes_) {
    auto conn = pg::Connection::Open(self->options_.connection);
    if (!conn) return conn.error();
    lane.conn = std::move(*conn);
  }
  auto schema = pg::EnsureSchema(*self->lanes_[0].conn, self->options_.schema);
  if (!schema) return schema.error();
  self->schema_ = std::move(*schema);
  const pg::Schema& s = self->schema_;
  self->pending_predicate_ =
      "(e.id IS NULL OR e.text_md5 IS DISTINCT FROM md5(t." + s.text_column + ")" +
      (self->options_.reembed_other_models ? " OR e.model_name IS DISTINCT FROM $2::text)" : ")");
  for (size_t i = 0; i < 2; ++i) {
    if (Status st = self->Setup(self->lanes_[i], i == 0); !st) return st.error();
  }
  self->stats_.connected = true;
  return self;
}

Status PostgresSource::Setup(Lane& lane, bool listen) {
  pg::Connection& c = *lane.conn;
  if (auto r = c.Exec(std::string("CREATE TEMP TABLE IF NOT EXISTS ") + kStagingTable +
                          " (id text, md5 text, metadata jsonb, embedding vector) ON COMMIT "
                          "DELETE ROWS",
                      PGRES_COMMAND_OK, "creating the staging table");
      !r) {
    return r.error();
  }
  if (listen) {
    if (auto r = c.Exec("LISTEN " + c.Quote(schema_.channel), PGRES_COMMAND_OK, "LISTEN"); !r) {
      return r.error();
    }
    auto has = pg::HasNotifyTrigger(c, options_.schema);
    if (!has) return has.error();
    stats_.listening = *has;
  }
  lane.setup_generation = c.generation();
  return {};
}

Status PostgresSource::Ready(Lane& lane, bool listen) {
  if (Status st = lane.conn->EnsureConnected(); !st) return st;
  if (lane.setup_generation == lane.conn->generation()) return {};
  stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
  return Setup(lane, listen);
}

Result<PostgresSource::Prepared> PostgresSource::ClaimAndEmbed(pg::Connection& c) {
  const pg::Schema& s = schema_;
  auto fail = [&](Error e) -> Result<Prepared> {
    c.RollbackIfNeeded();
    return e;
  };
  const size_t limit = std::clamp<size_t>(
      static_cast<size_t>(static_cast<double>(options_.batch_max_tokens) / avg_tokens_),
      kMinClaimRows, options_.batch_max_rows);
  std::vector<std::string> params = {std::to_string(limit)};
  if (options_.reembed_other_models) params.push_back(options_.schema.model_name);
  const std::string from = " FROM " + s.text_table + " t LEFT JOIN " + s.embeddings_table +
                           " e ON e.id = t." + s.id_column + " WHERE t." + s.text_column +
                           " IS NOT NULL AND " + pending_predicate_;
  const auto t_begin = Clock::now();
  if (auto r = c.Exec("BEGIN", PGRES_COMMAND_OK, "BEGIN"); !r) return fail(r.error());
  // Lock up to `limit` pending rows no other worker (or lane) holds.
  auto locked = c.ExecParams(
      "SELECT t." + s.id_column + "::text" + from + " LIMIT $1::bigint FOR UPDATE OF t SKIP LOCKED",
      params, PGRES_TUPLES_OK, "claiming pending rows");
  if (!locked) return fail(locked.error());
  const int n_locked = PQntuples(locked->get());
  Prepared out;
  if (n_locked == 0) {
    if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
    return out;
  }
  out.claimed = static_cast<size_t>(n_locked);
  std::vector<std::string> ids;
  ids.reserve(out.claimed);
  for (int i = 0; i < n_locked; ++i) ids.emplace_back(PQgetvalue(locked->get(), i, 0));
  // Read them again with a fresh snapshot: a row another worker committed
  // between our snapshot and our lock is no longer pending.
  params[0] = ArrayLiteral(ids);
  const std::string metadata = s.has_metadata ? "t.metadata::text" : "NULL::text";
  auto rows = c.ExecParams("SELECT t." + s.id_column + "::text, t." + s.text_column + ", md5(t." +
                               s.text_column + "), " + metadata + from + " AND t." + s.id_column +
                               " = ANY($1::" + s.id_type + "[])",
                           params, PGRES_TUPLES_OK, "reading claimed rows");
  if (!rows) return fail(rows.error());
  std::vector<Claimed> claimed;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    PGresult* r = rows->get();
    claimed.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                       PQgetisnull(r, i, 3) ? std::string() : std::string(PQgetvalue(r, i, 3))});
  }
  const auto t_claimed = Clock::now();
  // Tokenize and cut at the token budget (at least one row); the rest stay
  // pending and are released at COMMIT.
  std::vector<std::vector<int32_t>> seqs;
  size_t tokens = 0;
  for (const Claimed& row : claimed) {
    auto ids_of = encoder_.Tokenize(row.text);
    if (!seqs.empty() && tokens + ids_of.size() > options_.batch_max_tokens) break;
    tokens += ids_of.size();
    seqs.push_back(std::move(ids_of));
  }
  out.rows = seqs.size();
  if (out.rows > 0) {
    avg_tokens_ = 0.7 * avg_tokens_ + 0.3 * static_cast<double>(tokens) / out.rows;
    const size_t dim = encoder_.dim();
    std::vector<float> vectors(out.rows * dim);
    encoder_.EmbedTokens(seqs, vectors.data());
    for (size_t i = 0; i < out.rows; ++i) {
      pg::AppendCopyText(out.copy, claimed[i].id);
      out.copy += '\t';
      out.copy += claimed[i].md5;
      out.copy += '\t';
      if (claimed[i].metadata.empty()) {
        out.copy += "\\N";
      } else {
        pg::AppendCopyText(out.copy, claimed[i].metadata);
      }
      out.copy += '\t';
      pg::AppendVector(out.copy, {vectors.data() + i * dim, dim});
      out.copy += '\n';
    }
  }
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  out.claim_ms = ms(t_claimed - t_begin);
  out.embed_ms = ms(Clock::now() - t_claimed);
  return out;
}

Result<size_t> PostgresSource::Write(pg::Connection& c, const Prepared& p) {
  const pg::Schema& s = schema_;
  auto fail = [&](Error e) -> Result<size_t> {
    c.RollbackIfNeeded();
    return e;
  };
  const auto t0 = Clock::now();
  if (p.rows > 0) {
    if (Status st = c.CopyIn(
            std::string("COPY ") + kStagingTable + " (id, md5, metadata, embedding) FROM STDIN",
            p.copy, "COPY");
        !st) {
      return fail(st.error());
    }
    auto written = c.ExecParams(
        "INSERT INTO " + s.embeddings_table +
            " AS e (id, embedding, model_name, metadata, text_md5) SELECT id::" + s.id_type +
            ", embedding, $1::text, metadata, md5 FROM " + kStagingTable +
            " ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model_name = "
            "excluded.model_name, metadata = excluded.metadata, text_md5 = excluded.text_md5",
        {options_.schema.model_name}, PGRES_COMMAND_OK, "writing embeddings");
    if (!written) return fail(written.error());
  }
  if (auto r = c.Exec("COMMIT", PGRES_COMMAND_OK, "COMMIT"); !r) return fail(r.error());
  GetLogger("postgres")
      ->debug(
          "postgres source: round of {} rows ({} claimed): claim {:.1f} ms, embed {:.1f} ms, write "
          "{:.1f} ms",
          p.rows, p.claimed, p.claim_ms, p.embed_ms,
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  stats_.embedded.fetch_add(p.rows, std::memory_order_relaxed);
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  return p.rows;
}

Result<size_t> PostgresSource::FinishWrite() {
  if (!writing_) return size_t{0};
  auto r = writing_->get();
  writing_.reset();
  return r;
}

Result<size_t> PostgresSource::Step() {
  Lane& lane = lanes_[next_];
  Result<Prepared> prepared = Error(errc::internal, "not run");
  if (Status st = Ready(lane, next_ == 0); !st) {
    prepared = st.error();
  } else {
    prepared = ClaimAndEmbed(*lane.conn);  // meanwhile the other lane writes
  }
  auto previous = FinishWrite();
  if (!prepared) return prepared.error();  // its round rolled back: pending again
  if (!previous) {
    // The other lane's round rolled back (its rows are pending again); this
    // round is fine: write it before reporting.
    if (auto mine = Write(*lane.conn, *prepared); !mine) {
      GetLogger("postgres")->debug("postgres source: {}", mine.error().ToString());
    }
    return previous.error();
  }
  if (prepared->claimed == 0) return *previous;  // committed; nothing left to claim
  // The write runs on its own thread while the next round claims and embeds
  // on the other lane.
  writing_ = std::async(std::launch::async,
                        [this, &lane, batch = std::move(*prepared)]() -> Result<size_t> {
                          return Write(*lane.conn, batch);
                        });
  next_ ^= 1;
  // A round that claimed rows but embedded none (another worker finished
  // them meanwhile) still made progress: report at least 1 so callers go on.
  return std::max<size_t>(*previous, 1);
}

Result<size_t> PostgresSource::RunOnce() {
  auto n = Step();
  auto last = FinishWrite();
  if (!n) return n.error();
  if (!last) return last.error();
  return *n + *last;
}

Result<size_t> PostgresSource::Drain(const std::atomic<bool>* stop) {
  const uint64_t before = stats_.embedded.load();
  Status failed;
  while (stop == nullptr || !stop->load()) {
    auto n = Step();
    if (!n) {
      failed = n.error();
      break;
    }
    if (*n == 0) break;
  }
  auto last = FinishWrite();
  if (!failed) return failed.error();
  if (!last) return last.error();
  return static_cast<size_t>(stats_.embedded.load() - before);
}

Result<PendingCounts> PostgresSource::Count() {
  const pg::Schema& s = schema_;
  const std::string age =
      s.has_created_at ? "extract(epoch FROM now() - min(t.created_at) FILTER (WHERE pending))"
                       : "NULL::double precision";
  std::vector<std::string> params = {options_.schema.model_name};
  // The predicate refers to $2 in reembed mode; bind the model name to both.
  if (options_.reembed_other_models) params.push_back(options_.schema.model_name);
  const std::string sql =
      "SELECT count(*) FILTER (WHERE pending), coalesce(" + age +
      ", 0), count(e_id), count(e_id) FILTER (WHERE e_model IS DISTINCT FROM $1::text) FROM "
      "(SELECT t.created_at AS created_at, e.id AS e_id, e.model_name AS e_model, " +
      pending_predicate_ + " AS pending FROM " + s.text_table + " t LEFT JOIN " +
      s.embeddings_table + " e ON e.id = t." + s.id_column + " WHERE t." + s.text_column +
      " IS NOT NULL) t";
  std::string query = sql;
  if (!s.has_created_at) {
    // No created_at column: select a NULL in its place.
    const std::string col = "t.created_at AS created_at";
    query.replace(query.find(col), col.size(), "NULL::timestamptz AS created_at");
  }
  // The lane the next round claims on: no write runs there.
  pg::Connection& c = *lanes_[next_].conn;
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

void PostgresSource::Wait(const std::atomic<bool>& stop) {
  const auto until = Clock::now() + options_.poll_interval;
  while (!stop.load()) {
    const auto now = Clock::now();
    if (now >= until) {
      stats_.polls.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const auto slice = std::min<Clock::duration>(until - now, std::chrono::milliseconds(200));
    pg::Connection& listener = *lanes_[0].conn;  // the lane that LISTENs
    pollfd pfd{.fd = listener.socket(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(
        &pfd, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(slice).count()));
    if (ready < 0 && errno != EINTR) return;
    if (ready <= 0) continue;
    auto got = listener.TakeNotifications();
    if (!got) return;  // the link broke: the next round reconnects
    if (!got->empty()) {
      stats_.notifications.fetch_add(got->size(), std::memory_order_relaxed);
      return;
    }
  }
}

void PostgresSource::Run(const std::atomic<bool>& stop) {
  auto log = GetLogger("postgres");
  pipeline::Backoff backoff({options_.retry_base, options_.retry_max});
  RefreshCounts();
  log->info("postgres source: {} -> {} ({} rows pending)", options_.schema.text_table,
            options_.schema.embeddings_table, stats_.pending.load());
  if (stats_.listening.load()) {
    log->info("postgres source: listening on '{}' (NOTIFY trigger on {})", schema_.channel,
              options_.schema.text_table);
  } else {
    log->warn(
        "postgres source: no NOTIFY trigger on {}; new rows are found by polling every {} ms "
        "(run `embedstream pg install` to get them at once)",
        options_.schema.text_table, options_.poll_interval.count());
  }
  while (!stop.load()) {
    auto n = Step();
    if (!n) {
      stats_.errors.fetch_add(1, std::memory_order_relaxed);
      stats_.connected = !lanes_[0].conn->broken() && !lanes_[1].conn->broken();
      const auto pause = backoff.Next();
      log->error("postgres source: {}; retrying in {} ms", n.error().ToString(), pause.count());
      SleepUnlessStopped(pause, stop);
      continue;
    }
    if (!stats_.connected.exchange(true)) log->info("postgres source: connected again");
    backoff.Reset();
    if (*n > 0) {
      if (Clock::now() - last_count_ >= options_.stats_interval) RefreshCounts();
      continue;
    }
    RefreshCounts();
    Wait(stop);
  }
  if (auto last = FinishWrite(); !last) {
    log->warn("postgres source: last round not written ({}); its rows stay pending",
              last.error().ToString());
  }
  log->info("postgres source: stopped ({} rows embedded)", stats_.embedded.load());
}

}  // namespace embedstream::sources
