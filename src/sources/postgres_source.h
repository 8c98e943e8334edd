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
// Rows are locked until the commit, so several processes share a table and
// each row is embedded once; a crash or a lost connection rolls the round
// back and the rows are pending again (nothing lost). Catch-up scan at start,
// then LISTEN on the table's channel (trigger from `embedstream pg install`)
// with a poll every poll_interval as fallback. A changed text is pending
// again; rows embedded by another model are left alone unless
// `reembed_other_models` (`embedstream pg reembed`).
//
// Threads: Run()/Drain() on one thread (it owns the connection); stats() from
// any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
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
  PostgresSource(PostgresSourceOptions options, model::SentenceEncoder& encoder);
  Status Setup();  // after (re)connecting: temp table, LISTEN
  Result<size_t> RoundOnce();
  void RefreshCounts();
  // Waits for a notification or the poll interval (or stop).
  void Wait(const std::atomic<bool>& stop);

  PostgresSourceOptions options_;
  model::SentenceEncoder& encoder_;
  std::unique_ptr<pg::Connection> conn_;
  pg::Schema schema_;
  uint64_t setup_generation_ = ~uint64_t{0};
  std::string pending_predicate_;  // SQL over t (text) and e (embeddings)
  double avg_tokens_ = 32;         // running mean tokens per row (claim size)
  std::chrono::steady_clock::time_point last_count_{};
  PostgresSourceStats stats_;
};

}  // namespace embedstream::sources
