// bench_postgres: can PostgreSQL + pgvector keep up with the encoder (issue 5)?
// In one run, on the same texts: the encoder's throughput (texts/s), then
// PostgresSink::Upsert rows/s with those vectors — (i) the HNSW index
// maintained, (ii) no index while loading and CREATE INDEX after, (iii) a
// replay — and the CQRS source's catch-up rows/s (the postgres pipeline,
// embedding included). Every figure is printed as a ratio to the encoder.
// Target: the sink is never the bottleneck, i.e. sink rows/s >= 3x encoder.
//
//   bench/postgres/run.sh [flags]        # a throwaway server on a free port
//   build/release/bench/bench_postgres [--texts N] [--batches 256,1024] [--repeat R]
//       [--explore] [--threads T] [--model-dir D] [--no-catchup] [--keep-tables]
//
// Connects with DATABASE_HOST/PORT/NAME/USER/PASSWORD (eval "$(scripts/pg.sh
// env --port P)"); its tables are bench_pg_* and are dropped at the end.

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/logging.h"
#include "core/uuid.h"
#include "encoder/corpus.h"
#include "model/sentence_encoder.h"
#include "pg/connection.h"
#include "pg/schema.h"
#include "pipeline/encoder_embedder.h"
#include "pipeline/runtime.h"
#include "sinks/pipeline_sinks.h"
#include "sinks/postgres_sink.h"
#include "sources/postgres_source.h"

namespace es = embedstream;

namespace {

constexpr const char* kTextTable = "bench_pg_text";
constexpr const char* kEmbeddingsTable = "bench_pg_embeddings";
constexpr double kTargetRatio = 3.0;

struct Args {
  std::string model_dir;
  int threads = 0;
  size_t texts = 4096;
  std::vector<size_t> batches = {256, 1024};
  int repeat = 1;
  int encoder_repeat = 2;
  bool explore = false;
  bool catchup = true;
  bool keep_tables = false;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void Die(const std::string& what, const es::Error& e) {
  std::fprintf(stderr, "bench_postgres: %s: %s\n", what.c_str(), e.ToString().c_str());
  std::exit(1);
}

std::vector<size_t> ParseList(const std::string& s) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    const long v = std::atol(s.substr(pos, end - pos).c_str());
    if (v > 0) out.push_back(static_cast<size_t>(v));
    pos = end + 1;
  }
  return out;
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (s == "--model-dir") {
      a.model_dir = next();
    } else if (s == "--threads") {
      a.threads = std::atoi(next().c_str());
    } else if (s == "--texts") {
      a.texts = static_cast<size_t>(std::max(1L, std::atol(next().c_str())));
    } else if (s == "--batches") {
      a.batches = ParseList(next());
    } else if (s == "--repeat") {
      a.repeat = std::max(1, std::atoi(next().c_str()));
    } else if (s == "--encoder-repeat") {
      a.encoder_repeat = std::max(1, std::atoi(next().c_str()));
    } else if (s == "--explore") {
      a.explore = true;
    } else if (s == "--no-catchup") {
      a.catchup = false;
    } else if (s == "--keep-tables") {
      a.keep_tables = true;
    } else {
      std::fprintf(stderr,
                   "usage: bench_postgres [--texts N] [--batches 256,1024] [--repeat R] "
                   "[--encoder-repeat R] [--explore] [--threads T] [--model-dir D] "
                   "[--no-catchup] [--keep-tables]\n");
      std::exit(2);
    }
  }
  if (a.batches.empty()) a.batches = {256};
  if (a.model_dir.empty()) {
    const char* env = std::getenv("EMBEDSTREAM_MODEL_DIR");
    a.model_dir = env != nullptr ? env : std::string(ES_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
  }
  if (a.threads <= 0) a.threads = omp_get_num_procs();
  return a;
}

// Chat-like lengths: mostly short messages, a tail of long ones (the longest
// bucket is cut at the model's max_seq_length). Deterministic.
std::vector<std::string> MakeMixedCorpus(size_t count) {
  const struct {
    double share;
    size_t words;
  } buckets[] = {{0.40, 6}, {0.30, 16}, {0.20, 40}, {0.08, 100}, {0.02, 250}};
  std::vector<std::string> out;
  out.reserve(count);
  uint32_t seed = 42;
  for (const auto& b : buckets) {
    const size_t n = (&b == &buckets[std::size(buckets) - 1])
                         ? count - out.size()
                         : static_cast<size_t>(b.share * static_cast<double>(count) + 0.5);
    for (auto& t : es::bench::MakeCorpus(std::min(n, count - out.size()), b.words, seed++)) {
      out.push_back(std::move(t));
    }
  }
  std::shuffle(out.begin(), out.end(), std::mt19937(7));
  return out;
}

