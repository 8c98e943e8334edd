#pragma once
// PostgresSource: the CQRS read-model builder of seed 001. Watches a text
// table (text_messages by default) and embeds every *pending* row (no
// embedding row, or one whose text_md5 is not md5 of the current text; see
// pg/schema.h) into the embeddings table:
//
//   claim:  BEGIN; SELECT ... pending ... LIMIT n FOR UPDATE OF t SKIP LOCKED
//           then the same predicate again on the locked ids (a fresh
//           snapshot: rows another worker finished meanwhile drop out)
//   embed:  tokenize, cut at the token budget, encoder
//   write:  COPY into a temp table, INSERT ... ON CONFLICT DO UPDATE; COMMIT
//
// Two connections take turns, so the encoder never waits for PostgreSQL:
// while one writes and commits round k (pgvector's HNSW insert costs about as
// much as embedding), the other claims and embeds round k+1.
//
// Rows are locked until the commit, so several processes share a table and
// each row is embedded once; a crash or a lost connection rolls the round back
// and the rows are pending again (nothing lost). Catch-up scan at start, then
// LISTEN on the table's channel (trigger from `embedstream pg install`) with a
// poll every poll_interval as fallback. A changed text is pending again; rows
// embedded by another model are left alone unless `reembed_other_models`
// (`embedstream pg reembed`).
//
// Threads: Run()/Drain()/RunOnce() on one thread (it owns the connections and
// starts the writes on a helper thread); stats() from
// any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "model/sentence_encoder.h"
#include "pg/connection.h"
#include "pg/schema.h"

namespace embedstream::sources {

struct PostgresSourceOptions {
  pg::ConnectionOptions connection;
  pg::SchemaOptions schema;        // tables, columns, dim, model_name
  size_t batch_max_tokens = 8192;  // token budget of one round
  size_t batch_max_rows = 512;     // rows claimed per round at most
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::milliseconds stats_interval{2000};  // pending count refresh while busy
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds retry_max{10000};
  bool reembed_other_models = false;  // also rows whose model_name differs
};

struct PostgresSourceStats {
  std::atomic<uint64_t> embedded{0};  // rows this process embedded and wrote
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> errors{0};  // failed rounds (each retried)
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> notifications{0};
  std::atomic<uint64_t> polls{0};
  std::atomic<bool> connected{false};
  std::atomic<bool> listening{false};  // the NOTIFY trigger is installed
  std::atomic<int64_t> pending{-1};    // -1 until first counted
  std::atomic<double> oldest_pending_age_s{0};
};

struct PendingCounts {
  uint64_t pending = 0;
  double oldest_pending_age_s = 0;  // 0 when none or the table has no created_at
  uint64_t embedded = 0;            // rows with an embedding row
  uint64_t other_model = 0;         // ... made by another model
};

class PostgresSource {
 public:
  // Connects and ensures the schema. unavailable: server down;
  // invalid_argument: another dimension, missing columns.
  static Result<std::unique_ptr<PostgresSource>> Connect(PostgresSourceOptions options,
                                                         model::SentenceEncoder& encoder);
  ~PostgresSource();
  PostgresSource(const PostgresSource&) = delete;
  PostgresSource& operator=(const PostgresSource&) = delete;

  // Embeds pending rows until `stop`: catch-up, then on NOTIFY or poll.
  // Connection failures are retried with backoff (logged, counted).
  void Run(const std::atomic<bool>& stop);
  // One round: claims, embeds and writes up to a batch; the rows written.
  Result<size_t> RunOnce();
  // Rounds until nothing is pending (or `stop`); the rows written. Errors
  // are returned, not retried (for `embedstream pg reembed` and benches).
  Result<size_t> Drain(const std::atomic<bool>* stop = nullptr);
  Result<PendingCounts> Count();

  const PostgresSourceStats& stats() const { return stats_; }
  const pg::Schema& schema() const { return schema_; }

 private:
  // One connection and its session state (temp table; LISTEN on lane 0).
  struct Lane {
    std::unique_ptr<pg::Connection> conn;
    uint64_t setup_generation = ~uint64_t{0};
  };
  // A claimed and embedded round, its transaction still open on its lane.
  struct Prepared {
    size_t claimed = 0;  // rows locked
    size_t rows = 0;     // rows embedded (the rest stay pending)
    std::string copy;    // COPY data for the staging table
    double claim_ms = 0, embed_ms = 0;
  };

  PostgresSource(PostgresSourceOptions options, model::SentenceEncoder& encoder);
  Status Setup(Lane& lane, bool listen);
  Status Ready(Lane& lane, bool listen);  // reconnects and sets up when needed
  Result<Prepared> ClaimAndEmbed(pg::Connection& c);
  Result<size_t> Write(pg::Connection& c, const Prepared& p);
  // Finishes the write in flight, if any; its rows (0 when none).
  Result<size_t> FinishWrite();
  // One pipelined step: claims and embeds on the free lane while the other
  // lane's write finishes, then starts this lane's write. 0 when nothing
  // was claimed (after the write in flight finished).
  Result<size_t> Step();
  void RefreshCounts();
  // Waits for a notification or the poll interval (or stop).
  void Wait(const std::atomic<bool>& stop);

  PostgresSourceOptions options_;
  model::SentenceEncoder& encoder_;
  Lane lanes_[2];
  size_t next_ = 0;                                     // the lane the next round claims on
  std::optional<std::future<Result<size_t>>> writing_;  // on lanes_[next_ ^ 1]
  pg::Schema schema_;
  std::string pending_predicate_;  // SQL over t (text) and e (embeddings)
  double avg_tokens_ = 32;         // running mean tokens per row (claim size)
  std::chrono::steady_clock::time_point last_count_{};
  PostgresSourceStats stats_;
};

}  // namespace embedstream::sources
