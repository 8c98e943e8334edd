#pragma once
// PostgresSource: a PostgreSQL text table (seed 001's CQRS write model) as a
// pipeline::Source. A row is *pending* when its progress row is missing or
// its text_md5 is not md5 of the current text (pg/schema.h).
//
//   Read   -> claim: BEGIN; lock up to n pending rows FOR NO KEY UPDATE SKIP
//             LOCKED, read them again (a fresh snapshot: rows another worker
//             finished meanwhile drop out). The transaction stays open: the
//             rows stay locked while the runtime embeds them and its sinks
//             write them, so several processes share a table and each row is
//             embedded once. (NO KEY UPDATE: a pgvector sink's foreign-key
//             check on the same rows does not wait for it.)
//   Ack    -> when every row of a claim is acked: upsert the rows' progress
//             (text_md5 of the text embedded, model_name) into
//             <embeddings_table>_progress and COMMIT: a row is done only
//             once every sink has it (the `postgres` sink writes the
//             embeddings table once, vector and text_md5 together).
//   Reject -> a dead letter in <embeddings_table>_dead_letters (reason,
//             stage, detail, attempts) on its own connection; the row's
//             marker follows with the claim's Ack, so it is not retried
//             until its text changes.
//   Pause  -> no new claims (claims in flight stay open).
//   Deletes-> a row deleted from the text table (recorded with its id in
//             <embeddings_table>_deletes by the trigger Connect installs,
//             pg::InstallDeleteCapture) becomes a delete record, read before
//             the next claim; its Ack removes the entry. An id that is back
//             in the table meanwhile is not deleted (its new row is embedded).
//
// A lost connection or a crash rolls the claim back: its rows are pending
// again (at-least-once; sinks upsert). One claim per connection: at most
// `claim_connections` claims are in flight; then Read claims nothing (the
// backpressure is the runtime's). Catch-up at start, then LISTEN on the
// table's channel (trigger from `embedstream pg install`) with a poll every
// poll_interval as the fallback. Rows embedded by another model are left
// alone unless `reembed_other_models` (`embedstream pg reembed`).
//
// Threads: Read/Ack/Pause/Resume on the runtime's intake thread (it owns the
// claim and listen connections), Reject on the dead-letter thread (its own
// connection); stats() from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/connection.h"
#include "pg/schema.h"
#include "pipeline/backoff.h"
#include "pipeline/stage.h"

namespace embedstream::sources {

struct PostgresSourceOptions {
  pg::ConnectionOptions connection;
  pg::SchemaOptions schema;      // tables, columns; dim and model_name from the model
  size_t claim_max_rows = 512;   // rows locked per claim at most
  size_t claim_connections = 4;  // claims in flight at most (one connection each)
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::milliseconds stats_interval{2000};  // pending count refresh
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds retry_max{10000};
  bool reembed_other_models = false;  // also rows whose model_name differs
  // Take rows deleted from the text table to the sinks (see Deletes above).
  bool capture_deletes = true;
  // Finite: Read says `end` once nothing is pending beyond its own claims
  // (`embedstream pg reembed`, benchmarks).
  bool finite = false;
};

struct PostgresSourceStats {
  std::atomic<uint64_t> claimed{0};   // rows claimed (read)
  std::atomic<uint64_t> embedded{0};  // rows marked done (every sink has them)
  std::atomic<uint64_t> batches{0};   // claims committed
  std::atomic<uint64_t> dead_letters{0};
  std::atomic<uint64_t> deletes{0};  // deleted rows taken to the sinks
  std::atomic<uint64_t> errors{0};  // failed claims or commits (each retried)
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> notifications{0};
  std::atomic<uint64_t> polls{0};
  std::atomic<int64_t> open_claims{0};
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

class PostgresSource : public pipeline::Source {
 public:
  // Connects and ensures the schema (options.schema.dim and model_name must
  // be set). unavailable: server down; invalid_argument: another dimension,
  // missing columns.
  static Result<std::unique_ptr<PostgresSource>> Connect(PostgresSourceOptions options);
  ~PostgresSource() override;
  PostgresSource(const PostgresSource&) = delete;
  PostgresSource& operator=(const PostgresSource&) = delete;

  const std::string& name() const override { return name_; }
  pipeline::ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) override;
  void Ack(std::span<const pipeline::Record* const> records) override;
  pipeline::WriteResult Reject(std::span<const pipeline::DeadLetter> letters) override;
  void Pause() override { paused_ = true; }
  void Resume() override { paused_ = false; }

  // Intake thread (or before the runtime runs): the pending counts now.
  Result<PendingCounts> Count();
  void Close() override;  // rolls back open claims (their rows are pending again)

  const PostgresSourceStats& stats() const { return stats_; }
  const pg::Schema& schema() const { return schema_; }

 private:
  struct Lane {
    std::unique_ptr<pg::Connection> conn;
    uint64_t setup_generation = ~uint64_t{0};
    bool busy = false;  // a claim is open on it
  };
  struct Claim {
    size_t lane = 0;
    std::vector<std::string> ids;   // in read order
    std::vector<std::string> md5s;  // of the text read
    size_t acked = 0;
  };

  explicit PostgresSource(PostgresSourceOptions options);
  Status Ready(Lane& lane, bool listen);
  // Opens a claim on a free lane; the records read (none: nothing pending).
  Result<std::vector<pipeline::Record>> ClaimRows(size_t max_records, bool& no_lane);
  Status Finish(Claim& claim);  // markers + COMMIT
  // Delete records for rows deleted from the text table (after deletes_seq_).
  Status ReadDeletes(size_t max_records, std::vector<pipeline::Record>& out);
  void RefreshCounts();
  // Waits up to `d` for a notification on the listen connection.
  void WaitForNotify(std::chrono::milliseconds d);

  PostgresSourceOptions options_;
  const std::string name_ = "postgres";
  pg::Schema schema_;
  std::string pending_predicate_;  // SQL over t (text) and e (embeddings)
  std::string dead_letter_table_;  // quoted
  std::string deletes_table_;      // quoted; empty: deletes are not captured
  int64_t deletes_seq_ = 0;        // the last entry read
  Lane listen_;                    // LISTEN, counts
  std::vector<Lane> lanes_;        // one claim each
  std::deque<Claim> claims_;       // open, in read order
  bool paused_ = false;
  bool wake_ = true;  // claim at the next Read (start, notification, poll, full claim)
  std::chrono::steady_clock::time_point next_poll_{};
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::steady_clock::time_point last_count_{};
  pipeline::Backoff backoff_;

  std::mutex dlq_mu_;  // Reject's connection
  std::unique_ptr<pg::Connection> dlq_conn_;

  PostgresSourceStats stats_;
};

}  // namespace embedstream::sources