void PrintTokenDistribution(const std::vector<size_t>& tokens, size_t max_seq) {
  std::vector<size_t> s = tokens;
  std::sort(s.begin(), s.end());
  size_t total = 0, truncated = 0;
  for (size_t t : s) {
    total += t;
    if (t >= max_seq) ++truncated;
  }
  auto pct = [&](double p) {
    return s[std::min(s.size() - 1, static_cast<size_t>(p * static_cast<double>(s.size())))];
  };
  std::printf(
      "texts: %zu, tokens per text (with [CLS]/[SEP]): min %zu, p10 %zu, p50 %zu, p90 %zu, p99 "
      "%zu, max %zu, mean %.1f; %zu at max_seq_length %zu\n",
      s.size(), s.front(), pct(0.10), pct(0.50), pct(0.90), pct(0.99), s.back(),
      static_cast<double>(total) / static_cast<double>(s.size()), truncated, max_seq);
}

// ---------------------------------------------------------------- admin SQL

std::unique_ptr<es::pg::Connection> OpenAdmin() {
  auto conn = es::pg::Connection::Open(es::pg::ConnectionOptions::FromEnv());
  if (!conn)
    Die("connecting (run scripts/pg.sh start and eval \"$(scripts/pg.sh env)\")", conn.error());
  return std::move(*conn);
}

void Exec(es::pg::Connection& c, const std::string& sql) {
  if (auto r = c.Exec(sql, PGRES_COMMAND_OK, sql); !r) Die(sql, r.error());
}

std::string QueryOne(es::pg::Connection& c, const std::string& sql) {
  auto r = c.Exec(sql, PGRES_TUPLES_OK, sql);
  if (!r) Die(sql, r.error());
  return PQntuples(r->get()) > 0 ? PQgetvalue(r->get(), 0, 0) : "";
}

// The progress table (<emb>_progress, the PostgreSQL source's md5 of each row
// every sink has) goes too: DROP ... CASCADE only drops its foreign key, and a
// progress table left from the sink cases marks every catch-up row as done
// (the catch-up then drained 0 rows in 0.00 s).
void DropTables(es::pg::Connection& c, const std::string& text, const std::string& emb) {
  Exec(c, "DROP TABLE IF EXISTS " + c.Quote(es::pg::ProgressTable(emb)) + ", " + c.Quote(emb) +
              ", " + c.Quote(text) + " CASCADE");
}

// The index PostgresSink/EnsureSchema creates, by its name.
std::string IndexName(es::pg::Connection& c, const std::string& emb) {
  return c.Quote(emb + "_embedding_hnsw_idx");
}

std::string CreateIndexSql(es::pg::Connection& c, const std::string& emb, const std::string& with) {
  std::string sql = "CREATE INDEX " + IndexName(c, emb) + " ON " + c.Quote(emb) +
                    " USING hnsw (embedding vector_cosine_ops)";
  if (!with.empty()) sql += " WITH (" + with + ")";
  return sql;
}

// ---------------------------------------------------------------- sink cases

// One way of loading the rows, e.g. SinkCase("HNSW", 1024).Writers(2).IndexWith("m = 8").
struct SinkCase {
  SinkCase(std::string label_in, size_t batch_in) : label(std::move(label_in)), batch(batch_in) {}
  SinkCase& Writers(int n) { return writers = n, *this; }
  SinkCase& IndexWith(std::string w) { return index_with = std::move(w), *this; }
  SinkCase& PgOptions(std::string o) { return pg_options = std::move(o), *this; }
  SinkCase& IndexAfter() { return index_after = true, *this; }
  SinkCase& Replay() { return replay = true, *this; }

  std::string label;
  size_t batch;
  int writers = 1;           // sinks (connections) writing disjoint slices at once
  std::string index_with;    // HNSW options, e.g. "m = 16, ef_construction = 32"; "" defaults
  std::string pg_options;    // PGOPTIONS for the sink's connections, e.g. -c synchronous_commit=off
  bool index_after = false;  // load with no index, CREATE INDEX after (timed apart)
  bool replay = false;       // then upsert the same rows again (changes nothing)
};

struct SinkRun {
  double load_s = 0;
  double build_s = 0;
  double replay_s = 0;
  double wal_mb = 0;  // WAL written by the load (and the index build)
};

struct SinkResult {
  SinkCase c;
  std::vector<SinkRun> runs;
};

// Best of the repeats (the least disturbed by the other tenant of the cores).
double Best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Worst(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

SinkRun RunSinkCase(const SinkCase& sc, const std::vector<es::sinks::PgRow>& rows,
                    es::pg::Connection& admin) {
  DropTables(admin, kTextTable, kEmbeddingsTable);
  auto opts = es::sinks::PostgresSinkOptions::FromEnv();
  opts.text_table = kTextTable;
  opts.embeddings_table = kEmbeddingsTable;
  opts.dim = rows.front().vector.size();
  const char* old_pgoptions = std::getenv("PGOPTIONS");
  const std::string saved = old_pgoptions != nullptr ? old_pgoptions : "";
  if (!sc.pg_options.empty()) ::setenv("PGOPTIONS", sc.pg_options.c_str(), 1);
  std::vector<std::unique_ptr<es::sinks::PostgresSink>> sinks;
  for (int w = 0; w < sc.writers; ++w) {
    auto s = es::sinks::PostgresSink::Connect(opts);
    if (!s) Die("PostgresSink::Connect", s.error());
    sinks.push_back(std::move(*s));
  }
  if (old_pgoptions != nullptr) {
    ::setenv("PGOPTIONS", saved.c_str(), 1);
  } else {
    ::unsetenv("PGOPTIONS");
  }
  if (sc.index_after || !sc.index_with.empty()) {
    Exec(admin, "DROP INDEX " + IndexName(admin, kEmbeddingsTable));
    if (!sc.index_after) Exec(admin, CreateIndexSql(admin, kEmbeddingsTable, sc.index_with));
  }
  // Every case starts right after a checkpoint: the same full-page writes.
  Exec(admin, "CHECKPOINT");

  SinkRun run;
  const std::string lsn0 = QueryOne(admin, "SELECT pg_current_wal_insert_lsn()");
  std::vector<std::string> errors(sinks.size());
  auto load = [&](size_t w) {
    const size_t begin = rows.size() * w / sinks.size();
    const size_t end = rows.size() * (w + 1) / sinks.size();
    for (size_t i = begin; i < end; i += sc.batch) {
      const size_t n = std::min(sc.batch, end - i);
      auto r = sinks[w]->Upsert(std::span<const es::sinks::PgRow>(rows.data() + i, n));
      if (!r) {
        errors[w] = r.error().ToString();
        return;
      }
    }
  };
  double t0 = Now();
  if (sinks.size() == 1) {
    load(0);
  } else {
    std::vector<std::thread> threads;
    for (size_t w = 0; w < sinks.size(); ++w) threads.emplace_back(load, w);
    for (auto& t : threads) t.join();
  }
  run.load_s = Now() - t0;
  for (const auto& e : errors) {
    if (!e.empty()) Die("Upsert (" + sc.label + ")", es::Error(es::errc::internal, e));
  }
  if (sc.index_after) {
    t0 = Now();
    Exec(admin, CreateIndexSql(admin, kEmbeddingsTable, sc.index_with));
    run.build_s = Now() - t0;
  }
  auto wal = admin.ExecParams("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)",
                              {lsn0}, PGRES_TUPLES_OK, "WAL position");
  if (!wal) Die("WAL position", wal.error());
  run.wal_mb = std::atof(PQgetvalue(wal->get(), 0, 0)) / 1e6;
  const std::string count =
      QueryOne(admin, "SELECT count(*) FROM " + admin.Quote(kEmbeddingsTable));
  if (count != std::to_string(rows.size())) {
    Die("checking " + sc.label,
        es::Error(es::errc::internal, count + " rows stored, want " + std::to_string(rows.size())));
  }
  if (sc.replay) {
    size_t changed = 0;
    t0 = Now();
    for (size_t i = 0; i < rows.size(); i += sc.batch) {
      const size_t n = std::min(sc.batch, rows.size() - i);
      auto r = sinks[0]->Upsert(std::span<const es::sinks::PgRow>(rows.data() + i, n));
      if (!r) Die("replay Upsert", r.error());
      changed += *r;
    }
    run.replay_s = Now() - t0;
    if (changed != 0) std::fprintf(stderr, "warning: the replay changed %zu rows\n", changed);
  }
  return run;
}

// Recall@10 of the HNSW index against an exact scan, for `queries`.
double MeasureRecall(es::pg::Connection& admin, const std::vector<std::vector<float>>& queries) {
  const std::string sql_head =
      "SELECT string_agg(id::text, ',' ORDER BY d) FROM (SELECT id, "
      "embedding <=> $1::vector AS d FROM " +
      admin.Quote(kEmbeddingsTable) + " ORDER BY d LIMIT 10) s";
  auto ids = [&](const std::string& q) {
    auto r = admin.ExecParams(sql_head, {q}, PGRES_TUPLES_OK, "recall query");
    if (!r) Die("recall query", r.error());
    std::vector<std::string> out;
    std::string all = PQgetvalue(r->get(), 0, 0);
    size_t pos = 0;
    while (pos < all.size()) {
      size_t end = all.find(',', pos);
      if (end == std::string::npos) end = all.size();
      out.push_back(all.substr(pos, end - pos));
      pos = end + 1;
    }
    return out;
  };
  size_t hit = 0, want = 0;
  for (const auto& qv : queries) {
    std::string q;
    es::pg::AppendVector(q, qv);
    Exec(admin, "SET enable_indexscan = on");
    const auto approx = ids(q);
    Exec(admin, "SET enable_indexscan = off");
    const auto exact = ids(q);
    for (const auto& e : exact) {
      if (std::find(approx.begin(), approx.end(), e) != approx.end()) ++hit;
    }
    want += exact.size();
  }
  Exec(admin, "RESET enable_indexscan");
  return want == 0 ? 0 : static_cast<double>(hit) / static_cast<double>(want);
}

// ---------------------------------------------------------------- catch-up

struct CatchupRun {
  double insert_s = 0;   // COPY of the texts into the text table
  double drain_s = 0;    // the postgres pipeline: claim -> embed -> pgvector sink -> mark,
                         // from Run() to the last row's ack
  double run_s = 0;      // Run() to its return: a finite source ends at its next poll
                         // after the last ack (up to poll_interval later)
  double encoder_s = 0;  // time inside Embed, summed over the batches
  size_t batches = 0;
  size_t drained = 0;
};

// The time of the last ack and the encoder's time, from the runtime's listener calls.
class CatchupListener : public es::pipeline::Listener {
 public:
  void OnAcked(const es::pipeline::Record&) override {
    last_ack_.store(Now(), std::memory_order_relaxed);
  }
  void OnBatch(size_t, size_t, std::chrono::duration<double> took) override {
    encoder_s_ += took.count();  // the encoder thread only
    ++batches_;
  }
  double last_ack() const { return last_ack_.load(std::memory_order_relaxed); }
  double encoder_s() const { return encoder_s_; }
  size_t batches() const { return batches_; }

 private:
  std::atomic<double> last_ack_{0};
  double encoder_s_ = 0;
  size_t batches_ = 0;
};

CatchupRun RunCatchup(const std::vector<es::sinks::PgRow>& rows, es::pg::Connection& admin,
                      es::model::SentenceEncoder& encoder, bool with_index) {
  DropTables(admin, kTextTable, kEmbeddingsTable);
  es::sources::PostgresSourceOptions opts;
  opts.connection = es::pg::ConnectionOptions::FromEnv();
  opts.schema.text_table = kTextTable;
  opts.schema.embeddings_table = kEmbeddingsTable;
  opts.schema.dim = encoder.dim();
  opts.schema.model_name = encoder.info().model_name;
  auto schema = es::pg::EnsureSchema(admin, opts.schema);
  if (!schema) Die("EnsureSchema", schema.error());
  std::string data;
  for (const auto& r : rows) {
    data += r.id;
    data += '\t';
    es::pg::AppendCopyText(data, r.text);
    data += '\n';
  }
  CatchupRun run;
  double t0 = Now();
  if (es::Status st = admin.CopyIn("COPY " + schema->text_table + " (" + schema->id_column + ", " +
                                       schema->text_column + ") FROM STDIN",
                                   data, "COPY texts");
      !st) {
    Die("COPY texts", st.error());
  }
  run.insert_s = Now() - t0;
  Exec(admin, "CHECKPOINT");
  // What `serve` runs for sources.postgres: {sinks: [postgres]}.
  opts.finite = true;
  auto source = es::sources::PostgresSource::Connect(opts);
  if (!source) Die("PostgresSource::Connect", source.error());
  es::sinks::PostgresSinkOptions sink_opts = es::sinks::PostgresSinkOptions::FromEnv();
  sink_opts.text_table = kTextTable;
  sink_opts.embeddings_table = kEmbeddingsTable;
  sink_opts.dim = encoder.dim();
  sink_opts.model_name = encoder.info().model_name;
  sink_opts.require_uuid_ids = false;
  auto sink = es::sinks::PostgresSink::Connect(sink_opts);
  if (!sink) Die("PostgresSink::Connect", sink.error());
  es::sinks::PgvectorSink vectors(std::shared_ptr<es::sinks::PostgresSink>(std::move(*sink)),
                                  es::sinks::PgvectorSink::Mode::kVectors);
  // Only now: the source's and the sink's Connect run EnsureSchema, which creates
  // a missing HNSW index again (before this, "no index" ran with the index).
  if (!with_index) Exec(admin, "DROP INDEX " + IndexName(admin, kEmbeddingsTable));
  es::pipeline::EncoderEmbedder embedder(encoder);
  std::atomic<bool> stop{false};
  CatchupListener listener;
  t0 = Now();
  {
    es::pipeline::Runtime runtime(**source, &embedder, {&vectors}, {});
    runtime.AddListener(&listener);
    runtime.Run(stop);
  }
  run.run_s = Now() - t0;
  run.drain_s = listener.last_ack() > t0 ? listener.last_ack() - t0 : run.run_s;
  run.encoder_s = listener.encoder_s();
  run.batches = listener.batches();
  run.drained = (*source)->stats().embedded.load();
  if (run.drained != rows.size()) {
    std::fprintf(stderr, "warning: the pipeline marked %zu rows, want %zu\n", run.drained,
                 rows.size());
  }
  return run;
}

// ---------------------------------------------------------------- output

struct Line {
  std::string what;
  std::string batch;
  size_t rows = 0;
  std::vector<double> seconds;  // one per repeat
  bool vs_target = true;        // a sink figure, held to >= 3x encoder
  std::string note;
};

void PrintTable(const char* title, const std::vector<Line>& lines, double encoder_per_s) {
  std::printf("\n%s\n\n", title);
  std::printf(
      "| measurement | batch | rows | best s | rows/s (best) | rows/s (worst) | "
      "÷ encoder | target ≥ %.0f× | note |\n",
      kTargetRatio);
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) {
    const double best = static_cast<double>(l.rows) / Best(l.seconds);
    const double worst = static_cast<double>(l.rows) / Worst(l.seconds);
    const double ratio = best / encoder_per_s;
    const char* verdict = !l.vs_target ? "—" : ratio >= kTargetRatio ? "met" : "NOT met";
    std::printf("| %s | %s | %zu | %.2f | %.0f | %.0f | %.2f× | %s | %s |\n", l.what.c_str(),
                l.batch.c_str(), l.rows, Best(l.seconds), best, worst, ratio, verdict,
                l.note.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  es::SetLogLevel("warn");
  auto admin = OpenAdmin();
  const std::string server =
      QueryOne(*admin,
               "SELECT current_setting('server_version') || ' + pgvector ' || coalesce((SELECT "
               "extversion FROM pg_extension WHERE extname = 'vector'), '?') || ', "
               "shared_buffers ' || current_setting('shared_buffers') || ', synchronous_commit "
               "' || current_setting('synchronous_commit') || ', maintenance_work_mem ' || "
               "current_setting('maintenance_work_mem')");

  es::model::EncoderOptions eo;
  eo.threads = a.threads;
  auto encoder = es::model::SentenceEncoder::Load(a.model_dir, eo);
  if (!encoder) Die("loading the model from " + a.model_dir, encoder.error());
  es::model::SentenceEncoder& enc = **encoder;

  const std::vector<std::string> texts = MakeMixedCorpus(a.texts);
  std::vector<size_t> tokens;
  tokens.reserve(texts.size());
  for (const auto& t : texts) tokens.push_back(enc.Tokenize(t).size());
  std::printf("bench_postgres: %s, %d threads, PostgreSQL %s, %u cores\n",
              enc.info().model_name.c_str(), a.threads, server.c_str(),
              std::thread::hardware_concurrency());
  PrintTokenDistribution(tokens, enc.info().max_seq_length);

  // (a) The encoder on these texts: one warm-up pass over a slice, then full
  // passes now and again after the PostgreSQL parts (the cores are shared, so
  // a burst of someone else's work should not decide the ratio); the best
  // pass is the peer every other figure is divided by.
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> vectors(texts.size() * enc.dim());
  const size_t warm = std::min<size_t>(256, views.size());
  enc.Embed(std::span<const std::string_view>(views.data(), warm), vectors.data());
  Line encoder_line{"encoder (f32) embed", "—", texts.size(), {}, false, ""};
  auto measure_encoder = [&](const char* when) {
    std::vector<double> seconds;
    for (int r = 0; r < a.encoder_repeat; ++r) {
      const double t0 = Now();
      enc.Embed(views, vectors.data());
      seconds.push_back(Now() - t0);
      std::fprintf(stderr, "encoder pass %d (%s): %.2f s\n", r + 1, when, seconds.back());
    }
    char note[96];
    std::snprintf(note, sizeof(note), "%s%s %.0f/s", encoder_line.note.empty() ? "" : ", ", when,
                  static_cast<double>(texts.size()) / Best(seconds));
    encoder_line.note += note;
    encoder_line.seconds.insert(encoder_line.seconds.end(), seconds.begin(), seconds.end());
  };
  measure_encoder("at start");

  std::vector<es::sinks::PgRow> rows(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    rows[i].id = es::FormatUuid(
        es::UuidV5(es::EmbedstreamNamespace(), "bench_postgres/" + std::to_string(i)));
    rows[i].text = texts[i];
    rows[i].metadata_json = R"({"source": "bench_postgres"})";
    rows[i].vector.assign(vectors.begin() + static_cast<ptrdiff_t>(i * enc.dim()),
                          vectors.begin() + static_cast<ptrdiff_t>((i + 1) * enc.dim()));
  }

  // (b) The sink, (c) catch-up.
  auto run_case = [&](const SinkCase& sc, std::vector<Line>& out) {
    SinkResult res{sc, {}};
    for (int r = 0; r < a.repeat; ++r) {
      res.runs.push_back(RunSinkCase(sc, rows, *admin));
      const auto& run = res.runs.back();
      std::fprintf(
          stderr, "%s, batch %zu, run %d: load %.2f s, build %.2f s, replay %.2f s, WAL %.1f MB\n",
          sc.label.c_str(), sc.batch, r + 1, run.load_s, run.build_s, run.replay_s, run.wal_mb);
    }
    const std::string batch = std::to_string(sc.batch) +
                              (sc.writers > 1 ? " ×" + std::to_string(sc.writers) + " conns" : "");
    Line load{sc.label, batch, rows.size(), {}, true, ""};
    Line build{"  CREATE INDEX after the load", "—", rows.size(), {}, false, "index build alone"};
    Line both{"  load + CREATE INDEX", batch, rows.size(), {}, true, ""};
    Line replay{
        "replay (same rows, index present)", batch, rows.size(), {}, true, "0 rows changed"};
    for (const auto& run : res.runs) {
      load.seconds.push_back(run.load_s);
      build.seconds.push_back(run.build_s);
      both.seconds.push_back(run.load_s + run.build_s);
      replay.seconds.push_back(run.replay_s);
    }
    char wal[64];
    std::snprintf(wal, sizeof(wal), "WAL %.1f MB%s", res.runs.back().wal_mb,
                  sc.index_after ? " with the build" : "");
    load.note = wal;
    out.push_back(load);
    if (sc.index_after) {
      out.push_back(build);
      out.push_back(both);
    }
    if (sc.replay) out.push_back(replay);
  };

  // Queries for recall@10 of the index each case leaves behind.
  std::vector<std::vector<float>> queries;
  {
    const auto qtexts = es::bench::MakeCorpus(50, 12, 1234);
    std::vector<std::string_view> qv(qtexts.begin(), qtexts.end());
    std::vector<float> qout(qtexts.size() * enc.dim());
    enc.Embed(qv, qout.data());
    for (size_t i = 0; i < qtexts.size(); ++i) {
      queries.emplace_back(qout.begin() + static_cast<ptrdiff_t>(i * enc.dim()),
                           qout.begin() + static_cast<ptrdiff_t>((i + 1) * enc.dim()));
    }
  }
  std::vector<Line> main_lines = {encoder_line};
  for (size_t batch : a.batches) {
    const size_t before = main_lines.size();
    run_case(SinkCase("sink Upsert, HNSW maintained", batch).Replay(), main_lines);
    char note[64];
    std::snprintf(note, sizeof(note), "; recall@10 %.3f", MeasureRecall(*admin, queries));
    main_lines[before].note += note;
    run_case(SinkCase("sink Upsert, no index", batch).IndexAfter(), main_lines);
  }

  if (a.catchup) {
    for (bool with_index : {true, false}) {
      Line copy{"  COPY texts into the text table", "—", rows.size(), {}, false, "plain SQL"};
      Line drain{
          with_index ? "CQRS catch-up (Drain), HNSW maintained" : "CQRS catch-up (Drain), no index",
          "source",
          rows.size(),
          {},
          false,
          "embedding included, to the last ack; ≈ 1.00× is ideal"};
      double best_run_s = 0, encoder_s = 0;
      for (int r = 0; r < a.repeat; ++r) {
        const CatchupRun run = RunCatchup(rows, *admin, enc, with_index);
        copy.seconds.push_back(run.insert_s);
        drain.seconds.push_back(run.drain_s);
        if (run.drain_s <= Best(drain.seconds)) best_run_s = run.run_s, encoder_s = run.encoder_s;
        // bench/postgres/cpu_window.py reads this line (the drain's window ends
        // Run - Drain before it).
        std::fprintf(stderr,
                     "catch-up (%s index), run %d: COPY %.2f s, Drain %.2f s (%zu rows), Run "
                     "%.2f s, encoder %.2f s in %zu batches\n",
                     with_index ? "with" : "no", r + 1, run.insert_s, run.drain_s, run.drained,
                     run.run_s, run.encoder_s, run.batches);
      }
      char note[128];
      std::snprintf(note, sizeof(note), "; encoder busy %.1f s of it; Run() returned at %.1f s",
                    encoder_s, best_run_s);
      drain.note += note;
      main_lines.push_back(drain);
      if (with_index) main_lines.push_back(copy);
    }
  }

  measure_encoder("at end");
  main_lines.front() = encoder_line;
  const double encoder_per_s = static_cast<double>(texts.size()) / Best(encoder_line.seconds);
  std::printf("\nencoder: %.0f texts/s (best of %zu passes over the %zu texts: %s)\n",
              encoder_per_s, encoder_line.seconds.size(), texts.size(), encoder_line.note.c_str());
  PrintTable("bench_postgres (ratios: rows/s ÷ encoder texts/s, same texts, same run)", main_lines,
             encoder_per_s);

  if (a.explore) {
    // How to make the HNSW-maintained path faster: one change at a time,
    // then combined, each with the index's recall@10 against an exact scan.
    const size_t batch = a.batches.back();
    const std::string efc32 = "m = 16, ef_construction = 32";
    const std::vector<SinkCase> cases = {
        SinkCase("HNSW m=16 ef_c=64 (default)", batch),
        SinkCase("HNSW m=16 ef_c=32", batch).IndexWith(efc32),
        SinkCase("HNSW m=8 ef_c=32", batch).IndexWith("m = 8, ef_construction = 32"),
        SinkCase("HNSW, synchronous_commit=off", batch).PgOptions("-c synchronous_commit=off"),
        SinkCase("HNSW, batch 4096", 4096),
        SinkCase("HNSW, 2 connections", batch / 2).Writers(2),
        SinkCase("HNSW m=16 ef_c=32, 2 conns", batch / 2).Writers(2).IndexWith(efc32),
        SinkCase("no index, 2 connections", batch / 2).Writers(2).IndexAfter(),
    };
    std::vector<Line> explore_lines = {encoder_line};
    for (const auto& sc : cases) {
      const size_t before = explore_lines.size();
      run_case(sc, explore_lines);
      const double recall = MeasureRecall(*admin, queries);
      char note[64];
      std::snprintf(note, sizeof(note), "recall@10 %.3f", recall);
      explore_lines[before].note +=
          (explore_lines[before].note.empty() ? "" : "; ") + std::string(note);
    }
    PrintTable("explore: the HNSW-maintained path, one change at a time (50 queries for recall)",
               explore_lines, encoder_per_s);
  }

  if (!a.keep_tables) DropTables(*admin, kTextTable, kEmbeddingsTable);
  return 0;
}
